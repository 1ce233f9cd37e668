"""The exam's files in its run folder ``$LAB_DIR/runs/<UTC>-exam/`` (lab.exercises.observe.evidence).

Each file has one writer, so the foreground commands and the background process never race:

- ``run.json`` (the run contract): ``finished`` stays null while the exam is open; at the end it
  gets ``drills`` (the fault's drill), the tally and ``score``.
- ``exam.json`` (the commands): seed, pool, the order drawn, the background pid, every answer,
  the hints shown, every ``--done`` check.
- ``fault.json`` (the background process): state (starting | running | error | stopped), the
  fault injected (drill, node, what, the command, its undo), when (monotonic and wall clock).
- ``exam/events.jsonl`` and ``exam/result.json``: the evidence of a drill (the watch's samples, the
  writes, marks; the commands add ``answer``, ``hint``, ``done`` and ``give-up`` marks).

The fault is written down in the trainee's own lab folder: an exam is a training aid, not a
locked room (a trainer who wants it hidden runs the seats from the trainer's account).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from lab.exercises.observe.evidence import iso, runs_root

KIND = "exam"
# The one clock of every exam process (CLOCK_MONOTONIC is shared by all processes of the host);
# a test replaces it with its fake clock.
CLOCK = time.monotonic
DRILL_FOLDER = "exam"


class ExamError(ValueError):
    """A command that cannot act on the exam (none open, one already open, ...); one line."""


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Whole-file replace, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)


def is_exam_folder(p: Path) -> bool:
    name = p.name.split("-", 1)[1] if "-" in p.name else ""
    return p.is_dir() and (name == KIND or name.startswith(KIND + "-"))


@dataclass
class Exam:
    """An exam's run folder and its files."""
    folder: Path

    @property
    def run(self) -> dict[str, Any]:
        return read_json(self.folder / "run.json")

    @property
    def state(self) -> dict[str, Any]:
        return read_json(self.folder / "exam.json")

    @property
    def fault(self) -> dict[str, Any]:
        return read_json(self.folder / "fault.json")

    @property
    def drill_dir(self) -> Path:
        return self.folder / DRILL_FOLDER

    def update_state(self, **changes: Any) -> dict[str, Any]:
        data = {**self.state, **changes}
        write_json(self.folder / "exam.json", data)
        return data

    def update_run(self, **changes: Any) -> dict[str, Any]:
        data = {**self.run, **changes}
        write_json(self.folder / "run.json", data)
        return data

    @property
    def open(self) -> bool:
        return (self.folder / "run.json").is_file() and not self.run.get("finished")

    def since_fault(self, now_mono: float | None = None) -> float | None:
        """Seconds since the fault took effect (CLOCK_MONOTONIC is one clock for every process)."""
        at = self.fault.get("fault_mono")
        if at is None:
            return None
        return round((CLOCK() if now_mono is None else now_mono) - float(at), 1)

    def mark(self, name: str, label: str, now_mono: float | None = None) -> None:
        """A mark in the exam's events, on the background process's time line (its start mark is t0)."""
        t0 = self.fault.get("t0_mono")
        wall0 = self.fault.get("t0_wall")
        if t0 is None or wall0 is None or not self.drill_dir.is_dir():
            return
        t = round((CLOCK() if now_mono is None else now_mono) - float(t0), 3)
        wall = iso(datetime.fromisoformat(wall0.replace("Z", "+00:00")) + timedelta(seconds=t))
        line = json.dumps({"t": t, "wall": wall, "type": "mark", "name": name, "label": label, "node": None},
                          ensure_ascii=False) + "\n"
        # one short line in append mode: the background process appends to the same file the same way
        fd = os.open(self.drill_dir / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def exam_folders(root: Path | None = None) -> list[Path]:
    root = root or runs_root()
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if is_exam_folder(p)), key=lambda p: p.name)


def open_exam(root: Path | None = None) -> Exam | None:
    """The exam still going on (run.json not finished), newest first."""
    for p in reversed(exam_folders(root)):
        e = Exam(p)
        if e.open:
            return e
    return None


def require_open(option: str, root: Path | None = None) -> Exam:
    e = open_exam(root)
    if e is None:
        raise ExamError(f"{option}: no exam is going on (start one with `invoke exam.start`)")
    return e


def now_iso() -> str:
    return iso(datetime.now(timezone.utc))
