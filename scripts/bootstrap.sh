#!/usr/bin/env bash
# First command of the quick start, on a fresh Debian 12 (or Ubuntu 24.04) host:
# installs what the default docker path and the tests need, starts the Docker
# engine, creates the project's virtualenv, then runs `invoke up`.
#
#   scripts/bootstrap.sh            # everything, ending with a running lab
#   scripts/bootstrap.sh --no-up    # install and start the engine only
set -euo pipefail
cd "$(dirname "$0")/.."

run_up=1
[ "${1:-}" = "--no-up" ] && run_up=0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "bootstrap: run as root or install sudo" >&2; exit 1; }
    SUDO="sudo"
fi

say() { printf '\n== %s\n' "$*"; }

# Host packages: the engine and Vagrant (its libvirt plugin too, so
# `vagrant validate` checks the libvirt block), mmdebstrap for the node image
# when no registry serves debian:bookworm, the tools the tests call, and psql
# for the README's first connections through the VIPs and haproxy.
PACKAGES=(
    python3 python3-venv python3-pip git ca-certificates openssh-client iproute2 postgresql-client
    docker.io vagrant vagrant-libvirt mmdebstrap debian-archive-keyring
    haproxy keepalived shellcheck xsltproc systemd
    chromium tmux   # the report test renders the HTML headless; the `invoke up` test reads a pseudo-terminal
    fonts-wqy-zenhei   # Chinese glyphs in the report's charts (lab/report/fonts.py)
)
say "installing host packages (apt, no recommends)"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null

if [ -d /run/systemd/system ]; then
    # haproxy and keepalived are here only to check the lab's configs, not to run.
    $SUDO systemctl disable --now haproxy keepalived >/dev/null 2>&1 || true
fi

say "starting the Docker engine"
if ! $SUDO docker info >/dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then
        $SUDO systemctl enable --now docker
    else
        # No systemd (containers, some CI hosts): run dockerd in the background.
        $SUDO sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
    fi
    for _ in $(seq 60); do
        $SUDO docker info >/dev/null 2>&1 && break
        sleep 1
    done
    $SUDO docker info >/dev/null 2>&1 || { echo "bootstrap: dockerd did not start within 60 s (see /var/log/dockerd.log)" >&2; exit 1; }
fi
$SUDO docker info --format 'Docker {{.ServerVersion}}, cgroup v{{.CgroupVersion}}, {{.Driver}}'

say "creating .venv with the project"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'

if [ "$run_up" = 1 ]; then
    say "invoke up"
    # The lab needs root for docker and the bridge; keep the user's LAB_* settings.
    $SUDO env ${LAB_TOPOLOGY:+LAB_TOPOLOGY="$LAB_TOPOLOGY"} ${LAB_DIR:+LAB_DIR="$LAB_DIR"} .venv/bin/invoke up
fi
