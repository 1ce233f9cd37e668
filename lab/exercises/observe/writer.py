"""The application during a drill: numbered rows written through each read-write path.

One thread per path inserts row after row, as applications do:

- ``vip`` and ``haproxy`` keep ONE connection each (Patroni's VIP on PostgreSQL's port,
  haproxy's VIP on its primary port), as a pooled application does: the connection is reused
  until it breaks, then opened again;
- ``vip-per-txn`` opens a new connection through the VIP for every transaction, as a script
  or a serverless function does: it follows the VIP (and its ARP) at once, where a pooled
  connection may stay on the old primary.

Every attempt is logged (lab.exercises.observe.writes.WriteAttempt): when it was sent and answered,
acknowledged or refused, and for an acknowledged write the server that took it (its address,
or for a VIP connection the member whose postmaster started at the time the row returns),
that server's timeline and the WAL position after the row. lab.exercises.observe.writes turns the
logs into the figures: outage per path, time to the surviving timeline, writes acknowledged
after the fork, RTO.

A commit that waited for a synchronous standby and was cancelled by the client's bound is
committed locally but was never acknowledged to the client as durable: it is logged as
refused with ``sync_cancelled``, not as acknowledged.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from lab.exercises.kit.sql import cancel_after, first_line
from lab.exercises.observe.writes import WriteAttempt

TABLE = "lab_drill_writes"
CADENCE_S = 0.2          # one attempt per path every 0.2 s (plus the commit's own time)

# The row, and who took it: the server's address, its postmaster's start time (which member,
# when the address is a VIP), its timeline (from the current WAL file's name: right after a
# promotion too) and the WAL insert position after the row.
INSERT = (f"INSERT INTO {TABLE} (id, path) VALUES (%s, %s) RETURNING host(inet_server_addr()), "
          "pg_postmaster_start_time()::text, "
          "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int, "
          "(pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint")


@dataclass(frozen=True)
class WritePath:
    name: str
    address: str
    port: int
    persistent: bool = True     # one connection kept; False: a new connection per transaction


class PathLog:
    """Every attempt on one path, in order (appended by that path's thread only)."""

    def __init__(self, path: WritePath) -> None:
        self.path = path
        self.attempts: list[WriteAttempt] = []

    @property
    def name(self) -> str:
        return self.path.name


Connector = Callable[[str, int], Any]            # (address, port) -> DB-API connection
Identify = Callable[[str | None, str | None], str | None]   # (server address, postmaster start) -> member


class Writer:
    """Background writers, one per path; ``start()``, ``stop()``, then read the logs."""

    def __init__(self, paths: list[WritePath | tuple], connect: Connector, *,
                 interval: float = CADENCE_S, clock: Callable[[], float] = time.monotonic,
                 commit_timeout: float = 3.0, identify: Identify | None = None,
                 on_attempt: Callable[[WriteAttempt], None] | None = None) -> None:
        paths = [p if isinstance(p, WritePath) else WritePath(*p) for p in paths]
        self.logs = {p.name: PathLog(p) for p in paths}
        self.connect = connect
        self.interval = interval
        self.clock = clock
        self.commit_timeout = commit_timeout
        self.identify = identify or (lambda address, started: None)
        self.on_attempt = on_attempt
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def prepare(self, conn) -> None:
        """Create (or empty) the table through a read-write path before the drill starts."""
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} "
                        "(id bigint PRIMARY KEY, path text NOT NULL, at timestamptz DEFAULT now())")
            cur.execute(f"TRUNCATE {TABLE}")

    def start(self) -> None:
        for log in self.logs.values():
            t = threading.Thread(target=self._loop, args=(log,), name=f"writer-{log.name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)
        self._threads.clear()

    def write_once(self, log: PathLog, conn) -> Any:
        """One insert; returns the connection to keep using (None to reconnect)."""
        row = self.next_id()
        start = self.clock()
        try:
            if conn is None:
                conn = self.connect(log.path.address, log.path.port)
                conn.autocommit = True
            del conn.notices[:]
            with conn.cursor() as cur:
                cancel_after(conn, self.commit_timeout, cur.execute, INSERT, (row, log.name))
                got = cur.fetchone() if cur.description else None
            address, started, timeline, lsn = got if got else (None, None, None, None)
            cancelled = any("synchronous replication" in n for n in conn.notices)
            self._log(log, WriteAttempt(log.name, row, start, self.clock(), not cancelled,
                                        self.identify(address, started), timeline, lsn,
                                        "sync wait cancelled" if cancelled else None, cancelled, address, started))
        except Exception as e:
            self._log(log, WriteAttempt(log.name, row, start, self.clock(), False, error=first_line(e)))
            _close(conn)
            return None
        if not log.path.persistent:
            _close(conn)
            return None
        return conn

    def _log(self, log: PathLog, attempt: WriteAttempt) -> None:
        log.attempts.append(attempt)
        if self.on_attempt is not None:
            self.on_attempt(attempt)

    def _loop(self, log: PathLog) -> None:
        conn = None
        while not self._stop.is_set():
            conn = self.write_once(log, conn)
            self._stop.wait(self.interval)
        _close(conn)

    def attempts(self) -> list[WriteAttempt]:
        """Every attempt; a server not identified when the write returned (a postmaster the watch had not
        seen yet) is identified again now."""
        out = []
        for log in self.logs.values():
            for a in log.attempts:
                if a.server is None and (a.server_address or a.server_started):
                    a = replace(a, server=self.identify(a.server_address, a.server_started))
                out.append(a)
        return out

    def all_paths_writing(self) -> bool:
        """Every path's latest attempt was acknowledged (the application is back on every path)."""
        return all(log.attempts and log.attempts[-1].ok for log in self.logs.values())

    def acknowledged(self) -> list[int]:
        return sorted(a.id for a in self.attempts() if a.ok)


def _close(conn: Any) -> None:
    if conn is None:
        return
    try:
        conn.close()
    except Exception:
        pass


def ids_present(conn, ids: list[int]) -> set[int]:
    """Which of ``ids`` exist in the table on ``conn`` (the current primary)."""
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"SELECT id FROM {TABLE} WHERE id = ANY(%s)", (ids,))
        return {r[0] for r in cur.fetchall()}


def surviving_history(conn) -> tuple[int, str]:
    """The final primary's timeline and its history file's text ('' on timeline 1, which has none).
    Read with pg_read_file (the lab connects as the superuser), relative to the data directory."""
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int")
        timeline = int(cur.fetchone()[0])
        if timeline == 1:
            return 1, ""
        cur.execute("SELECT pg_read_file(%s)", (f"pg_wal/{timeline:08X}.history",))
        return timeline, cur.fetchone()[0]
