"""A seat's last drill or exam, read from its run history (never from memory).

The run history is ``$LAB_DIR/runs/<UTC stamp>-<drill | all | exam>/run.json``
(the evidence contract, EVIDENCE.md; the stamp sorts by time). A lab whose
drills predate it keeps one file per drill under ``$LAB_DIR/drills/``: the
newest of those is shown, and the row says it came from there.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.exam import score as exam_score


@dataclass(frozen=True)
class LastRun:
    what: str            # drill name, "all", or "exam"
    when: str            # iso8601 (started)
    outcome: str         # "pass", "2 pass 1 fail", "exam: right, repaired in 84 s", "running", ...
    source: Path         # the file it was read from

    def line(self) -> str:
        return f"{self.what} {self.when[:19].replace('T', ' ')} {self.outcome}"


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tally(tally: dict[str, Any]) -> str:
    parts = [f"{n} {k}" for k, n in tally.items() if n]
    return ", ".join(parts) or "no verdict"


def _exam_outcome(run_dir: Path, run: dict[str, Any]) -> str:
    score = run.get("score") or (_json(run_dir / "exam" / "result.json") or {}).get("score") or {}
    if not score:
        return "exam running" if not run.get("finished") else "exam: no score recorded"
    return "exam: " + exam_score.short(score)


def from_runs(lab_dir: Path) -> LastRun | None:
    """The newest run folder under ``lab_dir/runs`` that has a readable run.json."""
    runs = lab_dir / "runs"
    if not runs.is_dir():
        return None
    for d in sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True):
        run = _json(d / "run.json")
        if run is None:
            continue
        kind = d.name.split("-", 1)[1] if "-" in d.name else d.name
        if kind == "exam":
            outcome = _exam_outcome(d, run)
        elif not run.get("finished"):
            outcome = "running"
        else:
            outcome = _tally(run.get("tally") or {})
        return LastRun(what=kind, when=str(run.get("started") or ""), outcome=outcome, source=d / "run.json")
    return None


def from_drill_files(lab_dir: Path) -> LastRun | None:
    """The newest per-drill result file under ``lab_dir/drills`` (the older layout)."""
    d = lab_dir / "drills"
    files = [p for p in d.glob("*.json") if p.name != "summary.json"] if d.is_dir() else []
    for p in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True):
        res = _json(p)
        if res and res.get("verdict"):
            return LastRun(what=str(res.get("drill") or p.stem), when=str(res.get("started") or ""),
                           outcome=f"{res['verdict']} (from drills/)", source=p)
    return None


def last_run(lab_dir: Path) -> LastRun | None:
    """The seat's last drill or exam: the run history first, the older per-drill files otherwise."""
    return from_runs(lab_dir) or from_drill_files(lab_dir)
