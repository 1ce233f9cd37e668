"""The VM tier: the lab on libvirt VMs made from the lab's own image, through the real CLI.

Skipped unless LAB_VM_TESTS=1 (scripts/test-vm.sh sets it): it takes tens of
minutes under QEMU's TCG emulation, and it uses the same subnet and bridge as
the docker lab, so it refuses to start while a docker lab is up. The lab is
brought up once per session and removed at the end (LAB_KEEP=1 keeps it; LAB_REUSE=1
runs the tests on VMs already provisioned by `invoke up --provider libvirt`);
``invoke down`` must leave nothing of it in libvirt.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from labcore import state as lab_state
from labcore import topology

from vmlab import Run, VmLab, docker_lab_up, invoke

UP_TIMEOUT = int(os.environ.get("LAB_VM_UP_TIMEOUT", "3600"))


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    ours = [i for i in items if Path(str(i.fspath)).is_relative_to(here)]
    for item in ours:
        item.add_marker(pytest.mark.vm)
        if os.environ.get("LAB_VM_TESTS") != "1":
            item.add_marker(pytest.mark.skip(reason="the VM tier runs only when asked: scripts/test-vm.sh "
                                                    "(LAB_VM_TESTS=1)"))


@pytest.fixture(scope="session")
def vm_lab():
    """Leftovers removed, the image built (timed), `invoke up --provider libvirt` (timed); down at the end."""
    topo = topology.load()
    st = lab_state.load()
    if os.environ.get("LAB_REUSE") == "1" and st.phase == "provisioned" and st.provider == "libvirt":
        # Re-running drills on VMs already up (an hour under TCG to rebuild): nothing built, nothing timed.
        yield VmLab(topo, Run(["up"], 0, "reused: LAB_REUSE=1", 0.0, lab_state.lab_dir() / "state.json"), 0.0)
        if os.environ.get("LAB_KEEP") != "1":
            invoke("down", "--provider", "libvirt")
        return
    if docker_lab_up(topo):
        pytest.fail(f"a docker lab is up on {topo.subnet}: the VM tier needs its subnet and bridge "
                    "(run `invoke down --provider docker` first)")
    down = invoke("down", "--provider", "libvirt")
    if down.rc != 0:
        pytest.fail(f"`invoke down --provider libvirt` before the session failed:\n{down.tail()}")
    from lab.providers import vmimage
    from provision import platforms
    t0 = time.monotonic()
    vmimage.build(platforms.get("debian12"), lambda m: print(m, flush=True))
    image_seconds = round(time.monotonic() - t0, 1)
    up = invoke("up", "--provider", "libvirt", timeout=UP_TIMEOUT)
    lab = VmLab(topo, up, image_seconds)
    if up.rc != 0 and lab_state.load().phase == "created":
        # The machines are up but a step failed (under TCG a loaded host can starve a leader's Patroni
        # past its watchdog timeout mid-provisioning): provisioning again converges, as `up` says.
        print(f"invoke up failed after {up.seconds} s, provisioning again:\n{up.tail(15)}", flush=True)
        lab.reprovision = invoke("provision", timeout=UP_TIMEOUT)
    yield lab
    if os.environ.get("LAB_KEEP") != "1":
        invoke("down", "--provider", "libvirt")
