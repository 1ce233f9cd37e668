#!/usr/bin/env bash
# What the VM path needs on top of scripts/bootstrap.sh (run that first), on a
# Debian 12 host: QEMU, libvirt and its DHCP server, vagrant-libvirt, the tools
# that build the lab's own VM image; then it starts virtlogd and libvirtd.
# Idempotent: a second run installs nothing and starts nothing already running.
#
#   scripts/bootstrap-vm.sh && .venv/bin/invoke up --provider libvirt
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "bootstrap-vm: run as root or install sudo" >&2; exit 1; }
    SUDO="sudo"
fi

say() { printf '\n== %s\n' "$*"; }

# qemu-system-x86 runs the guests, qemu-utils makes the qcow2 disk, dnsmasq-base is
# libvirt's DHCP server for the lab network, mmdebstrap + e2fsprogs build the image.
PACKAGES=(
    qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients dnsmasq-base
    vagrant vagrant-libvirt mmdebstrap e2fsprogs debian-archive-keyring
)
say "installing the VM path's packages (apt, no recommends)"
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Without udev, /dev/kvm stays root-only: libvirt then probes QEMU with KVM as root, finds
# it unusable for its qemu user, and probes again on every call (seconds each). udev's own
# rule gives it to the kvm group, which Debian's libvirt-qemu user belongs to.
if [ -c /dev/kvm ] && [ "$(stat -c %G /dev/kvm)" != kvm ]; then
    $SUDO chgrp kvm /dev/kvm && $SUDO chmod 660 /dev/kvm
fi

say "starting virtlogd and libvirtd"
if [ -d /run/systemd/system ]; then
    $SUDO systemctl start virtlogd libvirtd
else
    # No systemd (containers, microVMs, some CI hosts): run the daemons in the background.
    pgrep -x virtlogd >/dev/null || $SUDO virtlogd -d
    pgrep -x libvirtd >/dev/null || $SUDO libvirtd -d
fi
for _ in $(seq 30); do
    $SUDO virsh -c qemu:///system uri >/dev/null 2>&1 && break
    sleep 1
done
$SUDO virsh -c qemu:///system version --daemon | sed -n 's/^Running against daemon: /libvirtd /p'
