"""Small read-only SQL questions asked on one node's own address (never through a VIP)."""
from __future__ import annotations

from typing import Any

from lab import remote
from lab.topology import Topology


def query(topo: Topology, node: str, sql: str, params: tuple = (), *, timeout: int = 3,
          address: str | None = None, port: int | None = None) -> list[tuple] | None:
    """Rows of ``sql`` on ``node`` (or on ``address``:``port``); None if it does not answer."""
    addr = address or topo.node(node).address
    try:
        conn = remote.pg_connect(topo, addr, port, timeout=timeout,
                                 options="-c statement_timeout=5000")
    except Exception:
        return None
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    except Exception:
        return None
    finally:
        conn.close()


def scalar(topo: Topology, node: str, sql: str, params: tuple = (), **kw: Any) -> Any:
    rows = query(topo, node, sql, params, **kw)
    return rows[0][0] if rows else None


def setting(topo: Topology, node: str, name: str) -> str | None:
    return scalar(topo, node, "SELECT current_setting(%s)", (name,))


def downstream(topo: Topology, node: str) -> list[str] | None:
    """application_name of every walsender on ``node`` (Patroni sets it to the member name)."""
    rows = query(topo, node, "SELECT application_name FROM pg_stat_replication")
    return None if rows is None else sorted(r[0] for r in rows)


def upstream_host(topo: Topology, node: str) -> str | None:
    """The host this node's WAL receiver streams from (pg_stat_wal_receiver.sender_host)."""
    return scalar(topo, node, "SELECT sender_host FROM pg_stat_wal_receiver WHERE status = 'streaming'")


def whoami(topo: Topology, address: str, port: int | None = None, *, timeout: int = 3) -> tuple[str, bool] | None:
    """(inet_server_addr, pg_is_in_recovery) of the server answering on address:port."""
    rows = query(topo, "", "SELECT host(inet_server_addr()), pg_is_in_recovery()",
                 address=address, port=port, timeout=timeout)
    return (rows[0][0], bool(rows[0][1])) if rows else None
