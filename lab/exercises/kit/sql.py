"""SQL on the lab: one way to open (and always close) a connection, one client-side statement bound,
and small read-only questions asked on one node's own address (never through a VIP)."""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from labcore import remote
from labcore.topology import Topology

CANCEL_BOUND_S = 15          # a cancel request that has not gone out by then is given up


@contextmanager
def connection(topo: Topology, address: str, port: int | None = None, *, timeout: int = 3,
               statement_timeout_ms: int | None = 5000) -> Iterator[Any]:
    """An autocommit connection to a lab address as the superuser, closed on the way out.
    Connecting may raise (the caller decides what "no answer" means)."""
    kw = {"options": f"-c statement_timeout={statement_timeout_ms}"} if statement_timeout_ms else {}
    conn = remote.pg_connect(topo, address, port, timeout=timeout, **kw)
    try:
        conn.autocommit = True
        yield conn
    finally:
        conn.close()


def cancel_after(conn: Any, seconds: float, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` on ``conn`` and send a cancel request if it takes longer than ``seconds``.
    statement_timeout does not cover the wait for a synchronous standby at commit (PostgreSQL stops
    the timer before committing), so a client-side cancel is the only bound; the cancelled commit
    returns with a WARNING: committed locally, never acknowledged as replicated."""
    timer = threading.Timer(seconds, cancel_from_a_child, args=(conn,))
    timer.start()
    try:
        return fn(*args)
    finally:
        timer.cancel()


def cancel_from_a_child(conn: Any) -> None:
    """``conn.cancel()``, sent from a short-lived child process. psycopg2 runs libpq's PQcancel without
    releasing the GIL: when the server's address has become unreachable (a VIP that moved or vanished),
    its connect() blocks for seconds and every thread of the process stops with it (seen: the drills'
    watch and writers froze for 7 s). The child has a copy of the connection's cancel key; the parent
    waits for it with the GIL released. The child exits at once (os._exit: nothing of the parent's is
    closed or flushed there) and is killed by an alarm if the request hangs."""
    if not hasattr(os, "fork"):
        conn.cancel()
        return
    pid = os.fork()
    if pid == 0:                          # the child: one request, no cleanup of the parent's state
        code = 1
        try:
            signal.alarm(CANCEL_BOUND_S)
            conn.cancel()
            code = 0
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def query(topo: Topology, node: str, sql: str, params: tuple = (), *, timeout: int = 3,
          address: str | None = None, port: int | None = None,
          statement_timeout_ms: int = 5000) -> list[tuple] | None:
    """Rows of ``sql`` on ``node`` (or on ``address``:``port``); None if it does not answer."""
    addr = address or topo.node(node).address
    try:
        with connection(topo, addr, port, timeout=timeout, statement_timeout_ms=statement_timeout_ms) as conn:
            with conn.cursor() as cur:
                # No parameters: send the text as it is. With an empty tuple the driver still reads
                # every '%' as a placeholder, and a LIKE '%x' query fails (and reads as no answer).
                cur.execute(sql, params or None)
                return cur.fetchall() if cur.description else []
    except Exception:
        return None


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
