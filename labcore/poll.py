"""Every wait of the project: bounded polls ("true within N seconds", "stays true for N seconds"),
never fixed sleeps, and the one timeout multiplier that stretches them.

The multiplier: the ``--scale`` option of the command being run, else ``$LAB_TIMEOUT_SCALE``, else
the configured value (invoke.yaml), else what the lab's machines need (recorded by the provider
that built them: VMs under QEMU's TCG emulation), else 1. :func:`wait_for` applies it; :func:`until` and
:func:`holds` take bounds already stretched (the drills scale each bound themselves and report it).
Tests pass a fake clock (``monotonic()`` and ``sleep()``) and no time passes for real.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, TypeVar

SCALE_ENV = "LAB_TIMEOUT_SCALE"
MAX_SCALE = 20

T = TypeVar("T")


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM = SystemClock()


class ScaleError(ValueError):
    """A timeout multiplier that is not a number in (0, 20]; the message is one line."""


class WaitTimeout(RuntimeError):
    """A condition that did not come true in time; the message says which and what was last seen."""


# --- the multiplier ---------------------------------------------------------------------

_option: float | None = None      # the --scale of the command being run (set_scale)


def parse_scale(raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ScaleError(f"timeout scale {raw!r} is not a number (e.g. 1, 1.5, 3)") from None
    if not 0 < value <= MAX_SCALE:
        raise ScaleError(f"timeout scale {value:g} must be above 0 and at most {MAX_SCALE}")
    return value


def machines_scale() -> float | None:
    """The multiplier the running lab's machines need (``timeout_scale`` in its state), if any."""
    from labcore import state
    try:
        return state.load().timeout_scale
    except state.LabStateError:
        return None


def timeout_scale(option: Any = None, configured: Any = None) -> float:
    """The one multiplier: ``option`` (a command's --scale; or the one this process chose with
    :func:`set_scale`), else $LAB_TIMEOUT_SCALE, else ``configured`` (invoke.yaml), else the
    machines' own (slow VMs), else 1."""
    for raw in (option, _option, os.environ.get(SCALE_ENV), configured):
        if raw not in (None, ""):
            return parse_scale(raw)
    machines = machines_scale()
    return parse_scale(machines) if machines else 1.0


def set_scale(value: float | None) -> None:
    """Make ``value`` (already chosen by :func:`timeout_scale`) the multiplier of every later wait
    in this process: the CLI calls it once per command."""
    global _option
    _option = None if value is None else parse_scale(value)


def scaled(seconds: float) -> float:
    """``seconds`` stretched by this process's multiplier."""
    return seconds * timeout_scale()


# --- polls -----------------------------------------------------------------------------------

@dataclass
class Outcome:
    ok: bool
    elapsed: float
    last: str           # the last falsy answer or exception, for the message ("" when ok)
    value: Any = None   # the truthy answer that ended the wait


def _ask(cond: Callable[[], Any]) -> tuple[Any, str]:
    try:
        value = cond()
        return value, "" if value else repr(value)
    except Exception as e:  # a probe that cannot answer yet is "not yet", not a crash
        return None, f"{type(e).__name__}: {e}"


def poll(cond: Callable[[], Any], within: float, every: float = 1.0, clock: Clock = SYSTEM) -> Outcome:
    """Call ``cond`` until it is truthy or ``within`` seconds have passed (never sleeping past the
    bound). An exception counts as "not yet"."""
    start = clock.monotonic()
    while True:
        began = clock.monotonic()
        value, last = _ask(cond)
        if value:
            return Outcome(True, began - start, "", value)
        elapsed = clock.monotonic() - start
        if elapsed >= within:
            return Outcome(False, elapsed, last)
        clock.sleep(min(every, max(0.0, within - elapsed)))


def until(cond: Callable[[], Any], within: float, every: float = 1.0,
          clock: Clock = SYSTEM) -> tuple[bool, float, str]:
    """:func:`poll` as (ok, elapsed seconds, last error or value)."""
    out = poll(cond, within, every, clock)
    return out.ok, out.elapsed, out.last


def holds(cond: Callable[[], Any], duration: float, every: float = 1.0,
          clock: Clock = SYSTEM) -> tuple[bool, float, str]:
    """Check that ``cond`` stays truthy for ``duration`` seconds; stop at the first falsy answer."""
    start = clock.monotonic()
    while True:
        value, last = _ask(cond)
        elapsed = clock.monotonic() - start
        if not value:
            return False, elapsed, last
        if elapsed >= duration:
            return True, elapsed, ""
        clock.sleep(min(every, max(0.0, duration - elapsed)))


def wait_for(what: str, cond: Callable[[], T | None], timeout: float, every: float = 1.0,
             clock: Clock = SYSTEM) -> T:
    """Wait, ``timeout`` stretched by the multiplier, until ``cond`` is truthy; return its answer.
    Raises WaitTimeout naming ``what`` and the last answer seen."""
    bound = scaled(timeout)
    out = poll(cond, bound, every, clock)
    if not out.ok:
        raise WaitTimeout(f"timed out after {bound:.0f}s waiting for {what}"
                          + (f" (last seen: {out.last})" if out.last else ""))
    return out.value
