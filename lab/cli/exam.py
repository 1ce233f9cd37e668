"""`invoke exam.start | exam.answer <drill> | exam.hint | exam.done | exam.give-up`: the blind-fault
exam (lab/exam). ``exam.start`` injects one drill's fault at random without naming it; a background
process keeps the writer and the watch running until ``exam.done`` or ``exam.give-up``.

Bad input is one line and changes nothing; every message of lab.exam names the command it comes
from. The language (--lang) is set once for the command by lab.cli.conventions.
"""
from __future__ import annotations

from typing import Any

from invoke import Exit, task

from lab.cli.exercises import LANG_HELP, SCALE_HELP, command_scale
from labcore import poll
from labcore import state as lab_state
from labcore.topology import TopologyError, load


def _errors() -> tuple[type[Exception], ...]:
    from lab.exam.pool import PoolError
    from lab.exam.record import ExamError
    from lab.exercises import DrillError
    return ExamError, PoolError, DrillError, TopologyError, lab_state.LabStateError


def _refused(e: Exception, command: str) -> Exit:
    """One line, exit 2: lab.exam's own refusals name their command already, the others get it."""
    from lab.exam.record import ExamError
    return Exit(str(e) if isinstance(e, ExamError) else f"{command}: {e}", code=2)


def _trainer_lab(c: Any, scale: Any = None, action: str = "end an exam") -> Any:
    """The lab the trainee's commands look at (provisioned), with the command's multiplier set."""
    from lab.exercises import Lab
    factor = command_scale(c, scale)
    topo = load()
    lab_state.require("provisioned", action=action)
    poll.set_scale(factor)
    return Lab(topo, auto=True)


@task(help={"from": "draw the fault from these drills only (comma-separated)",
            "seed": "the same seed draws the same fault (a whole room at once)",
            "scale": SCALE_HELP, "lang": LANG_HELP})
def start(c, from_=None, seed=None, scale=None, lang=None):
    """Start a blind-fault exam: one drill's fault, drawn at random and not named, stays in place with
    the writer and the watch running until `invoke exam.done` or `invoke exam.give-up`."""
    from lab.exam import commands, pool
    from lab.exercises import DRILLS
    try:
        factor = command_scale(c, scale)
        pool.parse_from(from_, list(DRILLS))      # the options first: bad input is refused before anything is asked
        pool.parse_seed(seed)
        topo = load()
        lab_state.require("provisioned", action="run an exam")
        poll.set_scale(factor)
        print(commands.start(topo, commands.ProcessBackground(), from_=from_, seed=seed))
    except _errors() as e:
        raise _refused(e, "exam.start") from None


@task(positional=["drill"], help={"drill": "the drill whose fault you think it is (`invoke exercise.list`)",
                                  "lang": LANG_HELP})
def answer(c, drill, lang=None):
    """Name the exam's fault; right or wrong, every answer is kept."""
    from lab.exam import commands
    try:
        print(commands.answer(drill))
    except _errors() as e:
        raise _refused(e, "exam.answer") from None


@task(help={"lang": LANG_HELP})
def hint(c, lang=None):
    """One more line of the fault's story (hints are counted)."""
    from lab.exam import commands
    try:
        print(commands.hint())
    except _errors() as e:
        raise _refused(e, "exam.hint") from None


@task(help={"scale": SCALE_HELP, "lang": LANG_HELP})
def done(c, scale=None, lang=None):
    """End the exam once the lab is healthy again (says what is still off otherwise; exit 1)."""
    from lab.exam import commands
    try:
        lab = _trainer_lab(c, scale)
        ok, text = commands.done(lab, commands.ProcessBackground())
    except _errors() as e:
        raise _refused(e, "exam.done") from None
    print(text)
    if not ok:
        raise Exit("exam.done: the lab is not healthy yet; the exam goes on", code=1)


@task(help={"scale": SCALE_HELP, "lang": LANG_HELP})
def give_up(c, scale=None, lang=None):
    """End the exam: show the fault and heal the lab."""
    from lab.exam import commands
    try:
        lab = _trainer_lab(c, scale)
        print(commands.give_up(lab, commands.ProcessBackground()))
    except _errors() as e:
        raise _refused(e, "exam.give-up") from None


TASKS = [start, answer, hint, done, give_up]
