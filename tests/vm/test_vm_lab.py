"""The lab on libvirt VMs: four Debian 12 guests from the lab's image at the topology's addresses,
the same eleven provisioning steps, the article's drills with the kernel's watchdog, and a `down`
that leaves nothing in libvirt. Each test prints the times it measured."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from lab.providers import libvirt
from labcore import state as lab_state

from vmlab import invoke

# A drill's auto run under TCG: its own bounds are scaled by the lab's timeout scale.
DRILL_TIMEOUT = 2400
TIER = ["watchdog-freeze", "watchdog-required", "replica-pg-stop", "primary-patroni-kill",
        "primary-power-off", "primary-link-down", "primary-reset"]
# LAB_VM_DRILLS=a,b runs only those (.ci/run runs one); LAB_VM_CONTROL=0 leaves out the negative control
DRILLS = [d for d in os.environ.get("LAB_VM_DRILLS", ",".join(TIER)).split(",") if d]


def ssh(node: str, command: str) -> subprocess.CompletedProcess:
    from labcore import remote
    return subprocess.run(["ssh", "-F", remote.ssh_config_path(), node, command],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.timeout(7200)
def test_up_builds_four_provisioned_vms(vm_lab):
    st = lab_state.load()
    print(f"image build {vm_lab.image_seconds} s (0 when cached); invoke up {vm_lab.up.seconds} s; "
          f"timings {st.timings}")
    if vm_lab.reprovision:
        print(f"provisioning again: {vm_lab.reprovision.seconds} s, rc {vm_lab.reprovision.rc}")
        assert vm_lab.reprovision.rc == 0, vm_lab.reprovision.tail()
    else:
        assert vm_lab.up.rc == 0, vm_lab.up.tail()
    assert st.phase == "provisioned" and st.provider == "libvirt" and st.platform == "debian12"
    assert "libvirt domain type" in vm_lab.up.output or vm_lab.up.output.startswith("reused")
    domains = libvirt.names("list")
    assert sorted(d for d in domains if d.startswith(libvirt.domain_prefix(vm_lab.topo))) == \
        sorted(libvirt.domain_name(vm_lab.topo, n) for n in vm_lab.topo.names)


def test_the_nodes_are_vms_at_their_topology_addresses(vm_lab):
    for n in vm_lab.topo.nodes:
        r = ssh(n.name, f"systemd-detect-virt; hostname; ip -o -4 addr show to {n.address} | wc -l")
        assert r.returncode == 0, r.stderr
        virt, host, count = r.stdout.split()
        assert virt in ("qemu", "kvm") and host == n.name and count == "1"


def test_the_watchdog_is_the_kernels_device_given_to_postgres(vm_lab):
    for n in vm_lab.topo.postgres_nodes:
        r = ssh(n.name, "stat -c %U /dev/watchdog; sudo cat /etc/patroni/20-watchdog.yml")
        assert r.returncode == 0, r.stderr
        owner, _, config = r.stdout.partition("\n")
        assert owner == "postgres"
        assert "device: /dev/watchdog" in config and "testing" not in config


def test_libvirt_holds_the_layout_the_pulumi_program_declares(vm_lab):
    """What vagrant-libvirt and the lab made is lab.providers.libvirt_layout's layout, field by field;
    the unit tier checks that the Pulumi program declares the same (tests/unit/test_pulumi_program.py)."""
    from lab.providers import libvirt_layout as layout, vmimage
    from provision import platforms

    img = vmimage.current(platforms.for_lab("debian12", vm_lab.topo))
    seen = layout.live(vm_lab.topo, libvirt.virsh)
    said = re.search(r"libvirt domain type (kvm|qemu)", vm_lab.up.output)
    domain_type = said.group(1) if said else seen.domains[0].domain_type     # a reused lab did not say it
    expected = layout.layout(vm_lab.topo, domain_type=domain_type, cpus=1, memory_mib=1024, digest=img.digest,
                             cmdline=img.cmdline, console_dir=lab_state.lab_dir() / "console")
    assert layout.differences(expected, seen) == []


def test_status_answers(vm_lab):
    r = invoke("status")
    assert r.rc == 0, r.tail()


@pytest.mark.parametrize("name", DRILLS)
@pytest.mark.timeout(DRILL_TIMEOUT + 300)
def test_drill_passes_on_vms(vm_lab, name):
    r = invoke("exercise", name, "--auto", timeout=DRILL_TIMEOUT)
    print(r.tail(40))
    print(f"drill {name}: {r.seconds} s")
    assert r.rc == 0, r.tail(60)


@pytest.mark.timeout(DRILL_TIMEOUT + 300)
@pytest.mark.skipif(os.environ.get("LAB_VM_CONTROL") == "0", reason="LAB_VM_CONTROL=0")
def test_power_off_fails_when_no_replica_may_take_over(vm_lab):
    """The power-off drill's negative control: every replica tagged nofailover, so nobody may be
    promoted when the leader's machine goes; the drill must fail at its promotion check."""
    from lab.exercises import DRILLS as ALL, Lab, run_drill
    from lab.exercises.observe.verdict import Verdict
    from lab.exercises.run.controls import no_replica_may_fail_over, with_break

    res = run_drill(with_break(ALL["primary-power-off"], no_replica_may_fail_over),
                    Lab(vm_lab.topo, auto=True, results_dir=lab_state.lab_dir() / "drills"))
    failed = [c.description for c in res.checks if not c.ok]
    print(f"control: verdict {res.verdict}, failed checks {failed}, notes {res.notes}")
    assert res.verdict == Verdict.FAIL and any("is promoted" in d for d in failed), (res.verdict, res.reason)
    assert res.gate_after and all(f["ok"] for f in res.gate_after), res.gate_after


@pytest.mark.timeout(1800)
def test_down_leaves_nothing_in_libvirt(vm_lab):
    r = invoke("down", "--provider", "libvirt", timeout=1500)
    print(f"invoke down {r.seconds} s")
    assert r.rc == 0, r.tail()
    assert libvirt.leftovers(vm_lab.topo) == []
    assert not any(d.startswith(libvirt.domain_prefix(vm_lab.topo)) for d in libvirt.names("list"))
    qemu = subprocess.run(["pgrep", "-f", f"guest={vm_lab.topo.name}_"], capture_output=True, text=True)
    assert qemu.stdout.strip() == "", "a QEMU process of the lab is still running"
    dnsmasq = subprocess.run(["pgrep", "-f", f"dnsmasq/{vm_lab.topo.name}.conf"], capture_output=True, text=True)
    assert dnsmasq.stdout.strip() == "", "the lab network's dnsmasq is still running"
    assert lab_state.load().phase == "absent"
