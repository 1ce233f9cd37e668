"""The drills only a VM shows (lab/exercises/drills/machine.py): what they type on the control host,
and that on containers they act on nothing and say why. The VM tier runs them on VMs (tests/vm)."""
from __future__ import annotations

import pytest

from labcore import state as lab_state
from labcore.topology import load
from lab.exercises import DRILLS
from lab.exercises.api.console import ScriptedConsole
from lab.exercises.kit import machines as M
from lab.exercises.kit.facts import Facts
from lab.exercises.kit.shell import HOST, SshShell
from lab.exercises.observe.verdict import Verdict

from test_exercises_runner import FakeCluster, run

TOPO = load()
VM_DRILLS = ["primary-power-off", "primary-link-down", "primary-reset"]


def test_the_vm_drills_are_the_vm_only_ones():
    assert [n for n, c in DRILLS.items() if c.vm_only] == VM_DRILLS


def test_each_fault_is_one_virsh_command_on_the_labs_own_domain_typed_on_the_control_host():
    facts = Facts(TOPO, None)
    off, cut = M.power_off(facts, "pg1"), M.link_down(facts, "pg1")
    reset = M.reset(facts, "pg1", lambda: True)
    assert {off.node, cut.node, reset.node} == {HOST}
    assert off.text() == "virsh -c qemu:///system destroy patroni-lab_node1"
    assert off.undo == "virsh -c qemu:///system start patroni-lab_node1"
    # the NIC by the MAC the lab gave it (the address's last three bytes)
    assert cut.text() == "virsh -c qemu:///system domif-setlink patroni-lab_node1 52:54:00:a8:ea:c9 down"
    assert cut.undo.endswith(" up")
    assert reset.text() == "virsh -c qemu:///system reset patroni-lab_node1"


def test_the_control_host_runs_its_commands_here_and_nodes_stay_behind_ssh():
    out = SshShell(TOPO).run(HOST, "echo on-the-host")
    assert out.ok and out.stdout.strip() == "on-the-host"


@pytest.mark.parametrize("provider", ["docker", "hosts"])
@pytest.mark.parametrize("name", VM_DRILLS)
def test_on_machines_that_are_not_vms_the_drill_is_not_applicable_and_touches_nothing(
        monkeypatch, tmp_path, name, provider):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    monkeypatch.setenv("LAB_LANG", "en")
    lab_state.save(lab_state.State(phase="provisioned", provider=provider))
    fake = FakeCluster(TOPO)
    # without the writer, which the unit tier has no PostgreSQL for (the live tier runs it with one)
    res = run(type(name, (DRILLS[name],), {"writes": False}), fake, ScriptedConsole(), tmp_path)
    assert res.verdict == Verdict.NOT_APPLICABLE, res.reason
    assert f"made by the {provider} provider, not VMs of this host" in res.reason
    assert not [c for n, c in fake.commands if n == HOST or "virsh" in c], fake.commands


def test_libvirt_is_the_provider_whose_machines_are_vms():
    assert M.is_vm("libvirt") and not M.is_vm("docker") and not M.is_vm(None)


def test_a_command_to_a_machine_that_went_silent_ends_when_its_connection_is_cut(monkeypatch):
    """A powered-off VM never answers; TCP would retransmit a quarter of an hour. The shell closes the
    connection once the command's timeout and a grace have passed, and the command ends with an error."""
    import threading
    import time

    from labcore import guard, remote
    from lab.exercises.kit import shell

    class SilentConnection:
        def __init__(self):
            self.closed = threading.Event()

        def run(self, *a, **kw):
            if not self.closed.wait(30):      # what a dead peer does: nothing, until the socket goes
                raise AssertionError("the shell never cut the silent connection")
            raise EOFError("the connection was closed")

        def close(self):
            self.closed.set()

    conn = SilentConnection()
    monkeypatch.setattr(remote, "new_connection", lambda name: conn)
    monkeypatch.setattr(guard, "check", lambda *a, **kw: None)
    monkeypatch.setattr(shell, "SILENCE_GRACE_S", 0.2)
    t0 = time.monotonic()
    out = shell.SshShell(TOPO).run("node1", "cat /proc/uptime", timeout=0.3)
    assert not out.ok and "closed" in out.stderr and time.monotonic() - t0 < 5
