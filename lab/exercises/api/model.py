"""The drill model: what a drill is, the registry of drills, and what a run of one produces."""
from __future__ import annotations

from typing import TYPE_CHECKING

# What a run of a drill produces lives in lab.exercises.observe.verdict; the names stay importable from here.
from lab import i18n
from lab.exercises.observe.verdict import Check, NotApplicable, Result, Verdict  # noqa: F401

if TYPE_CHECKING:
    from lab.exercises.api.context import Lab


class DrillError(ValueError):
    """Bad input for the drill runner (unknown drill, bad multiplier); the message is one line."""


class ExpectationFailed(AssertionError):
    """An expectation that did not come true within its bound."""


class Drill:
    """Subclass, fill in the text, write ``run`` (and ``restore`` if undoing faults is not enough)."""
    name: str = ""
    section: str = ""            # the article section it verifies, e.g. "§5 table, row 2"
    summary: str = ""            # one line for `invoke exercise --list`
    story: str = ""              # what will happen and why (shown first)
    expected: str = ""           # the expected result, in words (docs)
    differs: str = ""            # where Patroni 4 differs from the article (Patroni 1.6.5)
    commands: list[str] = []     # what a trainee types, for the docs ("where: command")
    split_brain: bool | None = False   # False: must not happen; True: the article says it happens; None: not judged
    lossless: bool = False       # every acknowledged write must survive (uncountable losses make it an error)
    writes: bool = True          # run the writer during the drill
    # a primary fault's ending (observe.band.Ending: "key-expiry" or "release"): its failover is then
    # split into phases and set against the band Patroni's settings predict
    ending: str | None = None
    rto_zero: bool = False       # the write paths never notice the fault (a replica's fault): no refused write,
                                 # no gap between acknowledgements beyond the writer's cadence and margin
    # the restore itself changes the leader (the upgrade puts the old release back with a switchover): the
    # RTO then ends with the drill's own outages, and those of the restore are only listed (writes.paths)
    restore_moves_leader: bool = False
    # the fault is the host acting on the leader's VM (power, link, reset): not applicable on containers
    vm_only: bool = False

    def run(self, lab: "Lab") -> None:
        raise NotImplementedError

    def restore(self, lab: "Lab") -> None:
        """Extra restore after all faults and config changes were undone (default: nothing)."""


DRILLS: dict[str, type[Drill]] = {}
# The translations fall back to (and fingerprint) each drill's own English, read here.
i18n.use_english(lambda name, field: getattr(DRILLS[name], field))


def drill(cls: type[Drill]) -> type[Drill]:
    """Class decorator: register a drill under its name."""
    if not cls.name or not cls.summary or not cls.section:
        raise TypeError(f"{cls.__name__}: a drill needs name, section and summary")
    if cls.name in DRILLS and DRILLS[cls.name] is not cls:
        raise TypeError(f"drill name {cls.name!r} used twice")
    DRILLS[cls.name] = cls
    return cls


def lookup(names: list[str]) -> list[type[Drill]]:
    """Drills by name ("all" = every drill, in registry order); unknown names -> DrillError, one line."""
    if names == ["all"]:
        return list(DRILLS.values())
    unknown = [n for n in names if n not in DRILLS]
    if unknown:
        raise DrillError(f"unknown drill {', '.join(unknown)} (known: {', '.join(DRILLS)}, all)")
    return [DRILLS[n] for n in names]

