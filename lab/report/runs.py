"""Reading run folders as the drill runner writes them (the contract: EVIDENCE.md, later the
docstring of ``lab/exercises/observe/evidence.py``). Nothing here writes into a run folder: a run is
evidence and stays as it was recorded."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labcore import state as lab_state


class RunError(ValueError):
    """A run that cannot be found or read; the message is one line and says what to do."""


@dataclass
class DrillRun:
    name: str
    folder: Path
    result: dict[str, Any]
    events: list[dict[str, Any]]
    bad_lines: int = 0                  # lines of events.jsonl that were not JSON objects

    @property
    def verdict(self) -> str:
        return str(self.result.get("verdict") or "unknown")

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def marks(self) -> list[dict[str, Any]]:
        return self.of_type("mark")

    def mark(self, name: str) -> float | None:
        """When the first mark of that name was set (seconds since the drill's start), or None."""
        for m in self.marks():
            if m.get("name") == name:
                return float(m["t"])
        return None


@dataclass
class Run:
    folder: Path
    meta: dict[str, Any]
    drills: list[DrillRun] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.folder.name


def runs_dir() -> Path:
    return lab_state.lab_dir(create=False) / "runs"


def reports_dir() -> Path:
    return lab_state.lab_dir(create=False) / "reports"


def list_runs(base: Path | None = None) -> list[Path]:
    """Run folders, oldest first (their names start with a sortable UTC timestamp)."""
    base = base or runs_dir()
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / "run.json").is_file())


def find(which: str | None = None, base: Path | None = None) -> Path:
    """The run folder named by ``which``: a path, a folder name, or the start of one (a unique
    prefix such as ``20261201T0012``); the latest run when ``which`` is empty."""
    base = base or runs_dir()
    runs = list_runs(base)
    if not which:
        if not runs:
            raise RunError(f"no run in {base}: run a drill first (`invoke exercise <drill> --auto`)")
        return runs[-1]
    as_path = Path(which)
    if as_path.is_dir():
        if not (as_path / "run.json").is_file():
            raise RunError(f"{which} is not a run folder (it has no run.json)")
        return as_path
    matches = [p for p in runs if p.name == which] or [p for p in runs if p.name.startswith(which)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(p.name for p in runs[-5:]) or "none"
    if not matches:
        raise RunError(f"no run named {which!r} in {base} (latest: {known})")
    raise RunError(f"{which!r} names {len(matches)} runs; give more of the name (latest: {known})")


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is unreadable: {e}") from None
    if not isinstance(data, dict):
        raise RunError(f"{path} does not hold a JSON object")
    return data


def read_events(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Events of one drill, in file order, and how many lines were not JSON objects (a run that
    was interrupted may end in half a line)."""
    events, bad = [], 0
    if not path.is_file():
        return events, bad
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(e, dict) and isinstance(e.get("t"), (int, float)) and e.get("type"):
            events.append(e)
        else:
            bad += 1
    return events, bad


def load(folder: Path) -> Run:
    """A run and its drills, in the order run.json lists them (folders it does not list follow)."""
    meta = _json(folder / "run.json")
    names = [str(n) for n in meta.get("drills") or []]
    names += sorted(p.name for p in folder.iterdir()
                    if p.is_dir() and p.name not in names and (p / "result.json").is_file())
    run = Run(folder, meta)
    for name in names:
        d = folder / name
        result = _json(d / "result.json") if (d / "result.json").is_file() else \
            {"verdict": "error", "reason": "the drill left no result.json (interrupted?)"}
        events, bad = read_events(d / "events.jsonl")
        run.drills.append(DrillRun(name, d, result, events, bad))
    return run
