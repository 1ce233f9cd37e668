"""A result's figures are dataclasses written with the evidence contract's JSON keys, and a
result.json written before they were typed still loads."""
from __future__ import annotations

import json

from lab.exercises.observe.verdict import Bound, Result, Verdict
from lab.exercises.observe.watch import SplitBrain, WatchRule, WatchSummary, summarize
from lab.exercises.observe.writes import PathFigures, Survivor, WriteAttempt, WriteFigures, write_figures

import synthetic_runs

# the keys result.json has always had (lab.exercises.observe.evidence): none may be renamed
PATH_KEYS = ["attempts", "acknowledged", "refused", "sync_cancelled", "outage_s", "outages", "open",
             "longest_ack_gap_s", "to_surviving_timeline_s", "after_fork", "after_fork_ids", "unclassified",
             "servers", "classified", "rto_s"]
WRITES_KEYS = ["attempted", "acknowledged", "sync_cancelled", "lost", "lost_ids", "counted_on", "after_fork",
               "surviving_timeline", "forks", "paths"]
WATCH_KEYS = ["window_s", "interval_s", "samples", "samples_per_s", "longest_gap_s", "longest_gap_from",
              "expected_cycles", "missed_cycles", "missed_share", "sample_errors", "vip_samples", "vip_errors", "max_primaries_at_once",
              "double_primary", "double_primary_members", "double_primary_seconds", "first_double_primary_at",
              "vip_held_twice", "outcomes_seen"]
SPLIT_BRAIN_KEYS = ["samples", "max_primaries_at_once", "double_primary", "double_primary_members",
                    "double_primary_seconds", "vip_held_twice"]


def attempts() -> list[WriteAttempt]:
    return [WriteAttempt("vip", i, 10.0 + i, 10.01 + i, ok=i != 3, server="pg1", timeline=1, lsn=100 * i)
            for i in range(6)]


def test_write_figures_are_written_with_the_contracts_keys():
    counted = write_figures(attempts(), 11.0, survivor=Survivor(1, {}), present={0, 1, 2, 4, 5}, counted_on="pg1")
    d = counted.to_json()
    assert list(d) == WRITES_KEYS + ["lost_not_after_fork", "after_fork_but_present"]
    assert list(d["paths"]["vip"]) == PATH_KEYS
    uncounted = write_figures(attempts(), 11.0, survivor=None, present=None, uncounted_reason="no leader").to_json()
    assert list(uncounted) == WRITES_KEYS + ["uncounted_reason"] and uncounted["lost"] is None


def test_write_figures_round_trip_through_json():
    figures = write_figures(attempts(), 11.0, survivor=Survivor(2, {1: 250}), present={0, 1, 2}, counted_on="pg2")
    again = WriteFigures.from_json(json.loads(json.dumps(figures.to_json())))
    assert again == figures and isinstance(again.paths["vip"], PathFigures)


def test_the_watch_and_split_brain_keep_their_keys_and_round_trip():
    summary = summarize([], [], start=0.0, end=4.0, interval=0.5)
    assert list(summary.to_json()) == WATCH_KEYS
    drill = WatchSummary(**{**vars(summary), "fault_window": summary, "rule": WatchRule()})
    d = json.loads(json.dumps(drill.to_json()))
    assert list(d) == WATCH_KEYS + ["fault_window", "rule"] and list(d["fault_window"]) == WATCH_KEYS
    assert d["rule"] == {"max_missed_share": 0.2, "max_gap_s": 2.0, "min_cycles_for_share": 10}
    assert WatchSummary.from_json(d) == drill
    assert list(drill.split_brain().to_json()) == SPLIT_BRAIN_KEYS
    assert SplitBrain.from_json(drill.split_brain().to_json()) == drill.split_brain()


def test_a_result_without_figures_writes_empty_objects_as_before():
    d = Result("x", "§1").to_json()
    assert (d["writes"], d["watch"], d["split_brain"], d["bounds"]) == ({}, {}, {}, {})
    assert d["verdict"] == "pass" and json.loads(json.dumps(d))["verdict"] == "pass"


def test_a_bound_keeps_per_path_only_where_it_has_one():
    assert list(Bound(3.0, 10.0, "ttl", True).to_json()) == ["seen_s", "bound_s", "derived", "ok"]
    assert Bound(None, 1.5, "cadence", False, per_path={"vip": {"refused": 0}}).to_json()["per_path"] == \
        {"vip": {"refused": 0}}


def test_a_result_round_trips_through_its_json():
    r = Result("primary-patroni-kill", "§5", metrics={"x_s": 1.5}, rto_s={"vip": 2.0},
               writes=write_figures(attempts(), 11.0, survivor=Survivor(1, {}), present={0, 1, 2, 4, 5}),
               watch=summarize([], [], start=0.0, end=4.0, interval=0.5))
    r.bounds["x_s"] = Bound(1.5, 20.0, "loop_wait + 10", True)
    r.split_brain = r.watch.split_brain()
    r.differs("fenced instead of demoted", ["fired"])
    assert r.verdict is Verdict.DIFFERS          # the enum, not its text
    d = json.loads(json.dumps(r.to_json(), default=str))
    again = Result.from_json(d)
    assert again.verdict is Verdict.DIFFERS and again.to_json() == d


def test_a_result_json_written_before_the_figures_were_typed_still_loads():
    old, _ = synthetic_runs.primary_patroni_kill()
    res = Result.from_json(old)
    assert res.verdict is Verdict.PASS and res.rto_s == {"vip": 25.0, "haproxy": 26.0}
    assert res.writes.lost == 20 and res.writes.surviving_timeline == 2
    assert res.writes.paths["haproxy"].outage_s == 23.0 and res.writes.paths["vip"].rto_s == 25.0
    assert res.writes.paths["vip"].attempts == 0                 # a key that file lacks: the default
    assert res.watch.double_primary and res.watch.double_primary_seconds == 15.0 and res.watch.fault_window is None
    assert res.split_brain.double_primary and res.split_brain.samples == 120
    d = res.to_json()
    for key in ("drill", "section", "claim", "verdict", "reason", "rto_s"):
        assert d[key] == old[key]
    for name in ("writes", "watch", "split_brain"):     # every value the old file had that the types know
        assert {k: v for k, v in old[name].items() if k in d[name] and k != "paths"} == \
            {k: d[name][k] for k in old[name] if k in d[name] and k != "paths"}
    replica, _ = synthetic_runs.replica_fault("replica-postgres-stop", verdict="fail", reason="x")
    r = Result.from_json(replica)
    assert r.verdict is Verdict.FAIL and r.writes.lost == 0 and r.watch is None and r.to_json()["watch"] == {}
