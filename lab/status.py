"""What `invoke status` shows, as small sections others can extend.

Each section is a function ``(topo, state) -> Section | None`` listed in
:data:`SECTIONS`; the CLI renders them in order. Sections only talk to lab
addresses through :mod:`labcore.remote` (guarded), and only when the lab is up.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from lab import lifecycle
from labcore import guard, remote
from labcore import vips as vip_addresses
from labcore import state as lab_state
from labcore.topology import Topology


@dataclass
class Section:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def machines(topo: Topology, st: lab_state.State, settings: dict[str, Any] | None = None) -> Section:
    """Per node: the container/VM state (from the provider) and whether ssh answers."""
    from lab import providers
    prov = providers.get(st.provider or "docker", settings or {})
    states = prov.machine_states(topo)
    def reach(node: str) -> str:
        try:
            guard.check(topo.node(node).address, topo, st)
        except guard.GuardError:
            return "refused by the guard"
        return "yes" if lifecycle.ssh_answers(node, timeout=5) else "NO"

    with ThreadPoolExecutor(max_workers=len(topo.nodes)) as pool:
        ssh = dict(zip(topo.names, pool.map(reach, topo.names)))
    sec = Section(f"machines ({st.provider}, {st.platform}, phase {st.phase})",
                  ["node", "member", "address", "roles", "machine", "ssh"])
    for n in topo.nodes:
        sec.rows.append([n.name, n.member, n.address, ",".join(n.roles) + (",etcd" if n.etcd else ""),
                         states.get(n.name, "?"), ssh[n.name]])
    return sec


def patroni(topo: Topology, st: lab_state.State) -> Section | None:
    """Patroni's own view (GET /cluster) of the main cluster and of the standby cluster."""
    if st.phase != "provisioned":
        return None
    sec = Section("patroni", ["cluster", "member", "host", "role", "state", "timeline", "lag"])
    groups = [(topo.cluster.scope, topo.postgres_nodes)]
    if topo.standby_node:
        groups.append((topo.cluster.standby_scope, [topo.standby_node]))
    for scope, nodes in groups:
        for n in nodes:
            code, body = remote.http(topo, n.address, topo.ports.patroni, "/cluster")
            if code == 200 and isinstance(body, dict):
                for m in body.get("members", []):
                    sec.rows.append([scope, m.get("name", ""), m.get("host", ""), m.get("role", ""),
                                     m.get("state", ""), str(m.get("timeline", "")), str(m.get("lag", ""))])
                break
        else:
            sec.rows.append([scope, "-", "-", "no REST API answered", "", "", ""])
    return sec


def vips(topo: Topology, st: lab_state.State) -> Section | None:
    """Who holds each VIP, read from every node's own addresses (ip -o addr over ssh)."""
    if st.phase != "provisioned":
        return None

    def addresses(node: str) -> str | None:
        try:
            r = remote.connect(topo, node).run(vip_addresses.ADDRESSES_COMMAND, hide=True, warn=True, timeout=10,
                                               in_stream=False)
            return r.stdout
        except Exception:
            return None

    with ThreadPoolExecutor(max_workers=len(topo.nodes)) as pool:
        seen = dict(zip(topo.names, pool.map(addresses, topo.names)))
    sec = Section("VIPs", ["vip", "address", "held by"])
    held = vip_addresses.holders(topo, seen)
    for role, vip in topo.vips.items():
        sec.rows.append([role, vip, ", ".join(held[role]) or "nobody"])
    return sec


SECTIONS: list[Callable[[Topology, lab_state.State], Section | None]] = [patroni, vips]


def collect(topo: Topology, st: lab_state.State, settings: dict[str, Any] | None = None) -> list[Section]:
    """Every section for a lab that is up (the caller checks that first: no traffic otherwise)."""
    out = [machines(topo, st, settings)]
    for fn in SECTIONS:
        sec = fn(topo, st)
        if sec:
            out.append(sec)
    return out


def etcd(topo: Topology, st: lab_state.State) -> Section | None:
    """etcd's own health endpoint on each member."""
    if st.phase != "provisioned":
        return None
    sec = Section("etcd", ["node", "address", "health"])
    for n in topo.etcd_nodes:
        code, body = remote.http(topo, n.address, topo.ports.etcd_client, "/health")
        ok = code == 200 and isinstance(body, dict) and str(body.get("health")) == "true"
        sec.rows.append([n.name, n.address, "healthy" if ok else f"UNHEALTHY (HTTP {code or 'no answer'})"])
    return sec


def haproxy(topo: Topology, st: lab_state.State) -> Section | None:
    """haproxy's backends as each haproxy node's stats page shows them (UP / DOWN per server)."""
    if st.phase != "provisioned":
        return None
    from lab.exercises.kit import haproxy_stats

    nodes = topo.haproxy_nodes
    if not nodes:
        return None
    sec = Section("haproxy backends", ["haproxy on", "proxy", "server", "status"])
    for n in nodes:
        code, body = remote.http(topo, n.address, topo.ports.haproxy_stats, "/;csv")
        try:
            stats = haproxy_stats.parse(body if code == 200 and isinstance(body, str) else "")
        except ValueError:
            sec.rows.append([n.name, "-", "-", f"no stats page (HTTP {code or 'no answer'})"])
            continue
        for (proxy, server), status in sorted(stats.items()):
            sec.rows.append([n.name, proxy, server, status])
    return sec


SECTIONS += [haproxy, etcd]
