#!/usr/bin/env bash
# The bare baseline of scripts/bench.sh: the lab's cluster (same packages, same
# rendered configuration files, Patroni bootstrapped, rw VIP by the callback,
# keepalived, haproxy, the standby cluster on node4) built with nothing but
# `docker run/exec/cp`, in the fastest order this machine allows: every node
# installs in parallel in one apt transaction, node1 bootstraps while the
# others finish, then the replicas, keepalived, haproxy and the standby node
# start together. No checks, no reports, no idempotence: a floor to compare with.
#
#   scripts/bare-up.sh up | down
# Environment (scripts/bench.sh sets it): BARE_FILES (from `python -m lab.bench
# export`), BARE_NAME, BARE_SUBNET, BARE_GATEWAY, BARE_BRIDGE, BARE_APT_CACHE,
# BARE_WHEELHOUSE (tarball), BARE_IMAGE (a Debian 12 image with systemd).
set -euo pipefail
: "${BARE_FILES:?}" "${BARE_NAME:?}"
LABEL="patroni-lab.bare=$BARE_NAME"

down() {
    ids=$(docker ps -aq --filter "label=$LABEL")
    # shellcheck disable=SC2086  # one id per word
    [ -z "$ids" ] || docker rm -f -v $ids >/dev/null
    docker network rm "$BARE_NAME" >/dev/null 2>&1 || true
}

if [ "${1:-up}" = down ]; then down; exit 0; fi
: "${BARE_SUBNET:?}" "${BARE_GATEWAY:?}" "${BARE_BRIDGE:?}" "${BARE_APT_CACHE:?}" "${BARE_WHEELHOUSE:?}" "${BARE_IMAGE:?}"

t0=$(date +%s%N)
say() { local ms=$(( ($(date +%s%N) - t0) / 1000000 )); printf '%4d.%ds %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*"; }
x() { local n=$1; shift; docker exec "$BARE_NAME-$n" bash -c "$*"; }
wait_for() {  # node, shell condition, what: a bounded poll (120 s)
    for _ in $(seq 240); do x "$1" "$2" >/dev/null 2>&1 && return 0; sleep 0.5; done
    echo "bare-up: timed out waiting for $3" >&2; exit 1
}
has_role() { grep -q "^$1 .*$2" "$BARE_FILES/nodes"; }
nodes=$(cut -d' ' -f1 "$BARE_FILES/nodes")

down
docker network create --subnet "$BARE_SUBNET" --gateway "$BARE_GATEWAY" \
    -o "com.docker.network.bridge.name=$BARE_BRIDGE" --label "$LABEL" "$BARE_NAME" >/dev/null
while read -r n addr _roles; do
    mkdir -p "$BARE_APT_CACHE/$n"
    docker run -d --name "$BARE_NAME-$n" --hostname "$n" --label "$LABEL" \
        --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW --security-opt seccomp=unconfined \
        --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro --stop-signal SIGRTMIN+3 \
        -v "$BARE_APT_CACHE/$n:/var/cache/apt/archives" -e container=docker \
        "$BARE_IMAGE" /sbin/init >/dev/null
    # eth0 on docker's default bridge (the mirror), eth1 the lab address, as the lab's nodes
    docker network connect --ip "$addr" "$BARE_NAME" "$BARE_NAME-$n"
done < "$BARE_FILES/nodes"
say "containers started"

install() {  # one node: files, one apt transaction, locale, Patroni, owners and modes
    local n=$1 pkgs
    pkgs=$(cat "$BARE_FILES/$n/packages")
    # systemd empties /tmp while it boots: wait for the boot, upload elsewhere.
    x "$n" "systemctl is-system-running --wait >/dev/null 2>&1 || true"
    docker cp "$BARE_FILES/$n/files.tar" "$BARE_NAME-$n:/root/files.tar"
    docker cp "$BARE_WHEELHOUSE" "$BARE_NAME-$n:/root/wheelhouse.tar"
    x "$n" "set -e; tar -xf /root/files.tar -C /; export DEBIAN_FRONTEND=noninteractive
        ai() { apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold $pkgs >/dev/null; }
        ai || { apt-get update -qq || { sleep 1; apt-get update -qq; }; ai; }
        if [ -d /usr/lib/postgresql ]; then
            localedef -i zh_CN -f UTF-8 zh_CN.UTF-8
            mkdir -p /var/cache/patroni-lab/wheelhouse; tar -xf /root/wheelhouse.tar -C /var/cache/patroni-lab/wheelhouse
            python3 -m venv /opt/patroni
            /opt/patroni/bin/pip install -q --no-index --find-links /var/cache/patroni-lab/wheelhouse 'patroni[etcd3]' psycopg2-binary
            ln -sfn /opt/patroni/bin/patroni /usr/local/bin/patroni; ln -sfn /opt/patroni/bin/patronictl /usr/local/bin/patronictl
        fi"
    docker exec -i "$BARE_NAME-$n" bash -c "
        while read -r p o g m kind; do
            [ \$kind = dir ] && mkdir -p \$p
            chown \$o:\$g \$p; chmod \$m \$p
        done" < "$BARE_FILES/$n/manifest"
    x "$n" "systemctl daemon-reload; systemctl restart chrony"
}
pids=()
for n in $nodes; do install "$n" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
say "packages, files and Patroni installed on every node"

for n in $nodes; do has_role "$n" etcd && x "$n" "systemctl restart etcd"; done
first=$(grep -m1 ' postgres' "$BARE_FILES/nodes" | cut -d' ' -f1)
x "$first" "systemctl enable -q --now patroni-watchdog patroni"
wait_for "$first" "curl -sf localhost:8008/leader" "$first to lead"
say "$first leads"

x "$first" "patronictl -c /etc/patroni edit-config --force -s slots.slot1.type=physical >/dev/null"
for n in $nodes; do
    if has_role "$n" postgres; then
        [ "$n" = "$first" ] || x "$n" "systemctl enable -q --now patroni-watchdog patroni"
        x "$n" "systemctl enable -q --now keepalived"
    fi
    if has_role "$n" haproxy; then x "$n" "systemctl enable -q haproxy; systemctl restart haproxy keepalived"; fi
    if has_role "$n" standby; then x "$n" "systemctl enable -q --now patroni"; fi
done
for n in $nodes; do
    has_role "$n" standby && wait_for "$n" "curl -sf localhost:8008/standby-leader" "$n to lead the standby cluster"
    if has_role "$n" postgres && [ "$n" != "$first" ]; then
        wait_for "$n" "curl -s localhost:8008/patroni | grep -q streaming" "$n to stream"
    fi
done
say "cluster, replicas and standby cluster up"
