"""Tier 3: every drill of article §5, in auto mode, against the live lab; plus one guided run
in which the test plays the trainee and types the fault on the node itself."""
from __future__ import annotations

import re
import subprocess
import threading

import pytest

from labcore import remote
from labcore import state as lab_state
from lab.exercises import DRILLS, Lab, run_drill
from lab.exercises.api.console import ScriptedConsole
from lab.exercises.observe.verdict import Verdict

from drill_verdicts import assert_sound, drill_run, report, run_live, topo  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.live, pytest.mark.drills]


# The article's section 5 drills; sections 6-8 have their own module (test_55_ops_drills.py).
# The drills that act on a VM from its host are not applicable here (tests/vm runs them on VMs).
SECTION5 = [name for name, cls in DRILLS.items() if cls.section.startswith("§5") and not cls.vm_only]
VM_ONLY = [name for name, cls in DRILLS.items() if cls.vm_only]


def results_dir():
    return lab_state.lab_dir() / "drills"


@pytest.mark.parametrize("name", SECTION5)
def test_drill_proves_its_claim_in_auto_mode(topo, drill_run, name):
    cls = DRILLS[name]
    res = run_live(topo, cls, drill_run)
    print(report(res))
    assert_sound(res, cls)
    if cls.split_brain is True:       # the double primary the article warns of was seen, both primary at once
        assert res.watch.double_primary, report(res)


def test_the_vm_drills_are_not_applicable_on_containers_and_say_why(topo, drill_run):
    for name in VM_ONLY:
        res = run_live(topo, DRILLS[name], drill_run)
        assert res.verdict == Verdict.NOT_APPLICABLE and "not VMs of this host" in res.reason, report(res)
        assert not res.checks, f"{name} acted on a lab it cannot act on:\n{report(res)}"


def test_guided_mode_with_the_trainee_typing_the_fault(topo):
    """The drill shows the command and waits; the 'trainee' reads node and command off the
    screen and types it over ssh, as a person would; the drill sees it and gives its verdict."""
    seen: dict[str, str] = {}
    typed: list[subprocess.CompletedProcess] = []
    injected: list[str] = []

    def trainee(text: str) -> None:
        m = re.search(r"on (\S+):\s+ssh -F \S+ \S+\n\s+\$ (.+)", text)
        if m:
            seen["node"], seen["command"] = m.group(1), m.group(2)
        if "Type it on the node now" in text:
            node, cmd = seen["node"], seen["command"]
            injected.append(cmd)

            def type_it() -> None:
                typed.append(subprocess.run(["ssh", "-F", remote.ssh_config_path(), node, cmd],
                                            capture_output=True, text=True, timeout=120))
            threading.Thread(target=type_it, daemon=True).start()

    console = ScriptedConsole(on_show=trainee)
    res = run_drill(DRILLS["replica-patroni-stop"],
                    Lab(topo, auto=False, console=console, results_dir=results_dir()))
    print(console.text[-3000:])
    assert typed and typed[0].returncode == 0, typed
    assert injected == ["sudo systemctl stop patroni"]
    assert res.mode == "guided" and res.passed, report(res)
    assert console.pauses, "guided mode never paused"
