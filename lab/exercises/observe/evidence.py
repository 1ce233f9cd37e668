"""Evidence: every run of the drills keeps what it saw, in a folder nobody overwrites.

This docstring is the contract between the runner, which writes the evidence (this module),
and the report, which reads it (``lab.report.runs.load``; ``invoke exercise --runs`` lists the
folders with the tally of their run.json). Keys may be added; none of these may be renamed.

Run folder: ``$LAB_DIR/runs/<UTC YYYYmmddTHHMMSSZ>-<drill | all | exam>/`` (when two runs
start in the same second, the later one gets ``-2``, ``-3``, ... appended; it never
replaces a folder).

``run.json``::

    {"run": "<folder name>", "started": iso8601, "finished": iso8601 | null,
     "command": "invoke exercise all --auto", "lab": "<lab.name>", "commit": "<git sha>" | null,
     "scale": 1.0, "lang": "en", "drills": ["name", ...],
     "tally": {"pass": n, "fail": n, "differs": n, "not-applicable": n, "error": n}}

``finished`` stays null while the run goes on (or when it was interrupted); ``tally`` is
rewritten after every drill, so an interrupted run still counts what it finished.

``<drill>/result.json``: the drill's Result (lab.exercises.observe.verdict.Result.to_json): verdict
(pass | fail | differs | not-applicable | error), reason, evidence, section, claim, checks
(each with kind, description, ok, bound_s, start, end: seconds from the fault), outcomes
(per member the outcome the article claims and the one seen), members (the same, per
member), metrics, bounds (each a verdict.Bound), rto_s, writes (writes.WriteFigures: the totals
and the figures per path), watch (watch.WatchSummary of the drill, with its fault_window's and the
rule), split_brain (watch.SplitBrain), gate_before/after, notes. The figures are dataclasses
written with exactly these keys; ``Result.from_json`` reads a result.json of any age back.

``<drill>/events.jsonl``: one JSON object per line; every line has ``t`` (float seconds since
the drill's start mark, monotonic clock, 3 decimals), ``wall`` (iso8601 UTC) and ``type``:

- ``{"type": "mark", "name": "start|fault|undo|promotion|restore|end|<other>", "label": str, "node": str|null}``
- ``{"type": "sample", "cycle": int, "took_s": float,
  "members": {"pg1": {"outcome": "primary|replica|stopped|fenced|unreachable",
  "timeline": int|null, "lag_bytes": int|null, "error": str|null}, ...},
  "vips": {"read_write": ["node1"], "read_only": ["node2"], "haproxy": ["node1"]} | null}``
  (members also carry ``lsn``, ``evidence``, ``started``; a sample may carry ``vip_errors`` and
  ``probe_errors``)
- ``{"type": "sample_error", "error": str}``
- ``{"type": "write", "path": "vip|haproxy|<other>", "ok": bool, "id": int, "latency_s": float,
  "server": "pg1"|null, "timeline": int|null, "error": str|null}`` (``t`` is when the server
  answered; also ``lsn``, ``sync_cancelled``)
- ``{"type": "check", "kind": "expect|hold", "description": str, "bound_s": float,
  "start": float, "end": float, "ok": bool, "detail": str}`` (start/end: ``t`` of the check)
- ``{"type": "patroni", "leader": "pg1"|null,
  "members": [{"name": str, "role": str, "state": str, "timeline": int|null, "lag": int|null}]}``
- ``{"type": "note", "text": str}``
- ``{"type": "verdict", "verdict": str, "reason": str}``

Member outcomes: lab.exercises.outcomes (primary: answers, writable; replica: answers, in
recovery; stopped: no postmaster; fenced: killed by the watchdog/fencer, with evidence;
unreachable: no answer, the error is kept).
"""
from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from labcore import state as lab_state
from labcore.topology import ROOT
from lab.exercises.observe.verdict import tally

RUNS = "runs"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def runs_root() -> Path:
    return lab_state.lab_dir(create=False) / RUNS


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def git_commit(repo: Path | None = None) -> str | None:
    repo = repo or ROOT
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _json(obj: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False)


class DrillRecorder:
    """The events of one drill: a thread-safe, line-at-a-time append to ``events.jsonl``.
    ``t`` counts from the start mark, written when the recorder opens."""

    def __init__(self, folder: Path, *, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=False)
        self.clock = clock
        self.t0 = clock()
        self.wall0 = now()
        self._lock = threading.Lock()
        self._file = (folder / "events.jsonl").open("a", encoding="utf-8")
        self.mark("start", "the drill starts")

    def t(self, at: float | None = None) -> float:
        """Seconds since the start mark of a monotonic instant (now when None)."""
        return round((self.clock() if at is None else at) - self.t0, 3)

    def event(self, type: str, at: float | None = None, **fields: Any) -> dict[str, Any]:
        t = self.t(at)
        ev = {"t": t, "wall": iso(self.wall0 + timedelta(seconds=t)), "type": type, **fields}
        line = _json(ev) + "\n"
        with self._lock:
            if not self._file.closed:
                self._file.write(line)
                self._file.flush()
        return ev

    def mark(self, name: str, label: str = "", node: str | None = None, at: float | None = None) -> dict:
        return self.event("mark", at=at, name=name, label=label, node=node)

    def note(self, text: str) -> dict:
        return self.event("note", text=text)

    def check(self, kind: str, description: str, bound_s: float, start: float, end: float, ok: bool,
              detail: str = "") -> dict:
        """``start``/``end``: monotonic instants of the check; written as ``t`` values."""
        return self.event("check", at=end, kind=kind, description=description, bound_s=round(bound_s, 3),
                          start=self.t(start), end=self.t(end), ok=ok, detail=detail)

    def verdict(self, verdict: str, reason: str) -> dict:
        return self.event("verdict", verdict=verdict, reason=reason)

    def result(self, data: dict[str, Any]) -> Path:
        p = self.folder / "result.json"
        tmp = p.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
        tmp.replace(p)
        return p

    def close(self) -> None:
        with self._lock:
            self._file.close()


class RunRecorder:
    """One run folder: ``run.json`` now (finished null), a DrillRecorder per drill, the tally at the end."""

    def __init__(self, kind: str, *, command: str, lab: str, drills: list[str], scale: float = 1.0,
                 lang: str = "en", commit: str | None = None, root: Path | None = None,
                 versions: dict[str, str | None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        if not _NAME.match(kind):
            raise ValueError(f"run kind {kind!r}: lower-case letters, digits and '-' only")
        self.clock, self.now = clock, now
        root = root or runs_root()
        root.mkdir(parents=True, exist_ok=True)
        started = now()
        stamp = started.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for i in range(1, 1000):
            name = f"{stamp}-{kind}" + (f"-{i}" if i > 1 else "")
            try:
                (root / name).mkdir()
                break
            except FileExistsError:
                continue
        else:
            raise RuntimeError(f"no free run folder for {stamp}-{kind} in {root}")
        self.path = root / name
        self.info: dict[str, Any] = {"run": name, "started": iso(started), "finished": None, "command": command,
                                     "lab": lab, "commit": commit, "scale": scale, "lang": lang,
                                     "drills": list(drills), "tally": tally([])}
        if versions is not None:     # what the nodes ran (probe.running_versions), for the version table
            self.info["versions"] = dict(versions)
        self.verdicts: dict[str, str] = {}
        self._write()

    @property
    def name(self) -> str:
        return self.path.name

    def drill(self, name: str) -> DrillRecorder:
        return DrillRecorder(self.path / name, clock=self.clock, now=self.now)

    def record_verdict(self, drill: str, verdict: str) -> None:
        """Keep run.json's tally current after each drill (an interrupted run still counts)."""
        self.verdicts[drill] = verdict
        self.info["tally"] = tally(self.verdicts.values())
        self._write()

    def finish(self) -> dict[str, int]:
        self.info["finished"] = iso(self.now())
        self.info["tally"] = tally(self.verdicts.values())
        self._write()
        return self.info["tally"]

    def _write(self) -> None:
        p = self.path / "run.json"
        tmp = p.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.info, indent=2, ensure_ascii=False) + "\n")
        tmp.replace(p)
