"""The drill model: what a drill is, the registry of drills, and what a run of one produces."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lab.exercises.context import Lab


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
    lossless: bool = False       # every acknowledged write must survive
    writes: bool = True          # run the writer during the drill

    def run(self, lab: "Lab") -> None:
        raise NotImplementedError

    def restore(self, lab: "Lab") -> None:
        """Extra restore after all faults and config changes were undone (default: nothing)."""


DRILLS: dict[str, type[Drill]] = {}


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


# --- results ---------------------------------------------------------------------------

@dataclass
class Check:
    kind: str                   # expect | hold
    description: str
    ok: bool
    bound: float                # seconds, already scaled
    elapsed: float
    detail: str = ""

    @property
    def kept_bound(self) -> bool:
        """An expectation came true within its bound (one poll of slack); a hold stayed true
        for its whole period."""
        if not self.ok:
            return False
        return self.elapsed <= self.bound + 1 if self.kind == "expect" else self.elapsed >= self.bound


@dataclass
class Result:
    drill: str
    section: str
    verdict: str = "pass"       # pass | fail | error
    reason: str = ""
    mode: str = "auto"
    scale: float = 1.0
    started: str = ""
    duration_s: float = 0.0
    checks: list[Check] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    rto_s: dict[str, float | None] = field(default_factory=dict)
    writes: dict[str, Any] = field(default_factory=dict)
    split_brain: dict[str, Any] = field(default_factory=dict)
    gate_before: list[dict] = field(default_factory=list)
    gate_after: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def fail(self, reason: str, verdict: str = "fail") -> None:
        if self.verdict == "pass":
            self.verdict, self.reason = verdict, reason
        else:
            self.notes.append(f"also: {reason}")
