"""Verdicts: each kind is produced, only pass passes, the first fail or error is the cause."""
from __future__ import annotations

import pytest

from lab.exercises.kit.outcomes import MemberState, Outcome
from lab.exercises.observe.verdict import (Result, Verdict, exit_code, judge_members, judge_split_brain, judge_writes,
                                   tally)
from lab.exercises.observe.watch import WatchRule, WatchSummary, blind_reason, summarize
from lab.exercises.observe.writes import WriteFigures


def res() -> Result:
    return Result("d", "§5")


def st(m: str, o: Outcome, **kw) -> MemberState:
    return MemberState(m, o, **kw)


ALL_REPLICA = {m: [Outcome.REPLICA] for m in ("pg1", "pg2", "pg3")}
FENCE_REASON = "the watchdog fired before the demotion finished"


def test_every_member_as_claimed_is_pass():
    verdict, members, reason = judge_members(ALL_REPLICA, {m: st(m, Outcome.REPLICA) for m in ALL_REPLICA})
    assert verdict == "pass" and reason == ""
    assert all(mv.seen == "replica" and mv.expected == ["replica"] for mv in members.values())


def test_a_stopped_member_is_not_demoted_it_fails():
    """The old check accepted `in_recovery() is not False`: a stopped PostgreSQL counted as demoted."""
    seen = {"pg1": st("pg1", Outcome.STOPPED, evidence="pg_ctl status: no server running"),
            "pg2": st("pg2", Outcome.REPLICA), "pg3": st("pg3", Outcome.REPLICA)}
    verdict, members, reason = judge_members(ALL_REPLICA, seen, explained={Outcome.FENCED: FENCE_REASON})
    assert verdict == "fail"
    assert "pg1 is stopped, the article says replica" in reason and "no server running" in reason


def test_a_fenced_member_where_fencing_is_explained_differs_with_its_evidence():
    seen = {"pg1": st("pg1", Outcome.FENCED, evidence="fencing watchdog: fired 2026-12-01T00:11:03Z"),
            "pg2": st("pg2", Outcome.REPLICA), "pg3": st("pg3", Outcome.REPLICA)}
    verdict, members, reason = judge_members(ALL_REPLICA, seen, explained={Outcome.FENCED: FENCE_REASON})
    assert verdict == "differs"
    assert members["pg1"].explained and FENCE_REASON in reason and "fired 2026-12-01" in reason
    # without the explanation the same sight is a fail, not a quiet pass
    assert judge_members(ALL_REPLICA, seen)[0] == "fail"


def test_an_unprobed_member_is_unreachable_not_as_claimed():
    verdict, members, _ = judge_members(ALL_REPLICA, {"pg1": st("pg1", Outcome.REPLICA)})
    assert verdict == "fail" and members["pg2"].seen == "unreachable"


def test_the_first_fail_or_error_is_the_verdict_and_the_rest_are_notes():
    r = res()
    r.differs("fenced instead of demoted", ["fired ..."])
    assert r.verdict == "differs" and r.evidence == ["fired ..."]
    r.fail("the old leader stayed primary")
    r.error("lost writes not countable")
    assert r.verdict == "fail" and r.reason == "the old leader stayed primary"
    assert any("lost writes not countable" in n for n in r.notes)
    assert any("fenced instead of demoted" in n for n in r.notes)
    assert not r.passed


@pytest.mark.parametrize("act,verdict", [
    (lambda r: None, "pass"),
    (lambda r: r.fail("x"), "fail"),
    (lambda r: r.differs("x", ["e"]), "differs"),
    (lambda r: r.not_applicable("no Java"), "not-applicable"),
    (lambda r: r.error("x"), "error"),
])
def test_each_verdict_kind_and_only_pass_passes(act, verdict):
    r = res()
    act(r)
    assert r.verdict == verdict
    assert r.passed is (verdict == "pass")
    assert r.to_json()["verdict"] == verdict


def test_uncountable_lost_writes_in_a_lossless_drill_are_an_error_not_a_pass():
    r = res()
    r.writes = WriteFigures(acknowledged=120, lost=None, uncounted_reason="no leader to ask")
    judge_writes(r, lossless=True)
    assert r.verdict == "error" and "could not be counted" in r.reason and "no leader" in r.reason


def test_lost_or_after_fork_writes_fail_a_lossless_drill():
    r = res()
    r.writes = WriteFigures(lost=3, after_fork=3)
    judge_writes(r, lossless=True)
    assert r.verdict == "fail" and "3 acknowledged write(s) lost" in r.reason
    r2 = res()
    r2.writes = WriteFigures(lost=0, after_fork=0)
    judge_writes(r2, lossless=True)
    assert r2.passed
    r3 = res()
    r3.writes = WriteFigures(lost=None)
    judge_writes(r3, lossless=False)      # a drill that may lose writes does not judge them
    assert r3.passed


def test_a_blind_watch_makes_the_drill_an_error():
    r = res()
    summary = summarize([], [], start=10.0, end=40.0, interval=0.5)
    why = blind_reason(summary, WatchRule())
    assert why == "the watch took no sample in the fault window"
    assert summary.double_primary is False     # ...which must not be read as "no split brain"
    r.error(why)
    assert r.verdict == "error"


def test_split_brain_judged_from_the_watch():
    r = res()
    r.watch = WatchSummary(double_primary=True, double_primary_members=["pg1", "pg2"], double_primary_seconds=1.5)
    judge_split_brain(r, split_brain=False)
    assert r.verdict == "fail" and "pg1, pg2" in r.reason
    r2 = res()
    r2.watch = WatchSummary(double_primary=False)
    judge_split_brain(r2, split_brain=True)
    assert r2.passed and r2.notes


def test_tally_and_exit_code():
    t = tally(["pass", "differs", "pass", "not-applicable"])
    assert t == {"pass": 2, "fail": 0, "differs": 1, "not-applicable": 1, "error": 0}
    assert exit_code(t) == 0
    assert exit_code(tally(["pass", "error"])) == 1
    assert exit_code(tally(["fail"])) == 1
    assert [str(v) for v in Verdict] == ["pass", "fail", "differs", "not-applicable", "error"]


def test_result_json_holds_expected_and_seen_per_member():
    from lab.exercises.observe.verdict import OutcomeCheck
    r = res()
    _, members, _ = judge_members({"pg1": [Outcome.REPLICA]}, {"pg1": st("pg1", Outcome.REPLICA, timeline=2)})
    r.outcomes.append(OutcomeCheck("all read-only", "pass", 35.0, 0.0, 21.4, members))
    d = r.to_json()
    assert d["members"] == {"pg1": {"expected": ["replica"], "seen": ["replica"]}}
    assert d["outcomes"][0]["members"]["pg1"]["timeline"] == 2
    d = r.to_json()
    assert d["members"] == {"pg1": {"expected": ["replica"], "seen": ["replica"]}}
    assert d["outcomes"][0]["members"]["pg1"]["timeline"] == 2


def test_a_verdict_stays_the_enum_and_is_written_as_its_text():
    r = Result("x", "§1")
    assert r.verdict is Verdict.PASS
    r.not_applicable("no standby cluster")
    assert r.verdict is Verdict.NOT_APPLICABLE and r.to_json()["verdict"] == "not-applicable"
    r.fail("lost writes")
    assert r.verdict is Verdict.FAIL and f"{r.verdict}" == "fail"
