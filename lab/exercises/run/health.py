"""The health gate, before and after every drill: the baseline a drill starts from
and must bring the lab back to.

Baseline = etcd healthy; exactly one Patroni leader; every other member a
streaming replica, none holding a timeline past the leader's; no member pending restart; PostgreSQL
agrees (one primary, every other answers in recovery); each VIP held by exactly one node (the
read-write VIP by the leader's node). The gate adds Patroni's dynamic configuration as provisioned
(lab.exercises.run.dynamic_config), which needs the lab's files, not only the probe.
"""
from __future__ import annotations

from dataclasses import dataclass

from lab.exercises.kit.probe import PRIMARY_ROLES, Probe


@dataclass
class Finding:
    check: str
    ok: bool
    detail: str


def findings(probe: Probe) -> list[Finding]:
    topo = probe.topo
    out: list[Finding] = []

    etcd = probe.etcd_healthy()
    bad = [n for n, ok in etcd.items() if not ok]
    out.append(Finding("etcd healthy", not bad and bool(etcd),
                       f"unhealthy: {', '.join(bad)}" if bad else f"{len(etcd)} member(s) healthy"))

    members = {m["name"]: m for m in probe.members()}
    expected = [n.member for n in topo.postgres_nodes]
    leaders = [m for m, v in members.items() if v.get("role") in PRIMARY_ROLES]
    out.append(Finding("one leader", len(leaders) == 1,
                       f"leaders: {', '.join(leaders) or 'none'}"))
    missing = [m for m in expected if m not in members]
    # Patroni 3.0 and later say "streaming" in /cluster; before, the probe asks the replicas' sources
    streaming = ({m for m, v in members.items() if v.get("state") == "streaming"}
                 if topo.patroni_release.at_least(3, 0) else probe.streaming_replicas())
    not_streaming = [f"{m}={members[m].get('state')}" for m in expected
                     if m in members and m not in leaders and m not in streaming]
    out.append(Finding("replicas streaming", not missing and not not_streaming,
                       "; ".join(filter(None, [f"missing: {', '.join(missing)}" if missing else "",
                                               f"not streaming: {', '.join(not_streaming)}" if not_streaming else ""]))
                       or f"{len(expected) - len(leaders)} streaming"))
    # A parameter put back in the DCS (a drill killed before its restart) runs old values until a restart.
    pending = [m for m in expected if members.get(m, {}).get("pending_restart")]
    out.append(Finding("no member pending restart", not pending,
                       f"pending restart: {', '.join(pending)}" if pending else "none pending"))
    if members.get(leaders[0] if leaders else "", {}).get("state") not in (None, "running"):
        out.append(Finding("leader running", False, f"{leaders[0]} is {members[leaders[0]].get('state')}"))

    # Streaming now is not enough: a replica promoted by hand and demoted before pg_rewind could run keeps
    # the newer timeline's history and refuses its leader at the next reconnect (a later drill's restart).
    if len(leaders) == 1:
        forked = probe.forked_replicas(leaders[0], [m for m in expected if m in members and m not in leaders])
        out.append(Finding("replicas on the leader's timeline", not forked,
                           "; ".join(Probe.describe_fork(m, t, lt) for m, (t, lt) in forked.items())
                           or "no replica ahead of the leader"))
    prim = probe.primaries()
    out.append(Finding("PostgreSQL: one primary", prim == leaders and len(prim) == 1,
                       f"pg_is_in_recovery() = false on: {', '.join(prim) or 'none'}"))
    # Asked of PostgreSQL itself: Patroni's view stays "streaming" for up to a loop_wait after a
    # replica's PostgreSQL was stopped by hand.
    silent = [m for m in expected if m not in prim and probe.in_recovery(m) is None]
    out.append(Finding("PostgreSQL answers on every member", not silent,
                       f"no answer from: {', '.join(silent)}" if silent else f"{len(expected)} answer"))

    holders = probe.vip_holders()
    for role, nodes in holders.items():
        ok = len(nodes) == 1
        detail = f"{topo.vips[role]} held by {', '.join(nodes) or 'nobody'}"
        if role == "read_write" and ok and leaders:
            ok = nodes[0] == topo.node(leaders[0]).name
            detail += f" (leader is on {topo.node(leaders[0]).name})"
        out.append(Finding(f"VIP {role} held once", ok, detail))
    return out


def healthy(found: list[Finding]) -> bool:
    return all(f.ok for f in found)


def describe(found: list[Finding]) -> str:
    return "\n".join(f"  [{'ok' if f.ok else '!!'}] {f.check}: {f.detail}" for f in found)
