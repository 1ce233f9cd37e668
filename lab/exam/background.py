"""The process that holds an exam open: it checks the gate, starts the watch and the writer,
injects the fault of the first drill the seed drew (the drill's own ``run`` up to its first fault,
silently), then keeps watching and writing until ``--done`` or ``--give-up`` stops it (SIGTERM).
Stopping, it counts the writes against the surviving timeline and keeps the watch's summary in
the exam's ``result.json``, like a drill's.

    python -m lab.exam.background <run folder>
"""
from __future__ import annotations

import signal
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lab.exam.record import Exam, now_iso, write_json
from lab.i18n import DEFAULT, command_language
from labcore import poll
from lab.exercises.run import health, recovery
from lab.exercises.api.context import Lab
from lab.exercises.observe.evidence import DrillRecorder, iso
from lab.exercises.kit.actions import Action
from lab.exercises.api.model import DRILLS, Drill, NotApplicable, Result
from lab.exercises.run.runner import _account_writes, _judge_watch, _pg_connector, lab_watch, lab_writer
from lab.exercises.observe.watch import Watch
from lab.exercises.observe.writer import Writer


class FaultInjected(Exception):
    """Raised right after the drill's first fault is in effect: the exam stops the drill there."""

    def __init__(self, action: Action) -> None:
        super().__init__(action.what)
        self.action = action


class QuietConsole:
    """Nothing of the drill's story reaches the trainee: the exam is blind."""
    interactive = False

    def show(self, text: str) -> None:
        pass

    def pause(self, prompt: str) -> None:
        pass

    def poll(self) -> None:
        return None


class ExamLab(Lab):
    """A Lab whose first fault ends the drill's run: the fault stays, nothing is undone."""

    def inject(self, fault: Action, observe_within: float = 30) -> float:
        super().inject(fault, observe_within)
        raise FaultInjected(fault)


@dataclass
class Session:
    exam: Exam
    lab: Lab
    drill: type[Drill]
    result: Result
    watch: Watch
    writer: Writer | None
    action: Action


def _fault_file(exam: Exam, **fields: Any) -> None:
    write_json(exam.folder / "fault.json", {**exam.fault, **fields})


def begin(exam: Exam, lab: Lab, order: list[str], *, watch: Watch | None = None) -> Session | None:
    """Gate, watch and writer, then the fault. None (and fault.json says why) when no fault could be
    injected; the lab is then as it was."""
    rec = lab.recorder
    start = rec.t0 if rec else lab.clock.monotonic()
    _fault_file(exam, state="starting", t0_mono=start, t0_wall=iso(rec.wall0) if rec else now_iso())
    res = Result("exam", "exam", mode="exam", scale=lab.scale,
                 started=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    lab.result, lab.t_start, lab.t_fault = res, start, None
    ok, found = recovery.gate(lab, within=90)
    res.gate_before = [vars(f) for f in found]
    if not ok:
        return _failed(exam, lab, res, "the lab is not at its healthy baseline; nothing was touched:\n"
                       + health.describe(found))
    watch = watch or lab_watch(lab)
    writer = lab_writer(lab, watch) if lab.writer_paths else None
    watch.start()
    if writer is not None:
        try:
            c = _pg_connector(lab)(*lab.writer_paths[0][1:3])
            writer.prepare(c)
            c.close()
        except Exception as e:
            watch.stop()
            return _failed(exam, lab, res, f"cannot prepare the writer's table through the VIP: {e}")
        writer.start()
    skipped = []
    for name in order:
        cls = DRILLS[name]
        try:
            cls().run(lab)
        except FaultInjected as f:
            return _running(Session(exam, lab, cls, res, watch, writer, f.action), skipped)
        except NotApplicable as e:
            skipped.append({"drill": name, "reason": str(e)})
            lab.undo_everything()
            continue
        except Exception as e:
            errors = lab.undo_everything()
            _stop(watch, writer)
            return _failed(exam, lab, res, f"{name}: {type(e).__name__}: {e}"
                           + (f" (undo: {'; '.join(errors)})" if errors else ""), skipped)
        _stop(watch, writer)
        return _failed(exam, lab, res, f"{name} ran to its end without a fault", skipped)
    _stop(watch, writer)
    return _failed(exam, lab, res, "no drill of the pool applies to this lab", skipped)


def _running(s: Session, skipped: list[dict]) -> Session:
    a = s.action
    s.lab._undos.clear()           # the fault is the trainee's to repair; nothing undoes it behind them
    _fault_file(s.exam, state="running", drill=s.drill.name, section=s.drill.section, node=a.node, what=a.what,
                command=a.command if isinstance(a.command, str) else a.text(),
                undo=a.undo, fault_mono=s.lab.t_fault,
                fault_wall=now_iso(), skipped=skipped)
    return s


def _failed(exam: Exam, lab: Lab, res: Result, why: str, skipped: list | None = None) -> None:
    res.error(why)
    if lab.recorder:
        lab.recorder.verdict(res.verdict, res.reason)
        lab.recorder.result(res.to_json())
    _fault_file(exam, state="error", error=why, skipped=skipped or [])
    return None


def _stop(watch: Watch, writer: Writer | None) -> None:
    watch.stop()
    if writer is not None:
        writer.stop()


def end(s: Session) -> Result:
    """Stop watching and writing; the writes counted, the watch summarised, kept in result.json."""
    lab, res = s.lab, s.result
    run_end = lab.mark("end-of-exam", "the exam's background process stops")
    _stop(s.watch, s.writer)
    start, t0 = lab.t_start, lab.t_fault if lab.t_fault is not None else lab.t_start
    res.fault_at_s = round(t0 - start, 3)
    res.section = s.drill.section
    _judge_watch(s.drill, res, s.watch, t0, run_end, start)
    if s.writer is not None:
        _account_writes(lab, s.writer, res, t0)
    else:
        res.notes.append("no writer ran: writes lost and RTO were not counted")
    res.duration_s = round(lab.clock.monotonic() - start, 1)
    if lab.recorder:
        lab.recorder.mark("end", res.verdict)
        lab.recorder.verdict(res.verdict, res.reason)
        lab.recorder.result(res.to_json())
    _fault_file(s.exam, state="stopped", stopped_wall=now_iso())
    return res


class StoppedEarly(BaseException):
    """SIGTERM before the fault was in place (the exam's start gave up waiting): not an Exception, so
    no drill step swallows it."""


def main(argv: list[str]) -> int:
    from lab.exercises import Lab as _registers_drills  # noqa: F401  (imports every drill)
    from labcore.topology import load

    exam = Exam(Path(argv[0]) if argv else Path("."))
    settings = exam.state
    if not (exam.folder / "run.json").is_file() or not settings.get("order") or exam.drill_dir.exists():
        print(f"lab.exam.background: {exam.folder} is not an exam waiting to start "
              "(`invoke exam.start` starts this process)", file=sys.stderr)
        return 2
    stop = threading.Event()
    session: Session | None = None

    def on_term(*_: Any) -> None:
        stop.set()
        if session is None:
            raise StoppedEarly()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rec = DrillRecorder(exam.drill_dir)
    lab: Lab | None = None
    # This process is the rest of `invoke exam.start`: it speaks that command's language and
    # stretches every bound by that command's multiplier, as the exam's state recorded them.
    poll.set_scale(float(settings.get("scale") or 1.0))
    with command_language(settings.get("lang") or DEFAULT):
        try:
            lab = ExamLab(load(), auto=True, console=QuietConsole(), recorder=rec)
            session = begin(exam, lab, list(settings.get("order") or []))
            if session is None:
                return 1
            while not stop.wait(1.0):
                pass
            end(session)
            return 0
        except StoppedEarly:
            errors = lab.undo_everything() if lab is not None else []
            _fault_file(exam, state="error", error="stopped before the fault was in place"
                        + (f" (undo: {'; '.join(errors)})" if errors else ""))
            return 1
        except Exception as e:           # the commands read the state; the log keeps the traceback
            _fault_file(exam, state="error", error=f"{type(e).__name__}: {e}")
            raise
        finally:
            rec.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
