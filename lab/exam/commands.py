"""What ``invoke exam.start | exam.answer | exam.hint | exam.done | exam.give-up`` do. Each returns the text
to print, or raises ExamError (one line) having changed nothing. The background process is reached
through a ``Background`` (the real one starts ``python -m lab.exam.background``; tests give their own)."""
from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Callable, Protocol

from lab.exam import pool, process
from lab.exam import gate as exam_gate
from lab.exam import score as exam_score
from lab.exam.record import Exam, ExamError, now_iso, open_exam, read_json, require_open, write_json
from lab.exercises.run import recovery
from lab.exercises.api import steps
from lab.exercises.api.context import Lab
from lab.exercises.observe.evidence import RunRecorder, git_commit, runs_root
from lab.i18n import current, drill_text, t, unbreak_cjk
from lab.i18n.phrases import said
from lab.exercises.api.model import DRILLS
from lab.exercises.observe.verdict import tally
from labcore import poll
from labcore.suggest import unknown
from labcore.topology import Topology

START_WITHIN = 240.0      # gate (90 s) + writer + the fault seen in effect (30 s), with room on a busy host
DONE_WITHIN = 60.0        # a member just started needs a loop_wait or two to stream again


class Background(Protocol):
    def start(self, exam: Exam) -> int: ...

    def alive(self, pid: int) -> bool: ...

    def stop(self, pid: int) -> bool: ...


class ProcessBackground:
    """The real one: a detached ``python -m lab.exam.background <run folder>``."""

    def start(self, exam: Exam) -> int:
        return process.start(["lab.exam.background", str(exam.folder)], exam.folder / "background.log")

    def alive(self, pid: int) -> bool:
        return process.alive(pid)

    def stop(self, pid: int) -> bool:
        return process.stop(pid)


# --- exam.start ---------------------------------------------------------------------------

def start(topo: Topology, background: Background, *, from_: str | None, seed: Any,
          root: Path | None = None, clock: poll.Clock = poll.SYSTEM) -> str:
    names = pool.parse_from(from_, list(DRILLS))
    chosen = pool.parse_seed(seed)
    going_on = open_exam(root)
    if going_on is not None:
        raise ExamError(f"exam.start: an exam is already going on ({going_on.folder.name}); "
                        "`invoke exam.done` or `invoke exam.give-up` ends it")
    scale = poll.timeout_scale()      # the command's multiplier; the background process is given it
    seed_used = chosen if chosen is not None else random.SystemRandom().randrange(1, 10**6)
    order = pool.draw(names, seed_used)
    command = "invoke exam.start" + (f" --from {','.join(names)}" if from_ else "") + f" --seed {seed_used}"
    run = RunRecorder("exam", command=command, lab=topo.name, drills=[], scale=scale, lang=current(),
                      commit=git_commit(), root=root or runs_root())
    exam = Exam(run.path)
    exam.update_state(seed=seed_used, pool=names, order=order, lang=current(), scale=scale, answers=[], hints=0,
                      checks=[], started=now_iso())
    pid = background.start(exam)
    exam.update_state(pid=pid)
    poll.until(lambda: exam.fault.get("state") in ("running", "error") or not background.alive(pid),
               START_WITHIN * scale, 0.5, clock)
    fault = exam.fault
    if fault.get("state") != "running":
        background.stop(pid)
        why = fault.get("error") or f"the background process did not report a fault within {START_WITHIN * scale:g} s"
        _close_run(exam, "error", None)
        raise ExamError(f"exam.start: no exam started: {why.splitlines()[0]} (see {exam.folder})")
    return t("exam_started", folder=exam.folder.name, seed=seed_used)


def _running(option: str, root: Path | None) -> Exam:
    exam = require_open(option, root)
    if exam.fault.get("state") not in ("running", "stopped"):
        raise ExamError(f"{option}: the exam {exam.folder.name} has no fault in place "
                        f"({exam.fault.get('state') or 'starting'}); try again in a moment")
    return exam


# --- exam.answer --------------------------------------------------------------------------

def answer(name: str, *, root: Path | None = None) -> str:
    name = (name or "").strip()
    if name not in DRILLS:
        raise ExamError(f"exam.answer: {unknown('drill', name, list(DRILLS), listing='invoke exercise --list')}")
    exam = _running("exam.answer", root)
    right = name == exam.fault.get("drill")
    state = exam.state
    already = any(a.get("right") for a in state.get("answers") or [])
    after = exam.since_fault()
    exam.update_state(answers=[*state.get("answers", []), {"drill": name, "right": right, "after_s": after,
                                                           "wall": now_iso()}])
    exam.mark("answer", f"answer {name}: {'right' if right else 'wrong'}")
    count = len(state.get("answers") or []) + 1
    if right:
        return t("exam_right", name=name, again=t("exam_right_again") if already else "",
                 count=count, after=exam_score.seconds(after))
    return t("exam_wrong", name=name, count=count)


# --- exam.hint ----------------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(\"'])|(?<=[。！？])")


def story_lines(drill: str) -> list[str]:
    """The drill's story, one sentence a line, in the trainee's language."""
    text = unbreak_cjk(str(drill_text(drill, "story", english=DRILLS[drill].story)))
    text = " ".join(text.split())
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def hint(*, root: Path | None = None) -> str:
    exam = _running("exam.hint", root)
    lines = story_lines(exam.fault["drill"])
    shown = int(exam.state.get("hints") or 0)
    if shown >= len(lines):
        return t("exam_no_more_hints", count=len(lines)) + "\n" + \
            "\n".join(f"  {i + 1}. {s}" for i, s in enumerate(lines))
    exam.update_state(hints=shown + 1)
    exam.mark("hint", f"hint {shown + 1}")
    return t("exam_hint", n=shown + 1, count=len(lines)) + "\n" + "\n".join(
        f"  {i + 1}. {s}" for i, s in enumerate(lines[:shown + 1]))


# --- exam.done ----------------------------------------------------------------------------

def done(lab: Lab, background: Background, *, root: Path | None = None) -> tuple[bool, str]:
    """The gate (polled up to DONE_WITHIN s): healthy ends the exam with its score; otherwise what is
    still off, and the exam goes on."""
    exam = _running("exam.done", root)
    found: list = []

    def healthy() -> bool:
        nonlocal found
        found = exam_gate.findings(lab.topo, lab.probe, lab.shell)
        return all(f.ok for f in found)
    ok, _, _ = poll.until(healthy, lab.bound(DONE_WITHIN), 2.0, lab.clock)
    after = exam.since_fault()
    state = exam.state
    off = [f"{f.check}: {f.detail}" for f in found if not f.ok]
    exam.update_state(checks=[*state.get("checks", []), {"after_s": after, "ok": ok, "off": off}])
    exam.mark("done", "exam.done: the lab is healthy" if ok else "exam.done: still off: " + "; ".join(off))
    if not ok:
        return False, (t("exam_not_yet", after=exam_score.seconds(after),
                         within=exam_score.seconds(lab.bound(DONE_WITHIN))) + "\n" + exam_gate.still_off(found))
    sc = finish(exam, background, repaired_s=after, gave_up=False)
    return True, t("exam_healthy_again") + "\n" + exam_score.line(sc)


# --- exam.give-up -------------------------------------------------------------------------

def give_up(lab: Lab, background: Background, *, root: Path | None = None) -> str:
    exam = _running("exam.give-up", root)
    fault = exam.fault
    name = fault["drill"]
    shown = [t("exam_fault_was", name=name, section=drill_text(name, "section", english=DRILLS[name].section),
               what=said(str(fault.get("what")))),
             t("exam_fault_on", node=fault.get("node"), command=fault.get("command")),
             t("exam_fault_undo", node=fault.get("node"), undo=fault.get("undo")),
             "", *(f"  {s}" for s in story_lines(name)), "", t("exam_healing")]
    exam.mark("give-up", f"gave up; the fault was {name}")
    out = lab.shell.run(fault["node"], fault["undo"], timeout=120)
    if not out.ok:
        shown.append(t("exam_undo_said", rc=out.rc, text=(out.stderr or out.stdout).strip()[-200:]))
    steps.revive_patroni(lab)
    ok, found = recovery.gate(lab, within=180)
    if not ok:
        recovery.repair(lab)
        ok, found = recovery.gate(lab, within=180)
    sc = finish(exam, background, repaired_s=None, gave_up=True)
    shown.append(t("exam_back") if ok else t("exam_still_off") + "\n" + exam_gate.still_off(found))
    return "\n".join([*shown, exam_score.line(sc)])


# --- the end of an exam ------------------------------------------------------------------

def finish(exam: Exam, background: Background, *, repaired_s: float | None, gave_up: bool) -> dict[str, Any]:
    """Stop the background process (it writes the writes and the watch into result.json), then the
    score into result.json and run.json; the run is finished."""
    pid = exam.state.get("pid")
    clean = background.stop(pid) if pid else True
    result_path = exam.drill_dir / "result.json"
    result = read_json(result_path)
    if not result:
        result = {"drill": "exam", "verdict": "error",
                  "reason": "the exam's background process kept no result (it died?): writes and RTO not counted"}
    elif not clean:
        result.setdefault("notes", []).append("the background process had to be killed; its figures may be short")
    sc = exam_score.score(exam.state, exam.fault, result, repaired_s=repaired_s, gave_up=gave_up)
    result["score"] = sc
    result["exam"] = {k: exam.state.get(k) for k in ("seed", "pool", "answers", "hints", "checks")}
    exam.drill_dir.mkdir(exist_ok=True)
    write_json(result_path, result)
    _close_run(exam, str(result.get("verdict") or "error"), sc)
    return sc


def _close_run(exam: Exam, verdict: str, sc: dict[str, Any] | None) -> None:
    exam.update_run(finished=now_iso(), drills=["exam"] if exam.drill_dir.is_dir() else [],
                    tally=tally([verdict]), score=sc, fault=(sc or {}).get("fault"))
