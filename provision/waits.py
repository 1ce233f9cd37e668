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
    return until("a running leader", probe, timeout)


def streaming(topo: Topology, nodes: list[Node], expected: list[str], timeout: float = 240) -> bool:
    """Wait until every member in ``expected`` is either the leader or a streaming replica."""
    def probe() -> bool:
        for n in nodes:
            members = {m["name"]: m for m in cluster_members(topo, n)}
            if members:
                return all(name in members and (members[name].get("role") == "leader"
                                                or members[name].get("state") == "streaming")
                           for name in expected)
        return False
    return until(f"{', '.join(expected)} to lead or stream", probe, timeout, interval=2)


def http_ok(topo: Topology, address: str, port: int, path: str, what: str, timeout: float = 60) -> bool:
    return until(what, lambda: remote.http(topo, address, port, path)[0] == 200, timeout)
