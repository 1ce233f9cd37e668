"""A watch for runs on a fake clock: its cycles happen as the fake time passes, one per interval,
each probing the fake members as they are at that moment (the real Watch does the same on a thread)."""
from __future__ import annotations

from typing import Callable

from lab.exercises.kit.outcomes import MemberState, Outcome
from lab.exercises.observe.watch import Watch

from fake_clock import FakeClock


def outcome_of(fake) -> Callable[[str], MemberState]:
    """A member probe over a fake cluster that answers ``in_recovery(member)`` (None: not answering)."""
    def probe(member: str) -> MemberState:
        r = fake.in_recovery(member)
        if r is None:
            return MemberState(member, Outcome.STOPPED, evidence="pg_ctl status: no server running")
        return MemberState(member, Outcome.REPLICA if r else Outcome.PRIMARY, timeline=1)
    return probe


class ClockDrivenWatch(Watch):
    def __init__(self, clock: FakeClock, members: list[str], probe: Callable[[str], MemberState], *,
                 blind_between: tuple[float, float] | None = None, **kw) -> None:
        super().__init__(members, probe, clock=clock.monotonic, **kw)
        self.blind_between = blind_between       # (from, to): no cycle happens then (a stalled watch)
        self._next: float | None = None
        clock.listeners.append(self._tick)

    def start(self) -> None:
        self.started_at = self._next = self.clock()
        self._tick()

    def _tick(self) -> None:
        if self._next is None or self.stopped_at is not None:
            return
        while self._next <= self.clock():
            a, b = self.blind_between or (1, 0)
            if not a <= self._next <= b:
                self.cycle(self._next)
            self._next += self.interval

    def stop(self) -> None:
        self._tick()
        self.stopped_at = self.clock()
        self._pool.shutdown(wait=True)


def watch_for(fake, clock: FakeClock, **kw) -> ClockDrivenWatch:
    return ClockDrivenWatch(clock, [n.member for n in fake.topo.postgres_nodes], outcome_of(fake), **kw)
