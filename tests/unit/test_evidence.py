"""The evidence format: run folders never overwritten, events as the contract says, read back whole."""
from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest

from lab.exercises.observe import evidence
from lab.exercises.observe.evidence import RunRecorder
from lab.exercises.observe.verdict import Result
from lab.report import runs as report_runs

from fake_clock import FakeClock

NOW = datetime(2026, 12, 1, 0, 15, 0, tzinfo=timezone.utc)
RUN_KEYS = {"run", "started", "finished", "command", "lab", "commit", "scale", "lang", "drills", "tally"}
VERDICT_KEYS = {"pass", "fail", "differs", "not-applicable", "error"}


def recorder(tmp_path, kind="all", drills=("etcd-down", "replica-pg-stop"), clock=None, now=NOW):
    return RunRecorder(kind, command="invoke exercise all --auto", lab="plab-test", drills=list(drills),
                       commit="abc123", root=tmp_path / "runs", clock=(clock or FakeClock()).monotonic,
                       now=lambda: now)


def test_the_run_folder_and_run_json_follow_the_contract(tmp_path):
    run = recorder(tmp_path)
    assert run.name == "20261201T001500Z-all"
    info = json.loads((run.path / "run.json").read_text())
    assert set(info) == RUN_KEYS
    assert info["finished"] is None and set(info["tally"]) == VERDICT_KEYS
    run.record_verdict("etcd-down", "differs")
    run.record_verdict("replica-pg-stop", "pass")
    tally = run.finish()
    info = json.loads((run.path / "run.json").read_text())
    assert tally == info["tally"] == {"pass": 1, "fail": 0, "differs": 1, "not-applicable": 0, "error": 0}
    assert info["finished"] == "2026-12-01T00:15:00.000Z"


def test_a_second_run_in_the_same_second_gets_its_own_folder_and_the_first_is_untouched(tmp_path):
    first = recorder(tmp_path, kind="etcd-down")
    first.finish()
    before = (first.path / "run.json").read_text()
    second = recorder(tmp_path, kind="etcd-down")
    assert second.path != first.path and second.name == "20261201T001500Z-etcd-down-2"
    assert (first.path / "run.json").read_text() == before


def test_a_bad_kind_is_refused_before_anything_is_created(tmp_path):
    with pytest.raises(ValueError, match="run kind"):
        recorder(tmp_path, kind="../escape")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_events_count_from_the_start_mark_with_wall_time_and_type(tmp_path):
    clock = FakeClock()
    clock.now = 500.0
    run = recorder(tmp_path, clock=clock)
    d = run.drill("etcd-down")
    clock.now = 512.3456
    d.mark("fault", "etcd stopped on node4", node="node4")
    d.event("write", at=511.0, path="vip", ok=True, id=1, latency_s=0.01, server="pg1", timeline=1, error=None)
    d.check("expect", "every member is a replica", 35.0, start=512.3456, end=530.0, ok=True)
    d.verdict("differs", "pg1 fenced")
    d.close()
    events = [json.loads(line) for line in (d.folder / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events] == ["mark", "mark", "write", "check", "verdict"]
    assert events[0]["name"] == "start" and events[0]["t"] == 0.0
    assert events[1]["t"] == 12.346 and events[1]["node"] == "node4"
    assert events[2]["t"] == 11.0                               # when it happened, not when it was logged
    assert events[3]["start"] == 12.346 and events[3]["end"] == 30.0 and events[3]["bound_s"] == 35.0
    assert events[1]["wall"] == "2026-12-01T00:15:12.346Z"
    for e in events:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["wall"])


def test_appends_from_many_threads_are_whole_lines(tmp_path):
    d = recorder(tmp_path).drill("etcd-down")

    def write(n):
        for i in range(300):
            d.event("sample", cycle=i, took_s=0.01, members={"pg1": {"outcome": "primary", "note": "x" * 200 * n}},
                    vips=None)
    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    d.close()
    lines = (d.folder / "events.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 8 * 300
    assert all(json.loads(line)["type"] in ("mark", "sample") for line in lines)


def test_the_reports_reader_reads_back_what_was_written(tmp_path):
    """The writer here and the report's reader (lab.report.runs) agree on the format."""
    clock = FakeClock()
    old = recorder(tmp_path, kind="etcd-down", drills=["etcd-down"], clock=clock, now=NOW - timedelta(hours=1))
    dr = old.drill("etcd-down")
    res = Result("etcd-down", "§5 row 10", claim="every member a replica")
    res.fail("pg1 stayed primary")
    dr.result(res.to_json())
    dr.close()
    old.record_verdict("etcd-down", res.verdict)
    old.finish()

    new = recorder(tmp_path, clock=clock)               # interrupted: one of two drills done, never finished
    d = new.drill("etcd-down")
    d.result(Result("etcd-down", "§5", verdict="pass").to_json())
    clock.now = 3.5
    d.mark("fault", "x")
    new.record_verdict("etcd-down", "pass")
    with (d.folder / "events.jsonl").open("a") as f:    # a line cut short by the interruption
        f.write('{"t": 1.0, "ty')
    d.close()

    folders = report_runs.list_runs(tmp_path / "runs")
    assert [p.name for p in folders] == ["20261130T231500Z-etcd-down", "20261201T001500Z-all"]
    loaded = report_runs.load(old.path)
    assert loaded.drills[0].verdict == "fail" and loaded.drills[0].result["claim"] == "every member a replica"
    assert loaded.meta["tally"]["fail"] == 1 and loaded.meta["finished"]
    last = report_runs.load(folders[-1])
    assert last.meta["finished"] is None and last.meta["tally"]["pass"] == 1
    assert last.drills[0].mark("fault") == 3.5 and last.drills[0].bad_lines == 1
    # the drill the interruption never reached has no folder; the reader says so, it does not pass it
    assert [(dr.name, dr.verdict) for dr in last.drills][1] == ("replica-pg-stop", "error")
    assert not (new.path / "replica-pg-stop").exists()


def test_runs_live_under_the_labs_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path / "lab"))
    assert evidence.runs_root() == tmp_path / "lab" / "runs" == report_runs.runs_dir()
