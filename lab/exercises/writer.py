"""The application during a drill: numbered rows written through each read-write path.

One thread per path (Patroni's VIP on PostgreSQL's port, haproxy's VIP on its
primary port) inserts row after row and records which ids the server
acknowledged. From that record come the drill's two data numbers:

- RTO per path: seconds from the fault to the first acknowledged write after
  the outage it caused (0 when the path never failed);
- lost writes: acknowledged ids missing on the primary after the drill.

A commit that waited for a synchronous standby and was cancelled by the
statement timeout is committed locally but was never acknowledged to the
client as durable: it is counted apart ("sync_cancelled"), not as acknowledged.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from lab.exercises.kit.sql import cancel_after

TABLE = "lab_drill_writes"


@dataclass
class Attempt:
    at: float          # monotonic seconds
    ok: bool
    id: int
    error: str = ""


@dataclass
class PathLog:
    name: str
    address: str
    port: int
    attempts: list[Attempt] = field(default_factory=list)
    acknowledged: list[int] = field(default_factory=list)
    sync_cancelled: list[int] = field(default_factory=list)

    def outages(self, since: float) -> list[tuple[float, float | None]]:
        """(start, end) of each run of failed attempts after ``since``; end None = never recovered."""
        out: list[tuple[float, float | None]] = []
        start = None
        for a in self.attempts:
            if a.at < since:
                continue
            if not a.ok and start is None:
                start = a.at
            elif a.ok and start is not None:
                out.append((start, a.at))
                start = None
        if start is not None:
            out.append((start, None))
        return out

    def rto(self, since: float) -> float | None:
        """Seconds from ``since`` (the fault) to the end of the first outage after it.
        0.0 if the path never failed; None if it failed and never came back."""
        outs = self.outages(since)
        if not outs:
            return 0.0
        end = outs[0][1]
        return None if end is None else round(end - since, 2)


Connector = Callable[[str, int], Any]   # (address, port) -> DB-API connection


class Writer:
    """Background writers, one per path; ``start()``, ``stop()``, then read the logs."""

    def __init__(self, paths: list[tuple[str, str, int]], connect: Connector, *,
                 interval: float = 0.2, clock: Callable[[], float] = time.monotonic,
                 commit_timeout: float = 3.0) -> None:
        self.commit_timeout = commit_timeout
        self.logs = {name: PathLog(name, addr, port) for name, addr, port in paths}
        self.connect = connect
        self.interval = interval
        self.clock = clock
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
        try:
            if conn is None:
                conn = self.connect(log.address, log.port)
                conn.autocommit = True
            del conn.notices[:]
            with conn.cursor() as cur:
                cancel_after(conn, self.commit_timeout, cur.execute,
                             f"INSERT INTO {TABLE} (id, path) VALUES (%s, %s)", (row, log.name))
            if any("synchronous replication" in n for n in conn.notices):
                log.sync_cancelled.append(row)
                log.attempts.append(Attempt(self.clock(), False, row, "sync wait cancelled"))
                return conn
            log.acknowledged.append(row)
            log.attempts.append(Attempt(self.clock(), True, row))
            return conn
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            log.attempts.append(Attempt(self.clock(), False, row, msg))
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass
            return None

    def _loop(self, log: PathLog) -> None:
        conn = None
        while not self._stop.is_set():
            conn = self.write_once(log, conn)
            self._stop.wait(self.interval)
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def all_paths_writing(self) -> bool:
        """Every path's latest attempt was acknowledged (the application is back on every path)."""
        return all(log.attempts and log.attempts[-1].ok for log in self.logs.values())

    def acknowledged(self) -> list[int]:
        return sorted(i for log in self.logs.values() for i in log.acknowledged)

    def missing(self, present: set[int]) -> list[int]:
        """Acknowledged ids not found among ``present`` (the ids on the primary after the drill)."""
        return [i for i in self.acknowledged() if i not in present]


def ids_present(conn, ids: list[int]) -> set[int]:
    """Which of ``ids`` exist in the table on ``conn`` (the current primary)."""
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"SELECT id FROM {TABLE} WHERE id = ANY(%s)", (ids,))
        return {r[0] for r in cur.fetchall()}
