"""Positional arguments that depend on the first one: `invoke workshop ssh 1 node1`, `invoke workshop status`.

Invoke requires every positional argument of a task. A task made with
``@task(klass=LeadTask, positional=[lead, ...])`` and a ``positional_after``
table (``{"ssh": ("seat", "node")}``) requires the arguments after the lead
only for the lead values that name them: `workshop ssh` needs a seat and a
node, `workshop status` takes no more words and the next word is read as
usual (an omitted one arrives as ""). Only Invoke's extension points are used
(a Task subclass and the arguments it builds); Invoke itself is left as it is.
"""
from __future__ import annotations

from typing import Any

from invoke import Task
from invoke.parser import Argument


class After(Argument):
    """A positional argument needed only when the lead argument has one of ``needed_for``."""
    lead: Argument
    needed_for: tuple[str, ...]

    @property
    def value(self) -> Any:
        v = self._value if self._value is not None else self.default
        if v is None and self.lead.value is not None and self.lead.value not in self.needed_for:
            return ""           # not asked for: counts as given, so the parser reads on
        return v

    @value.setter
    def value(self, arg: str) -> None:
        self.set_value(arg, cast=True)


class LeadTask(Task):
    """A task whose first positional argument decides which of the others it needs."""
    positional_after: dict[str, tuple[str, ...]] = {}

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        args = super().get_arguments(ignore_unknown_help=ignore_unknown_help)
        positional = [a for a in args if a.positional]
        if not positional:
            return args
        lead = positional[0]
        for a in positional[1:]:
            a.__class__ = After          # same state, the value rule above
            a.lead = lead
            a.needed_for = tuple(k for k, names in self.positional_after.items() if a.name in names)
        return args


class GivenByMode(Argument):
    """A positional argument that a mode option replaces: `invoke exercise --exam` needs no drill."""
    modes: list[Argument]

    @property
    def value(self) -> Any:
        v = self._value if self._value is not None else self.default
        if v is None and any(m.value for m in self.modes):
            return ""           # a mode was given: counts as given, nothing more is read for it
        return v

    @value.setter
    def value(self, arg: str) -> None:
        self.set_value(arg, cast=True)


class ModeTask(Task):
    """A task whose first positional argument is not needed when one of ``modes`` (options) is given."""
    modes: tuple[str, ...] = ()

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        args = super().get_arguments(ignore_unknown_help=ignore_unknown_help)
        positional = [a for a in args if a.positional]
        if positional:
            lead = positional[0]
            lead.__class__ = GivenByMode
            lead.modes = [a for a in args if a.name in self.modes]
        return args
