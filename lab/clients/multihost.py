"""libpq multi-host connection URLs (article §7.1), built from the topology.

libpq tries the hosts of a multi-host URL in order and keeps the first one
whose session matches ``target_session_attrs``; the lab uses that to show a
client finding the primary without knowing which member leads.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import urlencode, urlsplit

from labcore import guard
from labcore import state as lab_state
from labcore.topology import Topology

# libpq 10+ knows read-write and any; libpq 14+ adds the rest.
LIBPQ_SESSION_ATTRS = ("read-write", "any", "read-only", "primary", "standby", "prefer-standby")


@dataclass(frozen=True)
class Landing:
    """Where one connection ended up."""
    address: str
    in_recovery: bool

    @property
    def role(self) -> str:
        return "replica" if self.in_recovery else "primary"


def member_endpoints(topo: Topology) -> list[tuple[str, int]]:
    """(address, port) of every Patroni member of the main cluster, in topology order."""
    port = topo.ports.postgres
    return [(n.address, port) for n in topo.postgres_nodes]


def libpq_url(topo: Topology, target_session_attrs: str = "read-write", *,
              dbname: str = "postgres", extra: dict[str, str] | None = None) -> str:
    """``postgres://user@h1:p,h2:p,.../db?target_session_attrs=...`` without the password.

    The password is passed separately (see :func:`connect`) so the URL can be
    printed in a drill without leaking it.
    """
    if target_session_attrs not in LIBPQ_SESSION_ATTRS:
        raise ValueError(f"target_session_attrs={target_session_attrs!r} is not one of "
                         f"{', '.join(LIBPQ_SESSION_ATTRS)}")
    hosts = ",".join(f"{a}:{p}" for a, p in member_endpoints(topo))
    user = topo.cluster.superuser.username
    query = urlencode({"target_session_attrs": target_session_attrs, **(extra or {})})
    return f"postgres://{user}@{hosts}/{dbname}?{query}"


def url_hosts(url: str) -> list[str]:
    """The host addresses of a multi-host URL (postgres:// or jdbc:postgresql://), in order."""
    rest = url.removeprefix("jdbc:")
    netloc = urlsplit(rest).netloc.rpartition("@")[2]
    if not netloc:
        raise ValueError(f"{url!r} names no host")
    return [h.rpartition(":")[0] if ":" in h else h for h in netloc.split(",")]


def guard_hosts(topo: Topology, hosts: Iterable[str], state: lab_state.State | None = None) -> None:
    """The guard's check for every host, before any of them is contacted."""
    state = state or lab_state.load()
    for host in hosts:
        guard.check(host, topo, state)


def connect(topo: Topology, target_session_attrs: str = "read-write", *, timeout: int = 3,
            state: lab_state.State | None = None, extra: dict[str, str] | None = None) -> Any:
    """A psycopg2 connection through the multi-host URL, after the guard passed every host."""
    import psycopg2

    url = libpq_url(topo, target_session_attrs, extra=extra)
    guard_hosts(topo, url_hosts(url), state)
    # connect_timeout applies per host, so a dead first member costs at most `timeout` s.
    from labcore import credentials
    return psycopg2.connect(url, password=credentials.current(topo).superuser["password"],
                            connect_timeout=timeout, application_name="patroni-lab-multihost")


def whoami(conn: Any) -> Landing:
    """Ask the server which address answered and whether it is in recovery."""
    with conn.cursor() as cur:
        cur.execute("select host(inet_server_addr()), pg_is_in_recovery()")
        address, in_recovery = cur.fetchone()
    return Landing(address=address, in_recovery=bool(in_recovery))


def land(topo: Topology, target_session_attrs: str = "read-write", *, timeout: int = 3,
         state: lab_state.State | None = None) -> Landing:
    """Open one connection through the multi-host URL and report where it landed."""
    conn = connect(topo, target_session_attrs, timeout=timeout, state=state)
    try:
        return whoami(conn)
    finally:
        conn.close()
