"""Patroni's dynamic configuration (the DCS ``/config`` key) against what provisioning wrote.

A drill changes it (retry_timeout, synchronous mode, failsafe_mode, parameters) and its restore puts
it back; a drill that is killed cannot. The baseline is read, not retyped: ``bootstrap.dcs`` of the
first member's own configuration files, plus the standby cluster's permanent slot (step ``standby``).
The health gate around every drill checks it (``check``), and the repair patches the drift back.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from labcore.topology import Topology

if TYPE_CHECKING:
    from lab.exercises.api.context import Lab
    from lab.exercises.run.health import Finding

CHECK = "Patroni's dynamic configuration as provisioned"

# Keys a drill may add that Patroni also writes as false or null when they are turned off again.
_OFF = (None, False)


def baseline(topo: Topology, local_config: dict[str, Any]) -> dict[str, Any]:
    """The dynamic configuration as provisioned, from the first member's merged local configuration."""
    dcs = copy.deepcopy((local_config.get("bootstrap") or {}).get("dcs") or {})
    dcs.pop("standby_cluster", None)            # only the standby cluster's own members carry it
    if topo.standby_node:
        dcs.setdefault("slots", {})[topo.cluster.standby_slot] = {"type": "physical"}
    return dcs


def drift(want: dict[str, Any], have: dict[str, Any]) -> dict[str, Any]:
    """The PATCH /config body that turns ``have`` back into ``want`` (None removes a key); {} when equal.
    A key ``want`` lacks and ``have`` holds as false or null is already off, not drift."""
    out: dict[str, Any] = {}
    for k, v in want.items():
        if isinstance(v, dict) and isinstance(have.get(k), dict):
            sub = drift(v, have[k])
            if sub:
                out[k] = sub
        elif have.get(k) != v or k not in have:
            out[k] = v
    for k, v in have.items():
        if k not in want and v not in _OFF:
            out[k] = None
    return out


def describe(patch: dict[str, Any], have: dict[str, Any], prefix: str = "") -> list[str]:
    """One ``key: now -> provisioned`` line per drifted leaf."""
    lines = []
    for k, v in patch.items():
        now = have.get(k) if isinstance(have, dict) else None
        if isinstance(v, dict) and isinstance(now, dict):
            lines += describe(v, now, f"{prefix}{k}.")
        else:
            lines.append(f"{prefix}{k}: {now!r} -> {'removed' if v is None else repr(v)}")
    return lines


def check(lab: Lab) -> tuple[Finding, dict[str, Any]]:
    """(the finding, the PATCH /config body that would restore it). Unreadable is off the baseline,
    never "as provisioned". The local files are read afresh each time: a failed read is not kept, and
    a repair may have removed a drill's configuration fragment."""
    from lab.exercises.run.health import Finding

    first = lab.topo.postgres_nodes[0].name
    lab.facts.forget(first)
    local = lab.facts.patroni_config(first)
    have = lab.probe.dynamic_config()
    if not local or not have:
        return Finding(CHECK, False, "could not read it (GET /config or the first member's files)"), {}
    patch = drift(baseline(lab.topo, local), have)
    return Finding(CHECK, not patch, "; ".join(describe(patch, have)) or "as provisioned"), patch
