"""The drills' timeout multiplier: :func:`labcore.poll.timeout_scale`, with a bad value reported as a
DrillError (one line). Every wait itself is a :mod:`labcore.poll` poll."""
from __future__ import annotations

from typing import Any

from labcore import poll
from lab.exercises.api.model import DrillError


def timeout_scale(configured: Any = None, *, option: Any = None) -> float:
    """``option`` (--scale), else $LAB_TIMEOUT_SCALE, else ``configured`` (invoke.yaml), else 1."""
    try:
        return poll.timeout_scale(option, configured)
    except poll.ScaleError as e:
        raise DrillError(str(e)) from None
