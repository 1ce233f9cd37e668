"""The split-brain watch: during a drill, sample every node's pg_is_in_recovery()
and who holds each VIP, and remember every moment two nodes were primary at once
or a VIP had two holders."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Sample:
    at: float
    primaries: list[str]
    vips: dict[str, list[str]] | None = None


@dataclass
class SplitBrainWatch:
    primaries: Callable[[], list[str]]
    vip_holders: Callable[[], dict[str, list[str]]] | None = None
    interval: float = 1.0
    vip_every: int = 2                  # VIPs cost an ssh round per node: sample them less often
    clock: Callable[[], float] = time.monotonic
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self, i: int = 0) -> Sample:
        vips = self.vip_holders() if self.vip_holders and i % self.vip_every == 0 else None
        s = Sample(self.clock(), self.primaries(), vips)
        self.samples.append(s)
        return s

    def start(self) -> None:
        def loop() -> None:
            i = 0
            while not self._stop.is_set():
                try:
                    self.sample(i)
                except Exception:
                    pass
                i += 1
                self._stop.wait(self.interval)
        self._thread = threading.Thread(target=loop, name="split-brain-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def summary(self, since: float = 0.0) -> dict:
        """What was seen: most primaries at once, for how long two or more, VIPs held twice."""
        samples = [s for s in self.samples if s.at >= since]
        max_primaries = max((len(s.primaries) for s in samples), default=0)
        double = [s for s in samples if len(s.primaries) > 1]
        vip_double = {}
        for s in samples:
            for role, holders in (s.vips or {}).items():
                if len(holders) > 1:
                    vip_double.setdefault(role, set()).update(holders)
        return {
            "samples": len(samples),
            "max_primaries_at_once": max_primaries,
            "double_primary": bool(double),
            "double_primary_nodes": sorted({m for s in double for m in s.primaries}),
            "double_primary_seconds": round(_span(double, self.interval), 1),
            "vip_held_twice": {k: sorted(v) for k, v in vip_double.items()},
        }


def _span(samples: list[Sample], interval: float) -> float:
    """Approximate duration covered by the given samples (each stands for about one interval)."""
    if not samples:
        return 0.0
    return max(samples[-1].at - samples[0].at, interval)
