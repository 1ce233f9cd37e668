"""Write figures that say what happened to the application's writes.

The writer (lab.exercises.observe.writer) logs every attempt on every path: when it was sent and
answered, whether the server acknowledged it, and for an acknowledged write which server
took it, on which timeline, at which WAL position. These pure functions turn such logs into
the figures a drill reports, per path and measured from the fault:

- ``outage_s``: seconds the path refused writes (from the first refused attempt of a run of
  refusals to the acknowledgement that ended it; an outage that never ended runs to the last
  attempt and is flagged ``open``);
- ``longest_ack_gap_s``: the longest time without an acknowledgement (slow commits included);
- ``to_surviving_timeline_s``: until the first acknowledged write on the timeline that survived
  (the final primary's); with no new timeline that is simply the first write after the fault;
- ``after_fork``: acknowledged writes that a primary took after the surviving timeline forked
  from its own: those are not in the surviving history and are lost once that primary is
  rewound. Found from the surviving timeline's history file (``<tli>.history``: each ancestor
  timeline and the WAL position where it was left): a write on an ancestor timeline at a
  position past its switch point, or on a timeline that is not in the history at all (a
  discarded branch, e.g. a rogue promotion), is after the fork;
- ``rto_s``: from the fault to the first write that survives after the path's last refused or
  after-fork write (0 when the path never refused or lost one; None when it never recovered).
  Without a known surviving timeline (``classified`` false) only refusals count.

A write's position is the WAL insert position right after its row was written: the commit
record follows it, so a write whose commit straddles the switch point is not counted as after
the fork; the ids missing on the final primary (``lost``, counted at the end) catch it, and
``lost_not_after_fork`` says so when the two counts disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from lab.exercises.observe.figures import Figures

KEPT, AFTER_FORK, UNCLASSIFIED, REFUSED = "kept", "after_fork", "unclassified", "refused"


@dataclass(frozen=True)
class WriteAttempt:
    path: str
    id: int
    start: float                  # monotonic, when the statement was sent
    end: float                    # when the server answered (or the attempt failed)
    ok: bool                      # acknowledged to the application
    server: str | None = None     # the member that acknowledged it
    timeline: int | None = None   # that server's timeline when it did
    lsn: int | None = None        # WAL insert position right after the row (bytes)
    error: str | None = None
    sync_cancelled: bool = False  # committed locally, the wait for a sync standby cancelled: not acknowledged
    server_address: str | None = None   # what the server said it is: its address (a VIP's when reached
    server_started: str | None = None   # through one) and its postmaster's start time

    @property
    def latency_s(self) -> float:
        return round(self.end - self.start, 3)

    def event(self) -> dict[str, Any]:
        """The ``write`` event of lab.exercises.observe.evidence."""
        return {"path": self.path, "ok": self.ok, "id": self.id, "latency_s": self.latency_s,
                "server": self.server, "timeline": self.timeline, "lsn": self.lsn, "error": self.error,
                "sync_cancelled": self.sync_cancelled}


def parse_lsn(text: str) -> int:
    """'0/3000148' -> bytes."""
    hi, lo = text.strip().split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def parse_history(text: str) -> dict[int, int]:
    """A timeline history file -> {ancestor timeline: WAL position where it was left}.
    Lines are "<parent tli> <switch point> <reason>"; comments and blank lines are skipped."""
    out: dict[int, int] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        out[int(parts[0])] = parse_lsn(parts[1])
    return out


@dataclass(frozen=True)
class Survivor:
    """The timeline that survived and where each of its ancestors was left."""
    timeline: int
    forks: dict[int, int]

    def classify(self, a: WriteAttempt) -> str:
        if not a.ok:
            return REFUSED
        if a.timeline is None:
            return UNCLASSIFIED
        if a.timeline == self.timeline:
            return KEPT
        if a.timeline in self.forks:
            if a.lsn is None:
                return UNCLASSIFIED
            return KEPT if a.lsn <= self.forks[a.timeline] else AFTER_FORK
        return AFTER_FORK      # a branch the surviving history does not contain


def _runs_of_refusals(attempts: list[WriteAttempt]) -> list[tuple[float, float | None]]:
    out: list[tuple[float, float | None]] = []
    start: float | None = None
    for a in attempts:
        if not a.ok and start is None:
            start = a.start
        elif a.ok and start is not None:
            out.append((start, a.end))
            start = None
    if start is not None:
        out.append((start, None))
    return out


@dataclass
class PathFigures(Figures):
    """One write path's figures (result.json ``writes.paths.<path>``), times in seconds from the fault."""
    attempts: int = 0
    acknowledged: int = 0
    refused: int = 0
    sync_cancelled: int = 0
    outage_s: float = 0.0
    outages: list[list[float | None]] = field(default_factory=list)   # [start, end | None] of each
    open: bool = False                                                # the last outage never ended
    longest_ack_gap_s: float | None = None
    to_surviving_timeline_s: float | None = None
    after_fork: int | None = None                                     # None: not classified
    after_fork_ids: list[int] = field(default_factory=list)
    unclassified: int = 0
    servers: dict[str, dict[str, int]] = field(default_factory=dict)  # server -> class -> acknowledged
    classified: bool = False
    rto_s: float | None = None                                        # None: never recovered


@dataclass
class WriteFigures(Figures):
    """Every path's figures and the drill's totals (result.json ``writes``)."""
    OPTIONAL = frozenset({"uncounted_reason", "lost_not_after_fork", "after_fork_but_present"})

    attempted: int = 0
    acknowledged: int = 0
    sync_cancelled: int = 0
    lost: int | None = None                  # None: not counted ("not counted" is not "nothing lost")
    lost_ids: list[int] = field(default_factory=list)
    counted_on: str | None = None
    after_fork: int | None = None
    surviving_timeline: int | None = None
    forks: dict[str, int] | None = None      # ancestor timeline (as text: a JSON key) -> switch point
    paths: dict[str, PathFigures] = field(default_factory=dict)
    uncounted_reason: str | None = None      # only when lost is None
    lost_not_after_fork: list[int] | None = None      # only when both counts could be made
    after_fork_but_present: list[int] | None = None

    @classmethod
    def readers(cls) -> dict[str, Callable[[Any], Any]]:
        return {"paths": lambda paths: {p: PathFigures.from_json(f) or PathFigures() for p, f in paths.items()}}


def path_figures(attempts: Iterable[WriteAttempt], t_fault: float, survivor: Survivor | None,
                 rto_until: float | None = None) -> PathFigures:
    """One path's figures, times in seconds from ``t_fault``. ``survivor`` None: the surviving
    timeline is not known, so nothing is classified (after_fork None). ``rto_until``: only refusals
    that began before it end the RTO (a drill whose restore moves the leader on purpose)."""
    log = sorted(attempts, key=lambda a: a.start)
    after = [a for a in log if a.end >= t_fault]
    cls = {id(a): (survivor.classify(a) if survivor else (UNCLASSIFIED if a.ok else REFUSED)) for a in after}
    # without a known surviving timeline, recovery can only be judged by refusals
    good_classes = (KEPT,) if survivor is not None else (KEPT, UNCLASSIFIED)
    acks = [a for a in after if a.ok]

    outages = _runs_of_refusals(after)
    last_end = after[-1].end if after else t_fault
    outage_s = sum((e if e is not None else last_end) - s for s, e in outages)
    gaps = [b.end - a.end for a, b in zip(acks, acks[1:])]
    if acks:
        gaps.append(acks[0].end - t_fault)
    to_survivor = None
    if survivor is not None:
        first = next((a for a in acks if a.timeline == survivor.timeline), None)
        to_survivor = None if first is None else round(max(0.0, first.end - t_fault), 3)
    after_fork = [a.id for a in after if cls[id(a)] == AFTER_FORK]
    bad = [a for a in after if cls[id(a)] in (REFUSED, AFTER_FORK) and (rto_until is None or a.start < rto_until)]
    if not bad:
        rto: float | None = 0.0
    else:
        last_bad = max(bad, key=lambda a: a.end)
        good = next((a for a in after if a.start >= last_bad.start and a is not last_bad
                     and cls[id(a)] in good_classes), None)
        rto = None if good is None else round(good.end - t_fault, 3)
    servers: dict[str, dict[str, int]] = {}
    for a in acks:
        k = servers.setdefault(a.server or "unknown", {})
        k[cls[id(a)]] = k.get(cls[id(a)], 0) + 1
    return PathFigures(
        attempts=len(after),
        acknowledged=len(acks),
        refused=sum(1 for a in after if not a.ok),
        sync_cancelled=sum(1 for a in after if a.sync_cancelled),
        outage_s=round(outage_s, 3),
        outages=[[round(s - t_fault, 3), None if e is None else round(e - t_fault, 3)] for s, e in outages],
        open=bool(outages) and outages[-1][1] is None,
        longest_ack_gap_s=round(max(gaps), 3) if gaps else None,
        to_surviving_timeline_s=to_survivor,
        after_fork=None if survivor is None else len(after_fork),
        after_fork_ids=after_fork[:50],
        unclassified=sum(1 for a in after if cls[id(a)] == UNCLASSIFIED),
        servers=servers,
        classified=survivor is not None,
        rto_s=rto,
    )


def write_figures(attempts: Iterable[WriteAttempt], t_fault: float, *, survivor: Survivor | None,
                  present: set[int] | None, counted_on: str | None = None,
                  uncounted_reason: str | None = None, rto_until: float | None = None) -> WriteFigures:
    """Every path's figures and the drill's totals. ``present``: the acknowledged ids found on the
    final primary (None when it could not be asked: lost is then None, never 0)."""
    log = list(attempts)
    paths = sorted({a.path for a in log})
    per_path = {p: path_figures([a for a in log if a.path == p], t_fault, survivor, rto_until) for p in paths}
    acked = sorted(a.id for a in log if a.ok)
    lost_ids = None if present is None else [i for i in acked if i not in present]
    after_fork_ids = sorted(a.id for a in log if a.end >= t_fault and survivor is not None
                            and survivor.classify(a) == AFTER_FORK)
    out = WriteFigures(
        attempted=len(log),
        acknowledged=len(acked),
        sync_cancelled=sum(1 for a in log if a.sync_cancelled),
        lost=None if lost_ids is None else len(lost_ids),
        lost_ids=(lost_ids or [])[:50],
        counted_on=counted_on,
        after_fork=None if survivor is None else sum(f.after_fork or 0 for f in per_path.values()),
        surviving_timeline=survivor.timeline if survivor else None,
        forks={str(k): v for k, v in survivor.forks.items()} if survivor else None,
        paths=per_path,
    )
    if lost_ids is None:
        out.uncounted_reason = uncounted_reason or "the final primary was not asked"
    elif survivor is not None:
        # the two ways of counting must agree: say where they do not
        out.lost_not_after_fork = sorted(set(lost_ids) - set(after_fork_ids))[:50]
        out.after_fork_but_present = sorted(set(after_fork_ids) - set(lost_ids))[:50]
    return out


def rto_by_path(figures: WriteFigures) -> dict[str, float | None]:
    return {p: f.rto_s for p, f in figures.paths.items()}
