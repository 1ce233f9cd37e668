"""The figures the drills' bounds derive from: Patroni's ttl, loop_wait and retry_timeout as the
cluster has them (:class:`Timing`), and the timeout multiplier (:func:`labcore.poll.timeout_scale`,
with a bad value reported as a DrillError, one line). Every wait itself is a :mod:`labcore.poll` poll."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from labcore import poll
from lab.exercises.api.model import DrillError


def timeout_scale(configured: Any = None, *, option: Any = None) -> float:
    """``option`` (--scale), else $LAB_TIMEOUT_SCALE, else ``configured`` (invoke.yaml), else 1."""
    try:
        return poll.timeout_scale(option, configured)
    except poll.ScaleError as e:
        raise DrillError(str(e)) from None


@dataclass(frozen=True)
class Timing:
    """Patroni's timing in seconds; the defaults are Patroni's own, used for a key the
    dynamic configuration leaves out."""
    ttl: int = 30
    loop_wait: int = 10
    retry_timeout: int = 10

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Timing:
        """The timing in a dynamic configuration (``patronictl show-config``'s keys)."""
        default = cls()
        return cls(**{f.name: int(config.get(f.name) or getattr(default, f.name)) for f in fields(cls)})
