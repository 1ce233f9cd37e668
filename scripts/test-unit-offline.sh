#!/usr/bin/env bash
# The unit tier with the network and the Docker engine really out of reach: pytest runs in
# a network namespace of its own (a loopback and nothing else) and a mount namespace where
# /run, which holds the daemons' sockets (docker.sock, containerd, libvirt), is an empty
# tmpfs. The host keeps its network and its running engine; nothing here outlives the run.
#   scripts/test-unit-offline.sh            # the whole unit tier
#   scripts/test-unit-offline.sh -k vagrant # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(--user --map-root-user)   # unprivileged: a user namespace
exec unshare "${as_root[@]}" --net --mount --propagation private -- /bin/sh -euc '
    ip link set lo up 2>/dev/null || true     # the loopback: the tests listen on it
    # keepalived -t wants a multicast-capable interface: a veth pair whose ends only reach
    # each other (no address, no route), and a sysfs that shows the devices of this namespace.
    ip link add unit0 type veth peer name unit1 2>/dev/null && mount -t sysfs offline-sys /sys || true
    mount -t tmpfs -o mode=755 offline-run /run
    [ -L /var/run ] || mount -t tmpfs -o mode=755 offline-var-run /var/run
    if ip -o -4 route show | grep -q .; then echo "offline: a route is still there" >&2; exit 1; fi
    if [ -e /var/run/docker.sock ]; then echo "offline: the Docker socket is still there" >&2; exit 1; fi
    echo "offline: no route but the loopback, no /var/run/docker.sock"
    exec .venv/bin/pytest -q -p no:cacheprovider tests/unit "$@"
' offline "$@"
