"""The watch: what every member was, twice a second, for the whole drill, and proof of it.

Each cycle asks every member for its outcome (lab.exercises.outcomes: primary, replica,
stopped, fenced, unreachable; timeline; WAL position) and every node for the VIPs it holds,
all at once (one thread per member and per node), and keeps the answers as a sample. A
cycle starts at most every ``interval`` seconds (0.5 by default); a member that has not
answered within ``deadline`` seconds is recorded as unreachable with that as its error, and
is not asked again until its pending probe returns (a hung node costs one thread, not the
watch's cadence). Every sample and every sampling error is kept and, with a recorder, written
to the drill's events as it happens.

The watch also says how well it saw: samples per second, the longest gap between two
cycles, the share of cycles it missed (cycle slots without a sample, or with a member that
could not be probed because of the watch's own error). ``blind_reason`` applies the rule: a
watch that missed more than ``max_missed_share`` of its cycles, or left a gap longer than
``max_gap_s`` inside the fault window, cannot support a verdict: the drill is an ``error``.
"No sample" is never read as "no split brain".
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from lab.exercises.kit.outcomes import MemberState, Outcome
from lab.exercises.kit.sql import first_line
from lab.exercises.observe.figures import Figures, known_fields

Record = Callable[..., None]     # record(type, at=monotonic, **fields): the evidence recorder's ``event``


@dataclass(frozen=True)
class WatchRule:
    """When a watch is too blind to support a verdict (inside the fault window)."""
    max_missed_share: float = 0.2
    max_gap_s: float = 2.0
    # Below this many expected cycles a share means little (one or two late samples in a 2 s window
    # are 25-50 %): there the samples taken and the gap rule decide.
    min_cycles_for_share: int = 10


@dataclass
class SplitBrain(Figures):
    """Whether two primaries were seen, and for how long (result.json ``split_brain``)."""
    samples: int = 0
    max_primaries_at_once: int = 0
    double_primary: bool = False
    double_primary_members: list[str] = field(default_factory=list)
    double_primary_seconds: float = 0.0
    vip_held_twice: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class WatchSummary(Figures):
    """What the samples inside a window show, and how well they covered it (:func:`summarize`).
    A drill's result.json ``watch`` is the summary of the whole drill with the ``fault_window``'s
    own summary and the ``rule`` that judged it."""
    OPTIONAL = frozenset({"fault_window", "rule"})

    window_s: list[float] = field(default_factory=list)       # [start, end]
    interval_s: float = 0.0
    samples: int = 0
    samples_per_s: float = 0.0
    longest_gap_s: float = 0.0
    longest_gap_from: float | None = None                      # where that stretch began
    expected_cycles: int = 0
    missed_cycles: int = 0
    missed_share: float = 0.0
    sample_errors: int = 0
    vip_samples: int = 0
    vip_errors: int = 0
    max_primaries_at_once: int = 0
    double_primary: bool = False
    double_primary_members: list[str] = field(default_factory=list)
    double_primary_seconds: float = 0.0
    first_double_primary_at: float | None = None
    vip_held_twice: dict[str, list[str]] = field(default_factory=dict)
    outcomes_seen: dict[str, dict[str, int]] = field(default_factory=dict)   # member -> outcome -> samples
    fault_window: WatchSummary | None = None
    rule: WatchRule | None = None

    @classmethod
    def readers(cls) -> dict[str, Callable[[Any], Any]]:
        return {"fault_window": WatchSummary.from_json, "rule": lambda d: WatchRule(**known_fields(WatchRule, d))}

    def split_brain(self) -> SplitBrain:
        return SplitBrain(self.samples, self.max_primaries_at_once, self.double_primary,
                          list(self.double_primary_members), self.double_primary_seconds,
                          {k: list(v) for k, v in self.vip_held_twice.items()})


@dataclass
class WatchSample:
    cycle: int
    at: float                                   # monotonic start of the cycle
    took_s: float
    members: dict[str, MemberState]
    vips: dict[str, list[str]] | None = None    # role -> nodes holding it (None: not sampled this cycle)
    vip_errors: dict[str, str] = field(default_factory=dict)
    probe_errors: dict[str, str] = field(default_factory=dict)   # member -> the watch's own failure

    @property
    def primaries(self) -> list[str]:
        return sorted(m for m, s in self.members.items() if s.outcome == Outcome.PRIMARY)

    @property
    def complete(self) -> bool:
        """Every member was observed (its answer, or its failure to answer, is a fact about it)."""
        return not self.probe_errors

    def event(self) -> dict[str, Any]:
        d: dict[str, Any] = {"cycle": self.cycle, "took_s": round(self.took_s, 3),
                             "members": {m: s.event() for m, s in self.members.items()},
                             "vips": self.vips}
        if self.vip_errors:
            d["vip_errors"] = self.vip_errors
        if self.probe_errors:
            d["probe_errors"] = self.probe_errors
        return d


def with_lag(members: dict[str, MemberState]) -> dict[str, MemberState]:
    """Fill each replica's lag behind the one primary of the same cycle (same timeline only;
    with no primary or two of them there is no single reference, and lag stays unknown)."""
    prim = [s for s in members.values() if s.outcome == Outcome.PRIMARY]
    if len(prim) != 1 or prim[0].lsn is None:
        return members
    p = prim[0]
    out = dict(members)
    for m, s in members.items():
        if s.outcome == Outcome.REPLICA and s.lsn is not None and s.timeline == p.timeline:
            out[m] = replace(s, lag_bytes=max(0, p.lsn - s.lsn))
    return out


class Watch:
    def __init__(self, members: list[str], probe: Callable[[str], MemberState], *,
                 vip_nodes: list[str] | None = None, vip_probe: Callable[[str], set[str]] | None = None,
                 vip_roles: list[str] | None = None, patroni_view: Callable[[], dict] | None = None,
                 views: dict[str, Callable[[], dict]] | None = None,
                 interval: float = 0.5, deadline: float = 1.5, vip_every: int = 1, patroni_every: int = 2,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Any] | None = None,
                 record: Record | None = None) -> None:
        self.members = list(members)
        self.probe = probe
        self.vip_nodes = list(vip_nodes or []) if vip_probe else []
        self.vip_probe = vip_probe
        self.vip_roles = list(vip_roles or [])
        self.patroni_view = patroni_view
        # more context, each recorded as an event of its name (``dcs``: the leader key; ``haproxy``: its
        # backends); like Patroni's view it never stretches a cycle, and a failed one is recorded as a
        # ``view_error`` event, not counted against the watch: in an etcd drill etcd may not answer
        self.views = dict(views or {})
        self.interval = interval
        self.deadline = deadline
        self.vip_every = max(1, vip_every)
        self.patroni_every = max(1, patroni_every)
        self.clock = clock
        self.record = record
        self.samples: list[WatchSample] = []
        self.errors: list[tuple[float, str]] = []       # (monotonic, what failed in the watch itself)
        self.patroni: list[tuple[float, dict]] = []
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Future, float]] = {}
        workers = len(self.members) + len(self.vip_nodes) + 1 + len(self.views)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="watch")
        self._thread: threading.Thread | None = None
        self._cycle = 0

    # --- running -----------------------------------------------------------------------

    def start(self) -> None:
        self.started_at = self.clock()
        self._thread = threading.Thread(target=self.run, name="watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.deadline + 10)
        self.stopped_at = self.clock()
        self._collect_patroni()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self, cycles: int | None = None) -> None:
        """Sample until stopped (or ``cycles`` times): a cycle starts ``interval`` after the previous
        one started, or at once when the previous one took longer."""
        if self.started_at is None:
            self.started_at = self.clock()
        n = 0
        while not self._stop.is_set() and (cycles is None or n < cycles):
            began = self.clock()
            try:
                self.cycle(began)
            except Exception as e:          # kept, never swallowed: it counts against the watch
                self._error(began, f"cycle failed: {type(e).__name__}: {first_line(e)}")
            n += 1
            delay = began + self.interval - self.clock()
            if delay > 0 and (cycles is None or n < cycles):
                self._sleep(delay)

    def cycle(self, began: float | None = None) -> WatchSample:
        """One sample of every member (and of the VIPs and Patroni's view when due), concurrently."""
        began = self.clock() if began is None else began
        i = self._cycle
        self._cycle += 1
        jobs: dict[str, Future] = {}
        busy: dict[str, str] = {}
        for m in self.members:
            self._submit(f"member:{m}", lambda m=m: self.probe(m), jobs, busy, began)
        vips_due = bool(self.vip_nodes) and i % self.vip_every == 0
        if vips_due:
            for n in self.vip_nodes:
                self._submit(f"vip:{n}", lambda n=n: self.vip_probe(n), jobs, busy, began)
        self._collect_patroni()
        if self.patroni_view is not None and i % self.patroni_every == 0:
            # Patroni's view is context, not the watch's own sample: a slow REST API must not stretch
            # the cycle, so it is collected when it is done (a later cycle, or at the end)
            self._submit("patroni", self.patroni_view, {}, {}, began)
        if i % self.patroni_every == 0:
            for name, view in self.views.items():
                self._submit(f"view:{name}", view, {}, {}, began)
        if jobs:
            wait(list(jobs.values()), timeout=self.deadline)

        members: dict[str, MemberState] = {}
        probe_errors: dict[str, str] = {}
        for m in self.members:
            key = f"member:{m}"
            if key in busy:
                members[m] = MemberState(m, Outcome.UNREACHABLE, error=busy[key])
                continue
            f = jobs[key]
            if not f.done():
                members[m] = MemberState(m, Outcome.UNREACHABLE, error=f"no answer within {self.deadline:g} s")
            elif f.exception() is not None:
                e = f.exception()
                probe_errors[m] = f"{type(e).__name__}: {first_line(e)}"
                members[m] = MemberState(m, Outcome.UNREACHABLE, error=f"probe failed: {probe_errors[m]}")
            else:
                members[m] = f.result()
        vips, vip_errors = None, {}
        if vips_due:
            vips = {r: [] for r in self.vip_roles}
            for n in self.vip_nodes:
                key = f"vip:{n}"
                f = jobs.get(key)
                if f is None:
                    vip_errors[n] = busy[key]
                elif not f.done():
                    vip_errors[n] = f"no answer within {self.deadline:g} s"
                elif f.exception() is not None:
                    vip_errors[n] = f"{type(f.exception()).__name__}: {first_line(f.exception())}"
                else:
                    for role in f.result():
                        vips.setdefault(role, []).append(n)
        s = WatchSample(i, began, self.clock() - began, with_lag(members), vips, vip_errors, probe_errors)
        with self._lock:
            self.samples.append(s)
        if self.record:
            self.record("sample", at=began, **s.event())
        for m, err in probe_errors.items():
            self._error(began, f"{m}: {err}")
        self._collect_patroni()
        return s

    def _collect_patroni(self) -> None:
        """Record Patroni's view (and the other views) once its request is done, at the moment it was asked."""
        for name in self.views:
            self._collect_view(name)
        pending = self._pending.get("patroni")
        if pending is None or not pending[0].done() or getattr(pending[0], "_lab_recorded", False):
            return
        f, asked = pending
        f._lab_recorded = True
        if f.exception() is None and isinstance(f.result(), dict):
            with self._lock:
                self.patroni.append((asked, f.result()))
            if self.record:
                self.record("patroni", at=asked, **f.result())
        elif f.exception() is not None:
            self._error(asked, f"patroni view: {type(f.exception()).__name__}: {first_line(f.exception())}")

    def _collect_view(self, name: str) -> None:
        pending = self._pending.get(f"view:{name}")
        if pending is None or not pending[0].done() or getattr(pending[0], "_lab_recorded", False):
            return
        f, asked = pending
        f._lab_recorded = True
        if not self.record:
            return
        if f.exception() is None and isinstance(f.result(), dict):
            self.record(name, at=asked, **f.result())
        else:
            e = f.exception()
            self.record("view_error", at=asked, view=name,
                        error=f"{type(e).__name__}: {first_line(e)}" if e else f"not a view: {f.result()!r}")

    def _submit(self, key: str, fn: Callable[[], Any], jobs: dict, busy: dict, now: float) -> None:
        prev = self._pending.get(key)
        if prev is not None and not prev[0].done():
            busy[key] = f"no answer: the probe started {now - prev[1]:.1f} s ago is still waiting"
            return
        f = self._pool.submit(fn)
        self._pending[key] = (f, now)
        jobs[key] = f

    def _error(self, at: float, text: str) -> None:
        with self._lock:
            self.errors.append((at, text))
        if self.record:
            self.record("sample_error", at=at, error=text)

    # --- what was seen -----------------------------------------------------------------

    def summary(self, start: float | None = None, end: float | None = None) -> WatchSummary:
        start = self.started_at if start is None else start
        end = (self.stopped_at or self.clock()) if end is None else end
        with self._lock:
            samples, errors = list(self.samples), list(self.errors)
        return summarize(samples, [t for t, _ in errors], start=start or 0.0, end=end, interval=self.interval)

    def latest(self) -> WatchSample | None:
        with self._lock:
            return self.samples[-1] if self.samples else None

    def server_of(self, started: str | None) -> str | None:
        """The member whose postmaster started at ``started`` (identifies a write's server)."""
        if not started:
            return None
        with self._lock:
            for s in reversed(self.samples):
                for m, st in s.members.items():
                    if st.started == started:
                        return m
        return None


def summarize(samples: list[WatchSample], errors: list[float], *, start: float, end: float,
              interval: float) -> WatchSummary:
    """What the samples inside [start, end] show, and how well they covered it.

    - ``longest_gap_s``: the longest stretch without a cycle starting (window edges included);
    - ``missed_cycles``: cycle slots (one per ``interval``) without a complete sample;
    - ``double_primary_seconds``: from each first sample with two primaries to the next sample
      without (an upper bound, within one cycle);
    - ``vip_held_twice``: role -> every node seen holding it while another did too."""
    window = max(0.0, end - start)
    inside = [s for s in samples if start <= s.at <= end]
    starts = [start] + [s.at for s in inside] + [end]
    longest_gap, gap_from = max(((b - a, a) for a, b in zip(starts, starts[1:])), default=(window, start))
    expected = max(1, int(window / interval)) if window > 0 else 1
    complete = sum(1 for s in inside if s.complete)
    missed = max(0, expected - complete)

    max_primaries = max((len(s.primaries) for s in inside), default=0)
    double_members: set[str] = set()
    double_seconds = 0.0
    first_double: float | None = None
    run_start: float | None = None
    for s, nxt in zip(inside, inside[1:] + [None]):
        if len(s.primaries) > 1:
            double_members.update(s.primaries)
            if run_start is None:
                run_start = s.at
                first_double = s.at if first_double is None else first_double
        if run_start is not None and (nxt is None or len(nxt.primaries) <= 1):
            stop = nxt.at if nxt is not None else s.at + s.took_s
            double_seconds += stop - run_start
            run_start = None
    vip_twice: dict[str, set[str]] = {}
    vip_samples = 0
    for s in inside:
        if s.vips is None:
            continue
        vip_samples += 1
        for role, holders in s.vips.items():
            if len(holders) > 1:
                vip_twice.setdefault(role, set()).update(holders)
    seen: dict[str, dict[str, int]] = {}
    for s in inside:
        for m, st in s.members.items():
            seen.setdefault(m, {}).setdefault(str(st.outcome), 0)
            seen[m][str(st.outcome)] += 1
    return WatchSummary(
        window_s=[round(start, 3), round(end, 3)],
        interval_s=interval,
        samples=len(inside),
        samples_per_s=round(len(inside) / window, 2) if window > 0 else 0.0,
        longest_gap_s=round(longest_gap, 3),
        longest_gap_from=round(gap_from, 3),
        expected_cycles=expected,
        missed_cycles=missed,
        missed_share=round(missed / expected, 3),
        sample_errors=sum(1 for t in errors if start <= t <= end),
        vip_samples=vip_samples,
        vip_errors=sum(len(s.vip_errors) for s in inside),
        max_primaries_at_once=max_primaries,
        double_primary=bool(double_members),
        double_primary_members=sorted(double_members),
        double_primary_seconds=round(double_seconds, 2),
        first_double_primary_at=None if first_double is None else round(first_double, 3),
        vip_held_twice={k: sorted(v) for k, v in vip_twice.items()},
        outcomes_seen=seen,
    )


def blind_reason(summary: WatchSummary, rule: WatchRule = WatchRule()) -> str | None:
    """Why this watch cannot support a verdict, or None when it saw enough."""
    if summary.samples == 0:
        return "the watch took no sample in the fault window"
    why = []
    # A short window has too few cycles for a share to mean anything (one late sample in a 1 s window
    # is "50 %"): there the samples taken and the gap rule decide.
    if summary.expected_cycles >= rule.min_cycles_for_share and summary.missed_share > rule.max_missed_share:
        why.append(f"it missed {summary.missed_cycles} of {summary.expected_cycles} cycles "
                   f"({summary.missed_share:.0%} > {rule.max_missed_share:.0%})")
    if summary.longest_gap_s > rule.max_gap_s:
        at = "" if summary.longest_gap_from is None else f" from t={summary.longest_gap_from:g} s"
        why.append(f"it saw nothing for {summary.longest_gap_s:g} s{at} (more than {rule.max_gap_s:g} s)")
    return "the watch was blind: " + "; ".join(why) if why else None
