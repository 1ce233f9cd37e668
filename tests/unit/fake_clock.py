"""A clock for the drill engine's tests: time moves only when the code under test sleeps."""
from __future__ import annotations

from typing import Callable


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.listeners: list[Callable[[], None]] = []    # told after time moved (a watch samples then)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        assert s >= 0
        self.sleeps.append(s)
        self.now += s
        for listen in list(self.listeners):
            listen()
