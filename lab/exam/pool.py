"""Which drills' faults an exam may inject, and the order a seed draws them in.

A fault belongs in the pool when (1) it stays in effect until someone repairs it (a fault
Patroni heals by itself, such as a stopped PostgreSQL that the next HA loop starts again, leaves
nothing to repair), (2) the drill's own undo command repairs it, typed by hand on one node (no
configuration changed before the fault, no watchdog fencing that needs more than the undo),
and (3) the exam's gate sees it while it lasts, so ``--done`` can say what is still off.
"""
from __future__ import annotations

import random

from labcore.suggest import unknown

# drill name -> why its fault fits the three rules above
POOL: dict[str, str] = {
    "replica-patroni-stop": "a replica leaves the cluster until `systemctl start patroni`",
    "replica-patroni-kill": "a replica's Patroni stays dead (Restart=no, §5) until it is started again",
    "replica-etcd-cut": "an iptables rule cuts a replica from etcd until it is deleted",
    "primary-patroni-stop": "a failover happens; the old leader stays out until its Patroni starts",
    "haproxy-vip": "haproxy stays stopped on one node; its VIP moved, the gate sees the stopped unit",
}
# Left out, and why: replica-pg-stop and primary-pg-stop heal themselves (Patroni starts PostgreSQL
# again); primary-patroni-kill and the watchdog drills change the watchdog settings first or need the
# fenced node revived; etcd-down and primary-etcd-cut may be fenced by the watchdog (the undo alone
# does not repair that); sync-*, cascading, standby-cluster and the daily operations change the
# cluster's configuration before their fault; replica-rogue-primary's repair is a reinit, not its undo.


class PoolError(ValueError):
    """Bad --from or --seed; the message is one line."""


def parse_from(text: str | None, known: list[str]) -> list[str]:
    """``--from a,b,c`` as drill names of the pool (all of it when not given)."""
    if text is None or not str(text).strip():
        return list(POOL)
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if not names:
        raise PoolError("--from: give drill names separated by commas, e.g. --from replica-patroni-stop,haproxy-vip")
    for n in names:
        if n not in known:
            raise PoolError(f"--from: {unknown('drill', n, known, listing='invoke exercise --list')}")
        if n not in POOL:
            raise PoolError(f"--from: {n}'s fault cannot be an exam's (it is not repaired by hand with its own "
                            f"undo); the exam's drills: {', '.join(POOL)}")
    return list(dict.fromkeys(names))


def parse_seed(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise PoolError(f"--seed {value!r}: must be a whole number (the same seed gives every seat the same fault)") \
            from None


def draw(names: list[str], seed: int) -> list[str]:
    """The pool in the order the seed draws it: the first is the exam's fault; the next ones stand in
    when a drill is not applicable on this lab (e.g. haproxy-vip with one haproxy node)."""
    order = sorted(names)
    random.Random(seed).shuffle(order)
    return order
