"""Bounded polls used between waves of a step (never fixed sleeps)."""
from __future__ import annotations

from typing import Callable, TypeVar

from labcore import remote
from labcore.topology import Node, Topology
from labcore import poll

T = TypeVar("T")

def until(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
    """Call ``probe`` until it returns something truthy, at most ``timeout`` seconds (stretched by
    the timeout multiplier)."""
    return poll.wait_for(what, probe, timeout, every=interval)


def rest(topo: Topology, node: Node, path: str) -> tuple[int, object]:
    return remote.http(topo, node.address, topo.ports.patroni, path)


def cluster_members(topo: Topology, via: Node) -> list[dict]:
    status, body = rest(topo, via, "/cluster")
    return body.get("members", []) if status == 200 and isinstance(body, dict) else []


def leader_of(topo: Topology, nodes: list[Node], timeout: float = 120) -> str:
    """Wait until some member leads the cluster; return its member name."""
    def probe() -> str | None:
        for n in nodes:
            for m in cluster_members(topo, n):
                if m.get("role") in ("leader", "standby_leader") and m.get("state") == "running":
                    return m["name"]
        return None
    return until("a running leader", probe, timeout, interval=0.5)


def member_status(topo: Topology, node: Node) -> dict:
    """The member's own view (``GET /patroni``): read from its PostgreSQL at each request, unlike
    ``/cluster``, whose member states lag by up to one loop_wait."""
    _, body = rest(topo, node, "/patroni")
    return body if isinstance(body, dict) else {}


def running(topo: Topology, nodes: list[Node], timeout: float = 240) -> None:
    """Wait until every node's PostgreSQL runs under its Patroni (in whatever role)."""
    until(f"{', '.join(n.member for n in nodes)} to run",
          lambda: all(member_status(topo, n).get("state") == "running" for n in nodes), timeout, interval=0.5)


def streaming(topo: Topology, nodes: list[Node], timeout: float = 240) -> None:
    """Wait until every node either is the primary or streams WAL (its walreceiver's own state)."""
    def all_lead_or_stream() -> bool:
        status = {n.member: member_status(topo, n) for n in nodes}
        leads = lambda s: s.get("role") in ("primary", "master")      # noqa: E731
        if any("replication_state" in s and not leads(s) and s["replication_state"] != "streaming"
               for s in status.values()):
            return False
        unsaid = [m for m, s in status.items() if not leads(s) and "replication_state" not in s]
        if not unsaid:
            return True
        # Patroni before 3.0 has no replication_state: a replica streams when a member it replicates
        # from (the leader, or a cascading source) lists it as streaming in pg_stat_replication
        sources = [member_status(topo, n) for n in topo.nodes
                   if (n.has("postgres") or n.has("standby")) and n.member not in status] + list(status.values())
        listed = {r.get("application_name") for s in sources for r in s.get("replication") or []
                  if isinstance(r, dict) and r.get("state") == "streaming"}
        return all(status[m].get("state") == "running" and m in listed for m in unsaid)
    until(f"{', '.join(n.member for n in nodes)} to lead or stream", all_lead_or_stream, timeout, interval=0.5)


def http_ok(topo: Topology, address: str, port: int, path: str, what: str, timeout: float = 60) -> bool:
    return until(what, lambda: remote.http(topo, address, port, path)[0] == 200, timeout, interval=0.5)
