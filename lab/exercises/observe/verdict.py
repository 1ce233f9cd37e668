"""Verdicts that cannot lie: what a drill concludes, and why.

A drill ends in exactly one verdict:

- ``pass``: every claim of the article it checks was seen, within its bound;
- ``fail``: a claim was seen to be false (or a check did not come true within its bound);
- ``differs``: the lab showed another behaviour than the article's, seen and explained:
  the verdict carries the reason and the evidence (e.g. the watchdog fenced a member the
  article says is demoted);
- ``not-applicable``: a precondition the drill states is absent (the reason names it);
- ``error``: the lab could not observe what the verdict needs (a blind watch, lost writes
  that could not be counted, a probe that broke).

Only ``pass`` counts as passed. When several things go wrong, the first ``fail`` or
``error`` is the verdict (the cause; what followed is kept in the notes); either outranks
``differs``, which outranks ``not-applicable`` and ``pass``.

Every check records where it sits on the drill's time line: ``start`` and ``end`` in
seconds from the fault (from the start mark when the drill has no fault yet), its bound,
and whether it came true. A member-outcome check records, per member, the outcome the
article claims and the one seen, with evidence.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Iterable, Mapping

from lab.i18n.phrases import phrase
from lab.exercises.kit.outcomes import MemberState, Outcome
from lab.exercises.observe.figures import Figures, known_fields
from lab.exercises.observe.watch import SplitBrain, WatchSummary
from lab.exercises.observe.writes import WriteFigures


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    DIFFERS = "differs"
    NOT_APPLICABLE = "not-applicable"
    ERROR = "error"


VERDICTS = [str(v) for v in Verdict]
_RANK = {Verdict.PASS: 0, Verdict.NOT_APPLICABLE: 1, Verdict.DIFFERS: 2, Verdict.FAIL: 3, Verdict.ERROR: 3}


class NotApplicable(Exception):
    """Raised by a drill whose stated precondition is absent; the message names it."""


@dataclass
class Check:
    """One bounded expectation: ``expect`` (came true within ``bound_s``) or ``hold`` (stayed true
    for ``bound_s``). ``start``/``end``: seconds from the fault; ``elapsed`` = end - start."""
    kind: str
    description: str
    ok: bool
    bound_s: float
    start: float
    end: float
    detail: str = ""

    @property
    def elapsed(self) -> float:
        return round(self.end - self.start, 3)


@dataclass
class MemberVerdict:
    expected: list[str]              # the outcome(s) the article claims
    seen: str                        # the outcome seen when the check ended
    explained: bool = False          # seen is a known deviation (the check's reason says why)
    evidence: str | None = None
    error: str | None = None
    timeline: int | None = None

    @property
    def matches(self) -> bool:
        return self.seen in self.expected


@dataclass
class OutcomeCheck:
    """The article's claim about each member's outcome, and what was seen."""
    description: str
    verdict: Verdict                  # pass | differs | fail (for this check)
    bound_s: float
    start: float
    end: float
    members: dict[str, MemberVerdict]
    reason: str = ""


def judge_members(expected: dict[str, Iterable[Outcome | str]], seen: dict[str, MemberState],
                  explained: dict[Outcome | str, str] | None = None) -> tuple[Verdict, dict[str, MemberVerdict], str]:
    """Compare the claimed outcome per member with the one seen.
    ``explained``: outcomes that are a known deviation, each with its reason (e.g. fenced: the lab's
    watchdog fences a leader whose loop hung on etcd). Returns (pass|differs|fail, members, reason)."""
    explained = {str(k): v for k, v in (explained or {}).items()}
    members: dict[str, MemberVerdict] = {}
    wrong, deviating = [], []
    for m, allowed in expected.items():
        allowed_s = [str(o) for o in allowed]
        s = seen.get(m)
        seen_o = str(s.outcome) if s else "unreachable"
        mv = MemberVerdict(allowed_s, seen_o, evidence=s.evidence if s else None,
                           error=s.error if s else "not probed", timeline=s.timeline if s else None)
        if not mv.matches:
            if seen_o in explained:
                mv.explained = True
                deviating.append(m)
            else:
                wrong.append(m)
        members[m] = mv
    if wrong:
        return Verdict.FAIL, members, "; ".join(
            phrase(f"{m} is {members[m].seen}, the article says {' or '.join(members[m].expected)}"
                   + (f" ({members[m].error or members[m].evidence})" if members[m].error or members[m].evidence else ""))
            for m in wrong)
    if deviating:
        return Verdict.DIFFERS, members, "; ".join(
            phrase(f"{m} is {members[m].seen} where the article says {' or '.join(members[m].expected)}: "
                   f"{explained[members[m].seen]}" + (f" [evidence: {members[m].evidence}]" if members[m].evidence else ""))
            for m in deviating)
    return Verdict.PASS, members, ""


@dataclass
class Bound(Figures):
    """A time the article bounds, as seen (result.json ``bounds.<name>``); ``per_path``: the
    figures per write path the bound was judged on, for a bound on the write paths."""
    OPTIONAL = frozenset({"per_path"})

    seen_s: float | None = None
    bound_s: float = 0.0
    derived: str = ""              # where the bound comes from (the article's terms)
    ok: bool = False
    per_path: dict[str, dict[str, Any]] | None = None


@dataclass
class Result:
    drill: str
    section: str
    claim: str = ""                   # what the article says happens (the drill's ``expected``)
    verdict: Verdict = Verdict.PASS
    reason: str = ""
    evidence: list[str] = field(default_factory=list)
    mode: str = "auto"
    scale: float = 1.0
    started: str = ""
    duration_s: float = 0.0
    # where the drill's time went: gate, setup (to the fault), fault_window (fault to restore), restore
    phases_s: dict[str, float | None] = field(default_factory=dict)
    fault_at_s: float | None = None   # seconds from the start mark to the fault (t=0 of the checks)
    checks: list[Check] = field(default_factory=list)
    outcomes: list[OutcomeCheck] = field(default_factory=list)
    # named measures, each drill its own (seconds, counts, the outcomes seen, the /sync key, ...)
    metrics: dict[str, Any] = field(default_factory=dict)
    bounds: dict[str, Bound] = field(default_factory=dict)   # the article-derived bounds asserted, and how
    rto_s: dict[str, float | None] = field(default_factory=dict)   # write path -> seconds (None: never back)
    # None until the runner has them (a drill without a writer has no write figures): {} in the JSON
    writes: WriteFigures | None = None
    watch: WatchSummary | None = None
    split_brain: SplitBrain | None = None
    # a primary fault's failover explained (observe.phases, observe.band): ending, phases, band, settings
    failover: dict[str, Any] = field(default_factory=dict)
    gate_before: list[dict] = field(default_factory=list)
    gate_after: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict == Verdict.PASS

    def conclude(self, verdict: Verdict | str, reason: str, evidence: Iterable[str] = ()) -> None:
        """Raise the verdict to ``verdict`` unless a weightier one stands (the first fail or error
        stays: it is the cause); what does not become the verdict is kept as a note."""
        verdict = Verdict(verdict)
        current = Verdict(self.verdict)
        if _RANK[verdict] > _RANK[current]:
            if self.reason:
                self.notes.append(f"before: {current}: {self.reason}")
            self.verdict, self.reason = verdict, reason
            self.evidence = list(evidence)
        elif verdict != Verdict.PASS:
            self.notes.append(f"also {verdict}: {reason}")
            self.evidence.extend(evidence)

    def fail(self, reason: str, verdict: Verdict | str = Verdict.FAIL) -> None:
        self.conclude(verdict, reason)

    def error(self, reason: str) -> None:
        self.conclude(Verdict.ERROR, reason)

    def differs(self, reason: str, evidence: Iterable[str] = ()) -> None:
        self.conclude(Verdict.DIFFERS, reason, evidence)

    def not_applicable(self, reason: str) -> None:
        self.conclude(Verdict.NOT_APPLICABLE, reason)

    def seen_members(self) -> dict[str, dict[str, Any]]:
        """Per member, the claimed and the seen outcome of each outcome check (for tables)."""
        out: dict[str, dict[str, Any]] = {}
        for oc in self.outcomes:
            for m, mv in oc.members.items():
                out.setdefault(m, {"expected": [], "seen": []})
                out[m]["expected"].append("|".join(mv.expected))
                out[m]["seen"].append(mv.seen)
        return out

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["bounds"] = {k: b.to_json() for k, b in self.bounds.items()}
        for name in FIGURES:
            figures = getattr(self, name)
            d[name] = figures.to_json() if figures is not None else {}
        d["members"] = self.seen_members()
        return d

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        """A result.json as this code's types, whatever its age: keys it lacks take their defaults."""
        d = known_fields(cls, data)
        d.setdefault("drill", "")
        d.setdefault("section", "")
        d["verdict"] = Verdict(d.get("verdict") or Verdict.PASS)
        d["checks"] = [Check(**{"kind": "", "description": "", "ok": False, "bound_s": 0.0, "start": 0.0, "end": 0.0,
                                **known_fields(Check, c)}) for c in d.get("checks") or []]
        d["outcomes"] = [_outcome_check(o) for o in d.get("outcomes") or []]
        d["bounds"] = {k: Bound.from_json(b) or Bound() for k, b in (d.get("bounds") or {}).items()}
        d["writes"] = WriteFigures.from_json(d.get("writes"))
        d["watch"] = WatchSummary.from_json(d.get("watch"))
        d["split_brain"] = SplitBrain.from_json(d.get("split_brain"))
        return cls(**d)


FIGURES = ("writes", "watch", "split_brain")


def _outcome_check(data: Mapping[str, Any]) -> OutcomeCheck:
    members = {m: MemberVerdict(**{"expected": [], "seen": "", **known_fields(MemberVerdict, mv)})
               for m, mv in (data.get("members") or {}).items()}
    d = {"description": "", "bound_s": 0.0, "start": 0.0, "end": 0.0, **known_fields(OutcomeCheck, data)}
    d["verdict"], d["members"] = Verdict(data.get("verdict") or Verdict.PASS), members
    return OutcomeCheck(**d)


def tally(verdicts: Iterable[str]) -> dict[str, int]:
    """Count verdicts, every kind present (zero when absent)."""
    out = {v: 0 for v in VERDICTS}
    for v in verdicts:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


def exit_code(counts: dict[str, int]) -> int:
    """Non-zero when any drill failed or could not observe; pass, differs and not-applicable exit 0."""
    return 1 if counts.get(Verdict.FAIL, 0) or counts.get(Verdict.ERROR, 0) else 0


# --- judging the evidence the runner collected ------------------------------------------------

def judge_writes(res: Result, lossless: bool) -> None:
    """A drill that must lose no acknowledged write: lost > 0 fails it; lost writes that could not
    be counted make it an error ("not counted" is not "nothing lost")."""
    if not lossless or not res.writes:
        return
    lost = res.writes.lost
    if lost is None:
        why = res.writes.uncounted_reason or "the surviving primary could not be asked"
        res.error(f"lost writes could not be counted ({why}) in a drill that must lose none")
    elif lost:
        res.fail(f"{lost} acknowledged write(s) lost in a drill that must lose none")
    after_fork = res.writes.after_fork
    if after_fork:
        res.fail(f"{after_fork} acknowledged write(s) landed on a primary after the surviving timeline forked")


def judge_split_brain(res: Result, split_brain: bool | None) -> None:
    """``split_brain`` False: two primaries must never be seen; True: the article says they will
    be (a note when not seen this time); None: not judged by this drill."""
    w = res.watch or WatchSummary()
    if split_brain is False and w.double_primary:
        res.fail(f"split brain: {', '.join(w.double_primary_members)} were primary at once "
                 f"for about {w.double_primary_seconds} s")
    elif split_brain is True and not w.double_primary:
        res.notes.append("the double primary the article warns of was not observed this time")
