"""What every command shares, applied by ``tasks.py`` to each task.

* Settings first: ``INVOKE_LAB_*`` is checked when ``tasks.py`` loads (before
  Invoke casts it), the merged invoke.yaml/environment settings before each
  command runs.
* One exit-code convention (:mod:`labcore.exitcodes`): a :class:`Refusal` that a
  command did not turn into its own message exits 2 in one line.
* Ctrl-C: the command is named with the state it left and the command that
  finishes the job, exit 130, instead of Invoke's silent exit 1.
* One language per command (lab.i18n): a task with a ``--lang`` option speaks that
  language, else $LAB_LANG, else the locale; it is chosen once, before the task
  runs (a bad value is one line, exit 2), and every thread of the command speaks it.
* Collections: ``invoke exercise.list``; a collection's default task is typed by
  the collection's name (``invoke exercise <drill>``).
"""
from __future__ import annotations

import copy
import functools
import inspect
from typing import Any

from invoke import Collection, Exit, Task

from lab import i18n, settings
from labcore import exitcodes
from labcore import state as lab_state


def check_environment() -> None:
    """Refuse bad ``INVOKE_LAB_*`` variables in one line (Invoke would print a traceback)."""
    try:
        settings.check_environment()
    except settings.SettingsError as e:
        raise Exit(f"error: {e}", code=exitcodes.REFUSED) from None


def _phase() -> str:
    try:
        return lab_state.load().phase
    except lab_state.LabStateError:
        return "unknown"


def interrupted(command: str, args: dict[str, Any]) -> str:
    """The one line shown after Ctrl-C: what was interrupted, what it left, what to run next."""
    phase = _phase()
    head = f"interrupted during `invoke {command}`"
    if command in ("up", "rebuild", "provision"):
        if phase == "absent":
            return f"{head}: nothing was left behind; run `invoke up` to start again"
        if phase == "provisioned":
            return f"{head}: it had finished; the lab is provisioned"
        return (f"{head}: the machines are kept, not provisioned (phase {phase}); run `invoke up` "
                "to finish (it reuses them and provisions again), or `invoke down` to remove them")
    # the exam's commands, and their old spelling through the drill's task (`invoke exam.start`)
    old_exam = command == "exercise" and args.get("drill") in ("--exam", "--done", "--give-up")
    if command in ("exam.start", "exam.done", "exam.give-up") or old_exam:
        head = f"interrupted during `invoke {command}{' ' + args['drill'] if old_exam else ''}`"
        return (f"{head} of an exam: an exam already started stays open (its background process keeps the "
                "writer and the watch); `invoke exam.done` or `invoke exam.give-up` ends it")
    if command == "exercise":
        drill = args.get("drill") or ""
        head = f"interrupted during `invoke exercise{' ' + drill if drill else ''}`"
        return (f"{head}: the drill ran its restore before stopping (a second Ctrl-C cuts it short); "
                "`invoke status --check` says whether the lab is at its baseline, `invoke heal` brings it back")
    if command == "down":
        return f"{head}: some machines may remain; run `invoke down` again to finish"
    return f"{head}: nothing was changed"


def wrap(task: Task, command: str | None = None) -> Task:
    """A copy of ``task`` that follows the conventions above (the module's task stays as written).
    ``command``: how the task is typed, for its messages (default: its name)."""
    body = task.body
    name = command or task.name
    speaks = "lang" in inspect.signature(body).parameters

    @functools.wraps(body)
    def run(c: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            lab = c.config.get("lab") if hasattr(c, "config") else None
            settings.validate(dict(lab) if lab else {})
            if not speaks:           # $LAB_LANG / the locale, read when something is said
                return body(c, *args, **kwargs)
            with i18n.command_language(kwargs.get("lang")):
                return body(c, *args, **kwargs)
        except i18n.LangError as e:
            raise Exit(f"{name}: {e}", code=exitcodes.REFUSED) from None
        except KeyboardInterrupt:
            raise Exit(interrupted(name, kwargs), code=exitcodes.INTERRUPTED) from None
        except exitcodes.Refusal as e:
            raise Exit(f"error: {e}", code=exitcodes.REFUSED) from None

    wrapped = copy.copy(task)
    wrapped.body = run
    return wrapped


def collection(name: str, tasks: list[Task], default: Task | None = None) -> Collection:
    """The sub-collection ``name`` of ``tasks``, each wrapped as above; ``default`` is typed by the
    collection's name alone (`invoke exercise <drill>` runs ``exercise.run``)."""
    coll = Collection(name)
    for t in tasks:
        typed = name if t is default else f"{name}.{coll.transform(t.name)}"
        coll.add_task(wrap(t, typed), default=t is default)
    return coll
