"""What every drill's result must show on the default lab, whatever its claim, and a run folder for the
live drills (their evidence is kept like `invoke exercise`'s)."""
from __future__ import annotations

import json
import os
from typing import Callable

import pytest

from labcore import state as lab_state
from labcore.topology import load
from lab.exercises import Lab, run_drill
from lab.exercises.kit.probe import Probe
from lab.exercises.kit.shell import SshShell
from lab.exercises.run.controls import with_break
from lab.exercises.observe.evidence import RunRecorder, git_commit
from lab.exercises.run.runner import WATCH_RULE, watch_was_blind
from lab.exercises.api.timing import timeout_scale
from lab.exercises.observe.watch import blind_reason
from lab.exercises.observe.verdict import Verdict

WRITE_PATHS = {"vip", "haproxy", "vip-per-txn"}


@pytest.fixture(scope="module")
def topo(request):
    """The lab, brought up by the session fixture of tests/live/conftest.py.
    LAB_REUSE=1 runs the drills on an already provisioned lab instead (re-running one drill)."""
    if not (os.environ.get("LAB_REUSE") == "1" and lab_state.load().phase == "provisioned"):
        request.getfixturevalue("live_lab")
    if lab_state.load().phase != "provisioned":
        pytest.skip("the lab is not provisioned (run `invoke up`)")
    return load()


@pytest.fixture(scope="module")
def drill_run(request, topo):
    """One run folder per test module ($LAB_DIR/runs/<UTC>-all/), finished with its tally."""
    run = RunRecorder("all", command=f"pytest {request.module.__name__}", lab=topo.name, drills=[],
                      scale=timeout_scale(), commit=git_commit(),
                      versions=Probe(topo, SshShell(topo)).running_versions())
    yield run
    run.finish()


def run_live(topo, cls, run: RunRecorder, before: Callable[[Lab], None] | None = None):
    """One drill in auto mode, its events in ``run``'s folder. ``before``: something done on the drill's
    Lab once its health gate has passed (a negative control's break, lab.exercises.run.controls), first
    thing in the drill's run and put back by the drill's restore. Before the gate it would be refused:
    the gate sees a break in Patroni's dynamic configuration (pause, failsafe_mode) as off the baseline.

    A drill whose watch was blind ends in ``error`` (the lab could not see, so it says nothing of the
    claim); on a loaded CI host that happens now and then, so such a run is kept, said, and run once
    more. Any other verdict, and a second blind run, is the test's answer."""
    run.info["drills"].append(cls.name)
    res = _run_once(topo, cls, run, before, cls.name)
    if watch_was_blind(res):
        print(f"{cls.name}: {res.reason}; its evidence is kept, and the drill runs once more")
        res = _run_once(topo, cls, run, before, f"{cls.name}-again")
    return res


def _run_once(topo, cls, run: RunRecorder, before: Callable[[Lab], None] | None, folder: str):
    lab = Lab(topo, auto=True, results_dir=lab_state.lab_dir() / "drills")
    drill = cls if before is None else with_break(cls, before)
    rec = run.drill(folder)
    try:
        res = run_drill(drill, lab, recorder=rec)
    finally:
        rec.close()
    run.record_verdict(folder, res.verdict)
    return res


def report(res) -> str:
    d = res.to_json()
    return json.dumps({"verdict": res.verdict, "reason": res.reason, "evidence": res.evidence, "rto_s": res.rto_s,
                       "bounds": d["bounds"], "members": res.seen_members(), "metrics": res.metrics,
                       "notes": res.notes, "watch": {k: v for k, v in d["watch"].items() if k != "outcomes_seen"},
                       "writes": {k: v for k, v in d["writes"].items() if k != "paths"},
                       "paths": d["writes"].get("paths"),
                       "failed_checks": [c.__dict__ for c in res.checks if not c.ok]}, indent=1, default=str)


def assert_sound(res, cls) -> None:
    """pass, or differs with its reason and evidence; never not-applicable on the default lab; every check
    came true within its bound (and measured on the drill's time line); every article bound kept; a watch
    that saw the fault window; writes counted on every path."""
    assert res.verdict in (Verdict.PASS, Verdict.DIFFERS), report(res)
    if res.verdict == Verdict.DIFFERS:
        assert res.reason and res.evidence, f"differs needs a reason and evidence:\n{report(res)}"
    assert res.checks and all(c.ok and c.end >= c.start for c in res.checks), report(res)
    assert all(b.ok for b in res.bounds.values()), report(res)
    for oc in res.outcomes:       # per member: the claimed outcome and the one seen
        assert oc.verdict in (Verdict.PASS, Verdict.DIFFERS) and all(mv.seen for mv in oc.members.values()), report(res)
    w = res.watch
    assert w.samples > 0 and blind_reason(w.fault_window, w.rule or WATCH_RULE) is None, report(res)
    if cls.writes:
        assert set(res.rto_s) == WRITE_PATHS, report(res)
        assert res.writes.acknowledged > 0 and res.writes.lost is not None, report(res)
        assert res.writes.surviving_timeline is not None, report(res)
    if cls.lossless:
        assert res.writes.lost == 0 and res.writes.after_fork == 0, report(res)
    if cls.rto_zero:
        assert all(f.refused == 0 and f.rto_s == 0 for f in res.writes.paths.values()), report(res)
    if cls.split_brain is False:
        assert w.max_primaries_at_once <= 1, report(res)
