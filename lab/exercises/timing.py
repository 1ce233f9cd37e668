"""Time for the drills: a clock (the unit tests bring a fake one), the one timeout multiplier, and
bounded polls: "true within N seconds", "stays true for N seconds", never fixed sleeps."""
from __future__ import annotations

import os
import time
from typing import Any, Callable

from lab.exercises.model import DrillError

SCALE_ENV = "LAB_TIMEOUT_SCALE"


class Clock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def timeout_scale(configured: Any = None) -> float:
    """The one multiplier for every bound: $LAB_TIMEOUT_SCALE, else the configured value, else 1."""
    raw = os.environ.get(SCALE_ENV) or configured
    if raw in (None, ""):
        return 1.0
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise DrillError(f"timeout scale {raw!r} is not a number (e.g. 1, 1.5, 3)") from None
    if not 0 < value <= 20:
        raise DrillError(f"timeout scale {value} must be above 0 and at most 20")
    return value


def poll_until(cond: Callable[[], Any], within: float, every: float, clock: Clock) -> tuple[bool, float, str]:
    """Call ``cond`` until it is truthy or ``within`` seconds have passed.
    Returns (ok, elapsed seconds, last error or value). An exception counts as "not yet"."""
    start = clock.monotonic()
    last = ""
    while True:
        began = clock.monotonic()
        try:
            value = cond()
            if value:
                return True, began - start, ""
            last = repr(value)
        except Exception as e:  # a probe that cannot answer yet is "not yet", not a crash
            last = f"{type(e).__name__}: {e}"
        elapsed = clock.monotonic() - start
        if elapsed >= within:
            return False, elapsed, last
        clock.sleep(min(every, max(0.0, within - elapsed)))


def poll_holds(cond: Callable[[], Any], duration: float, every: float, clock: Clock) -> tuple[bool, float, str]:
    """Check that ``cond`` stays truthy for ``duration`` seconds; stop at the first falsy answer."""
    start = clock.monotonic()
    while True:
        try:
            value = cond()
            last = "" if value else repr(value)
        except Exception as e:
            value, last = False, f"{type(e).__name__}: {e}"
        elapsed = clock.monotonic() - start
        if not value:
            return False, elapsed, last
        if elapsed >= duration:
            return True, elapsed, ""
        clock.sleep(min(every, max(0.0, duration - elapsed)))
