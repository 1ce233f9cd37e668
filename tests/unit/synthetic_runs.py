"""Run folders as the drill runner writes them (EVIDENCE.md), made up for report tests.

``primary_patroni_kill`` is shaped like a real run of that drill without a watchdog: the
leader's Patroni is killed at t=4, pg2 is promoted at t=26 while pg1's PostgreSQL stays primary
until the undo at t=40 (two primaries, the read-write VIP on node1 and node2); the writes
through the VIP go on to pg1 after the fork (lost), stop for a second and land on pg2.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

T0 = datetime(2026, 12, 1, 0, 10, tzinfo=timezone.utc)


def _iso(t: float) -> str:
    return (T0 + timedelta(seconds=t)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Events:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def add(self, t: float, type_: str, **fields: Any) -> None:
        self.lines.append({"t": round(t, 3), "wall": _iso(t), "type": type_, **fields})

    def text(self) -> str:
        ordered = sorted(self.lines, key=lambda e: e["t"])
        return "".join(json.dumps(e) + "\n" for e in ordered)


def _member(outcome: str, timeline: int) -> dict[str, Any]:
    return {"outcome": outcome, "timeline": timeline if outcome in ("primary", "replica") else None,
            "lag_bytes": 0 if outcome == "replica" else None,
            "error": "connection refused" if outcome == "unreachable" else None}


def primary_patroni_kill() -> tuple[dict[str, Any], Events]:
    ev = Events()
    ev.add(0.0, "mark", name="start", label="start", node=None)
    # labels as the runner writes them: "fault: <what>", the undo's <what>
    ev.add(4.0, "mark", name="fault", label="fault: Patroni on node1 killed with kill -9 (PostgreSQL left running)",
           node="node1")
    ev.add(26.0, "mark", name="promotion", label="pg2 promoted", node="node2")
    ev.add(40.0, "mark", name="undo", label="Patroni on node1 killed with kill -9 (PostgreSQL left running)",
           node="node1")
    ev.add(60.0, "mark", name="end", label="end", node=None)
    cycle = 0
    t = 0.0
    while t <= 60.0:
        if abs(t - 15.0) < 1e-9:
            ev.add(t, "sample_error", error="timeout reading pg_is_in_recovery() on node3")
        else:
            pg1 = "primary" if t < 41.0 else "stopped" if t < 47.5 else "replica"
            pg2 = "replica" if t < 26.0 else "primary"
            members = {"pg1": _member(pg1, 1 if t < 41 else 2), "pg2": _member(pg2, 1 if t < 26 else 2),
                       "pg3": _member("replica", 1 if t < 28 else 2)}
            rw = (["node1"] if t < 41.0 else []) + (["node2"] if t >= 26.5 else [])
            ev.add(t, "sample", cycle=cycle, took_s=0.21, members=members,
                   vips={"read_write": rw, "read_only": ["node3"], "haproxy": ["node1"]})
        cycle += 1
        t = round(t + 0.5, 3)
    i = 0
    t = 0.05
    while t < 60.0:
        vip_ok = not (28.0 <= t < 29.0)
        ev.add(t, "write", path="vip", ok=vip_ok, id=i, latency_s=0.004 if vip_ok else 3.0,
               server=("pg1" if t < 28.0 else "pg2") if vip_ok else None, timeline=None,
               error=None if vip_ok else "server closed the connection unexpectedly")
        hp_ok = not (7.0 <= t < 30.0)
        ev.add(t + 0.05, "write", path="haproxy", ok=hp_ok, id=i + 1, latency_s=0.004 if hp_ok else 1.0,
               server=("pg1" if t < 7 else "pg2") if hp_ok else None, timeline=None,
               error=None if hp_ok else "no server available")
        i += 2
        t = round(t + 0.1, 3)
    ev.add(30.5, "check", kind="expect", description="another member is the writable leader",
           bound_s=45.0, start=4.0, end=26.0, ok=True, detail="pg2")
    ev.add(55.0, "check", kind="expect", description="pg1 rejoined as a streaming replica",
           bound_s=60.0, start=40.0, end=47.5, ok=True, detail="")
    ev.add(20.0, "patroni", leader=None,
           members=[{"name": "pg2", "role": "replica", "state": "streaming", "timeline": 1, "lag": 0}])
    ev.add(50.0, "note", text="pg1 was rewound onto timeline 2 (pg_rewind)")
    ev.add(60.0, "verdict", verdict="pass", reason="")
    result = {"drill": "primary-patroni-kill", "section": "§5 table, row 8; §5.1",
              "claim": "kill -9 of the leader's Patroni: a replica is promoted after ttl while the old "
                       "primary still accepts writes (two primaries)",
              "verdict": "pass", "reason": "", "mode": "auto", "scale": 1.0, "started": _iso(0),
              "duration_s": 60.0, "rto_s": {"vip": 25.0, "haproxy": 26.0},
              "writes": {"attempted": 1200, "acknowledged": 1000, "lost": 20, "after_fork": 20,
                         "surviving_timeline": 2,
                         "paths": {"vip": {"outage_s": 1.0, "open": False, "to_surviving_timeline_s": 25.0,
                                           "after_fork": 20, "rto_s": 25.0},
                                   "haproxy": {"outage_s": 23.0, "open": False,
                                               "to_surviving_timeline_s": 26.0, "after_fork": 0,
                                               "rto_s": 26.0}}},
              "watch": {"samples": 120, "samples_per_s": 2.0, "longest_gap_s": 1.0, "missed_cycles": 1,
                        "double_primary": True, "double_primary_seconds": 15.0},
              "split_brain": {"samples": 120, "double_primary": True, "double_primary_seconds": 15.0,
                              "double_primary_nodes": ["pg1", "pg2"]},
              "checks": [], "notes": []}
    return result, ev


def replica_fault(name: str, verdict: str = "pass", reason: str = "") -> tuple[dict[str, Any], Events]:
    """A replica's PostgreSQL stops for 10 s: writes never stop, one primary throughout."""
    ev = Events()
    ev.add(0.0, "mark", name="start", label="start", node=None)
    ev.add(3.0, "mark", name="fault", label="stop postgresql on node3", node="node3")
    ev.add(13.0, "mark", name="undo", label="start postgresql on node3", node="node3")
    for cycle in range(0, 41):
        t = cycle * 0.5
        pg3 = "stopped" if 3.5 <= t < 14.0 else "replica"
        ev.add(t, "sample", cycle=cycle, took_s=0.2,
               members={"pg1": _member("primary", 1), "pg2": _member("replica", 1), "pg3": _member(pg3, 1)},
               vips={"read_write": ["node1"], "read_only": ["node2" if 4 <= t < 14 else "node3"],
                     "haproxy": ["node1"]})
    for i in range(200):
        ev.add(i * 0.1, "write", path="vip", ok=True, id=i, latency_s=0.003, server="pg1", timeline=1, error=None)
    result = {"drill": name, "section": "§5 table, row 2", "claim": "a replica's outage does not affect writes",
              "verdict": verdict, "reason": reason, "rto_s": {"vip": 0.0},
              "writes": {"attempted": 200, "acknowledged": 200, "lost": 0},
              "split_brain": {"samples": 41, "double_primary": False, "double_primary_seconds": 0.0}}
    return result, ev


Maker = Callable[[], tuple[dict[str, Any], Events]]


def write_run(lab_dir: Path, stamp: str, label: str, drills: dict[str, Maker],
              versions: dict[str, str] | None = None) -> Path:
    """A run folder under ``lab_dir/runs`` holding the given drills (``versions``: what its nodes ran)."""
    folder = lab_dir / "runs" / f"{stamp}-{label}"
    folder.mkdir(parents=True)
    tally = {"pass": 0, "fail": 0, "differs": 0, "not-applicable": 0, "error": 0}
    for name, make in drills.items():
        result, ev = make()
        (folder / name).mkdir()
        (folder / name / "result.json").write_text(json.dumps(result, indent=2))
        (folder / name / "events.jsonl").write_text(ev.text())
        tally[result["verdict"]] += 1
    (folder / "run.json").write_text(json.dumps({
        "run": folder.name, "started": _iso(0), "finished": _iso(60 * len(drills)),
        "command": f"invoke exercise {label} --auto", "lab": "plab-test", "commit": "0123456789abcdef",
        "scale": 1.0, "lang": "en", "drills": list(drills), "tally": tally,
        **({"versions": versions} if versions else {})}, indent=2))
    return folder
