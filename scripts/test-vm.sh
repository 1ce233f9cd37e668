#!/usr/bin/env bash
# The VM tier: the lab's image built, four libvirt VMs brought up and provisioned,
# drills run on them, then `invoke down` leaves nothing in libvirt (tests/vm).
# Needs scripts/bootstrap.sh and scripts/bootstrap-vm.sh first, and no docker lab up
# (both use the topology's subnet and bridge). Under QEMU's TCG emulation (no
# usable KVM) it takes about an hour on 2 cores; with KVM, minutes.
# Extra arguments go to pytest, e.g. `scripts/test-vm.sh -k watchdog`; LAB_VM_DRILLS=a,b runs only
# those drills and LAB_VM_CONTROL=0 leaves out the negative control (.ci/run's slice does both).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO env LAB_VM_TESTS=1 ${LAB_TOPOLOGY:+LAB_TOPOLOGY="$LAB_TOPOLOGY"} ${LAB_DIR:+LAB_DIR="$LAB_DIR"} \
    ${LAB_KEEP:+LAB_KEEP="$LAB_KEEP"} ${LAB_REUSE:+LAB_REUSE="$LAB_REUSE"} \
    ${LAB_VM_DRILLS:+LAB_VM_DRILLS="$LAB_VM_DRILLS"} ${LAB_VM_CONTROL:+LAB_VM_CONTROL="$LAB_VM_CONTROL"} \
    .venv/bin/pytest -ra -s -p no:cacheprovider tests/vm "$@"
