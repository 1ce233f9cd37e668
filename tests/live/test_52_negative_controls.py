"""Tier 3: negative controls. For each drill family, a break that makes the family's claim false
(lab.exercises.run.controls), then the family's drill in auto mode: its verdict must be ``fail``, named by
the check that caught the break; the drill's restore puts the break back and the lab is at its
baseline again for the modules that follow (health gate clean, nothing of the control left).

Runs after test_50_drills.py on the same lab; its run folder is kept like theirs. One drill per
family, the quickest that carries the claim. Cost, measured on the 2-core build machine (docker
provider, scale 1): each break's docstring in lab/exercises/run/controls.py says its own (45-90 s,
break to baseline); the module took 7 min 9 s (7 drills, all `fail` as they must be).
"""
from __future__ import annotations

import time

import pytest

from lab.exam import gate
from lab.exercises import DRILLS, Lab
from lab.exercises.run.controls import CONTROLS, Control, still_in_place
from lab.exercises.observe.verdict import Verdict

from drill_verdicts import drill_run, report, run_live, topo  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.live, pytest.mark.drills]

def failed_checks(res) -> list[str]:
    """What the drill names as false: its failed checks, failed member claims, and its reason."""
    return ([c.description for c in res.checks if not c.ok]
            + [o.description for o in res.outcomes if o.verdict == Verdict.FAIL] + [res.reason])


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c.family.replace(" ", "-"))
def test_the_break_turns_the_drill_to_fail(topo, drill_run, control: Control):
    started = time.monotonic()
    res = run_live(topo, DRILLS[control.drill], drill_run, before=control.apply)
    took = round(time.monotonic() - started, 1)
    print(f"control {control.family}: {control.breaks} -> {control.drill}: {res.verdict} in {took} s\n{report(res)}")
    assert res.verdict == Verdict.FAIL, f"{control.breaks} did not flip {control.drill}:\n{report(res)}"
    assert any(control.caught_by in d for d in failed_checks(res)), \
        f"{control.drill} failed, but not on the check that must catch {control.breaks!r}:\n{report(res)}"
    # the drill's restore put the break back: baseline, and nothing of the control left
    assert res.gate_after and all(f["ok"] for f in res.gate_after), report(res)
    lab = Lab(topo, auto=True)
    assert still_in_place(lab) == []
    # the health gate, plus the lab's services running everywhere and no DROP rule towards etcd
    found = gate.findings(topo, lab.probe, lab.shell)
    assert all(f.ok for f in found), gate.still_off(found)
