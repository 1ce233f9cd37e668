"""What the dashboard shows of one lab (a seat), read from the same files the report reads.

While a drill or an exam runs, everything comes from its ``events.jsonl`` (the watch's samples, the
writer's attempts, marks, checks, the verdict), read incrementally from a byte offset: the page
and the report never disagree, because they read one stream. Between runs the dashboard's own
sampler (lab.dashboard.sampler) writes the same kind of sample into the seat's
``dashboard/events.jsonl``, so the page draws both the same way.

The exam: the trainer's view gets its state (running, answered, repaired, score); a trainee's view
gets the state without the fault, which is the point of the exam.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IDLE_FOLDER = "dashboard"
MAX_CHUNK = 512 * 1024            # bytes per answer: a long run is sent in pieces


@dataclass
class Seat:
    key: str                      # "lab" or "seat<k>"
    title: str
    lab_dir: Path


@dataclass
class Stream:
    """Where the live events of a seat are now, and what kind of thing writes them."""
    path: Path | None
    kind: str                     # drill | exam | idle | none
    run: str = ""
    drill: str = ""
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def latest_run(lab_dir: Path) -> Path | None:
    runs = lab_dir / "runs"
    folders = sorted((p for p in runs.iterdir() if (p / "run.json").exists()), key=lambda p: p.name) \
        if runs.is_dir() else []
    return folders[-1] if folders else None


def current(lab_dir: Path) -> Stream:
    """The events a page should follow now: the open run's current drill, else the idle sampler's."""
    run = latest_run(lab_dir)
    info = _json(run / "run.json") if run else {}
    if run and info.get("finished") is None:
        drills = [p for p in run.iterdir() if (p / "events.jsonl").exists()]
        if drills:
            newest = max(drills, key=lambda p: (p / "events.jsonl").stat().st_mtime)
            kind = "exam" if (run / "exam.json").exists() else "drill"
            return Stream(newest / "events.jsonl", kind, run.name, newest.name, False)
    idle = lab_dir / IDLE_FOLDER / "events.jsonl"
    if idle.exists():
        return Stream(idle, "idle", run.name if run else "", "", True,
                      {"last_run": info.get("run"), "tally": info.get("tally")})
    return Stream(None, "none")


def read_events(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Whole lines from byte ``offset`` on, and the offset after the last whole line (a line being
    written is read next time)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            chunk = f.read(MAX_CHUNK)
    except OSError:
        return [], offset
    end = chunk.rfind(b"\n") + 1
    events = []
    for line in chunk[:end].splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events, offset + end


def exam_view(lab_dir: Path, *, trainer: bool) -> dict[str, Any] | None:
    """The open (or last) exam of a seat: what it is at; the fault itself only for the trainer."""
    run = latest_run(lab_dir)
    if run is None or not (run / "exam.json").exists():
        return None
    info, state, fault = _json(run / "run.json"), _json(run / "exam.json"), _json(run / "fault.json")
    view = {"run": run.name, "open": info.get("finished") is None,
            "fault_state": fault.get("state"),
            "answers": len(state.get("answers") or []),
            "right": any(a.get("right") for a in state.get("answers") or []),
            "hints": int(state.get("hints") or 0),
            "repaired": any(c.get("ok") for c in state.get("checks") or []),
            "score": info.get("score")}
    if trainer:
        view["fault"] = {k: fault.get(k) for k in ("drill", "node", "what")}
    return view


def seats(root: Path | None, lab_dir: Path) -> list[Seat]:
    """The seats of a workshop room (``root``: its folder), or the one lab of ``lab_dir``."""
    if root is not None and root.is_dir():
        found = sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("seat")
                        and p.name[4:].isdigit()), key=lambda p: int(p.name[4:]))
        if found:
            return [Seat(p.name, f"seat {p.name[4:]}", p) for p in found]
    return [Seat("lab", "lab", lab_dir)]
