"""Who is who, and conditions: functions of the lab returning a zero-argument callable for
``lab.expect`` / ``lab.hold`` (truthy when the condition holds)."""
from __future__ import annotations

from typing import Any, Callable, Iterable

from lab.exercises.api.context import Lab
from lab.exercises.api.model import ExpectationFailed
from lab.exercises.kit.outcomes import Outcome

Condition = Callable[[], Any]


# --- who is who ------------------------------------------------------------------------------

def scope(lab: Lab) -> str:
    return lab.topo.cluster.scope


def members(lab: Lab) -> list[str]:
    """Every member of the main cluster, in topology order."""
    return [n.member for n in lab.topo.postgres_nodes]


def pick_candidate(lab: Lab, exclude: tuple[str, ...] = ()) -> str:
    """A streaming replica to hand the primary to (the first in topology order)."""
    for m in lab.replicas():
        if m not in exclude and lab.probe.streaming(m):
            return m
    raise ExpectationFailed("no streaming replica to switch over to")


def member_key(lab: Lab, member: str) -> Any:
    """``member``'s key in etcd as its Patroni last wrote it (None: absent, e.g. expired after ttl)."""
    return lab.probe.dcs_key(f"members/{member}")


def sync_key(lab: Lab) -> dict:
    """etcd's /sync key (synchronous replication: the leader and its synchronous standby)."""
    value = lab.probe.dcs_key("sync")
    return value if isinstance(value, dict) else {}


def sync_standby(lab: Lab) -> str | None:
    return sync_key(lab).get("sync_standby") or None


# --- conditions --------------------------------------------------------------------------------

def writable_leader(lab: Lab, member: str | None = None, *, other_than: str | None = None) -> Condition:
    """A member holds the leader key and its PostgreSQL is out of recovery: ``member`` itself when
    named, else any member but ``other_than`` (a failover's new primary). The condition's value is
    the leader's name (None while there is none that fits)."""
    def check() -> str | None:
        lead = lab.probe.leader()
        if not lead or (member is not None and lead != member) or lead == other_than:
            return None
        return lead if lab.probe.in_recovery(lead) is False else None
    return check


def streams(lab: Lab, member: str) -> Condition:
    """``member`` is a replica whose WAL receiver streams (Patroni says so)."""
    return lambda: lab.probe.streaming(member)


def streams_from(lab: Lab, member: str, source: str) -> Condition:
    """``member``'s PostgreSQL is in recovery and ``source`` sees its WAL receiver (pg_stat_replication),
    whatever Patroni on ``member`` says (or whether it runs at all)."""
    return lambda: lab.probe.in_recovery(member) is True and member in lab.probe.replication_clients(source)


def replicas_stream(lab: Lab, at_least: int = 0) -> Condition:
    """Every member other than the leader streams (and there are at least ``at_least`` of them)."""
    def check() -> bool:
        replicas = lab.replicas()
        return all(lab.probe.streaming(r) for r in replicas) and len(replicas) >= at_least
    return check


def rw_vip_only_on(lab: Lab, node: str) -> Condition:
    """The read-write VIP is on ``node``, and only there."""
    return lambda: lab.probe.vip_holders()["read_write"] == [node]


def outcomes_are(lab: Lab, claims: dict[str, Iterable[Outcome]]) -> Condition:
    """Every member's outcome is one of its claimed ones (not "anything but primary")."""
    return lambda: all(lab.outcome(m).outcome in set(o) for m, o in claims.items())


def read_only_or_explained(lab: Lab) -> Condition:
    """Every member still a replica (or fenced, the deviation already explained)."""
    return outcomes_are(lab, {m: (Outcome.REPLICA, Outcome.FENCED) for m in members(lab)})


def commit_waits_for_sync(lab: Lab, member: str | None = None, *, address: str | None = None) -> Condition:
    """A write on ``member`` (or through ``address``) reaches a server that takes it, but its commit waits
    for a synchronous standby and is cancelled, never acknowledged. A refused connection or a read-only
    server is not this (the old "not committed" check accepted any failure)."""
    def check() -> bool:
        ok, why = lab.probe.can_commit(member, address=address)
        return not ok and "waited for a synchronous standby" in why
    return check
