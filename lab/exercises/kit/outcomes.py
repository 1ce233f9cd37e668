"""What a member is, right now: one vocabulary for every drill and for the watch.

A member's outcome is exactly one of

- ``primary``: its PostgreSQL answers on the member's own address and is not in recovery;
- ``replica``: it answers and is in recovery (what the article calls "demoted");
- ``stopped``: it does not answer and the node says no postmaster runs there;
- ``fenced``: stopped, and the node's fencing watchdog fired since the observation began
  (its state line is the evidence; on a VM the watchdog resets the machine instead, which
  shows as ``unreachable`` until it is back);
- ``unreachable``: no answer, and the node could not tell why (ssh failed or timed out, or a
  postmaster runs but refuses or ignores connections); the errors are kept.

"Not primary" is never an outcome: a drill that claims a demotion expects ``replica``.
Telling ``stopped`` from ``unreachable`` needs a second channel: when PostgreSQL does not
answer, one ssh command asks the node whether a postmaster runs (``pg_ctl status``) and
what its fencing service last did. A node that cannot answer that either is unreachable.

Besides the outcome, a member that answers reports its timeline and WAL position (cheaply:
the primary's timeline is the first 8 hex digits of its current WAL file name, which
follows a promotion at once, unlike ``pg_control_checkpoint()``), and its postmaster's
start time, which identifies the server instance that acknowledged a write.
"""
from __future__ import annotations

import shlex
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Callable

from labcore import remote
from lab.exercises.kit.sql import first_line


class Outcome(StrEnum):
    PRIMARY = "primary"
    REPLICA = "replica"
    STOPPED = "stopped"
    FENCED = "fenced"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class MemberState:
    member: str
    outcome: Outcome
    timeline: int | None = None
    lsn: int | None = None            # primary: WAL insert position; replica: replay position (bytes)
    lag_bytes: int | None = None      # replica behind the one primary seen in the same cycle (the watch fills it)
    error: str | None = None          # why it did not answer
    evidence: str | None = None       # what the node said: "pg_ctl: no server running", the fencer's state line
    started: str | None = None        # pg_postmaster_start_time(): which server instance answered

    @property
    def answers(self) -> bool:
        return self.outcome in (Outcome.PRIMARY, Outcome.REPLICA)

    def event(self) -> dict[str, Any]:
        """The member's entry of a ``sample`` event (see lab.exercises.observe.evidence)."""
        d = asdict(self)
        d.pop("member")
        d["outcome"] = str(self.outcome)
        return d


@dataclass(frozen=True)
class PgAnswer:
    in_recovery: bool
    timeline: int | None
    lsn: int | None
    started: str | None


@dataclass(frozen=True)
class NodeAnswer:
    postmaster: bool          # a postmaster runs for the member's data directory
    detail: str               # pg_ctl status's own words
    fencer: str = ""          # the fencing service's state line ("armed ...", "fired <iso>"), '' where none


def fired_at(fencer: str) -> datetime | None:
    """When the fencing service fired, from its state line "fired 2026-12-01T00:10:00Z"."""
    if not fencer.startswith("fired"):
        return None
    try:
        return datetime.fromisoformat(fencer.split()[-1].replace("Z", "+00:00"))
    except ValueError:
        return None


def classify(member: str, pg: PgAnswer | None, pg_error: str | None, node: NodeAnswer | None,
             node_error: str | None, since: datetime | None) -> MemberState:
    """The outcome from what PostgreSQL said and, when it said nothing, what the node said.
    ``since``: fencing that happened before it (an earlier drill) does not make a member fenced."""
    if pg is not None:
        return MemberState(member, Outcome.REPLICA if pg.in_recovery else Outcome.PRIMARY,
                           timeline=pg.timeline, lsn=pg.lsn, started=pg.started)
    if node is None:
        return MemberState(member, Outcome.UNREACHABLE,
                           error=f"{pg_error or 'no answer'}; node: {node_error or 'no answer'}")
    if node.postmaster:
        return MemberState(member, Outcome.UNREACHABLE, error=pg_error or "no answer",
                           evidence=f"a postmaster runs: {node.detail}")
    fired = fired_at(node.fencer)
    if fired is not None and (since is None or fired >= since):
        return MemberState(member, Outcome.FENCED, error=pg_error,
                           evidence=f"fencing watchdog: {node.fencer}; {node.detail}")
    return MemberState(member, Outcome.STOPPED, error=pg_error, evidence=node.detail)


# The member's own view in one round trip. The primary's timeline comes from its WAL file name
# (the insertion timeline, right after a promotion); a replica's from its WAL receiver, or from
# its last restartpoint when it does not stream.
MEMBER_SQL = """
SELECT pg_is_in_recovery(),
       (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END
        - '0/0'::pg_lsn)::bigint,
       CASE WHEN pg_is_in_recovery()
            THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver),
                          (SELECT timeline_id FROM pg_control_checkpoint()))
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
       pg_postmaster_start_time()::text
"""


def pg_answer(row: tuple) -> PgAnswer:
    in_recovery, lsn, timeline, started = row
    return PgAnswer(bool(in_recovery), None if timeline is None else int(timeline),
                    None if lsn is None else int(lsn), started)


def node_command(bin_dir: str, data_dir: str, fencer_state: str | None) -> str:
    """One ssh command: does a postmaster run for the data directory, and what did the fencer last do.
    Prints the fencer's line first (or '-') and pg_ctl's answer after it; exits with pg_ctl's code
    (0 running, 3 not running, 4 no data directory)."""
    fencer = f"sudo -n cat {shlex.quote(fencer_state)} 2>/dev/null | head -n1" if fencer_state else "true"
    status = f"sudo -n -u postgres {shlex.quote(bin_dir)}/pg_ctl status -D {shlex.quote(data_dir)}"
    return f"{{ {fencer}; }} | grep . || echo -; out=$({status} 2>&1); rc=$?; echo \"$out\" | head -n1; exit $rc"


def node_answer(rc: int, stdout: str) -> NodeAnswer | None:
    """Parse :func:`node_command`'s output; None when the command itself did not run (ssh failed)."""
    if rc not in (0, 3, 4):
        return None
    lines = stdout.strip().splitlines()
    fencer = lines[0].strip() if lines else "-"
    detail = lines[1].strip() if len(lines) > 1 else ""
    return NodeAnswer(postmaster=rc == 0, detail=f"pg_ctl status: {detail or f'exit {rc}'}",
                      fencer="" if fencer == "-" else fencer)


@dataclass(frozen=True)
class NodeFacts:
    """What the node check needs to know about a member's node (read once, before any fault)."""
    node: str
    address: str
    bin_dir: str
    data_dir: str
    fencer_state: str | None


class MemberProbe:
    """Asks one member for its outcome over the member's own connection, and its node over ssh
    when PostgreSQL does not answer. Keeps one connection per member (reconnects after an error),
    so a probe costs one round trip. Callers must not probe the same member from two threads at
    once (the watch guarantees it; drills use their own MemberProbe)."""

    def __init__(self, facts: dict[str, NodeFacts], connect: Callable[[str], Any],
                 run: Callable[[str, str, float], tuple[int, str, str]], *, since: datetime | None = None,
                 ssh_timeout: float = 5.0) -> None:
        self.facts = facts          # member -> NodeFacts
        self.connect = connect      # address -> DB-API connection (autocommit is set here)
        self.run = run              # (node, command, timeout) -> (rc, stdout, stderr)
        self.since = since
        self.ssh_timeout = ssh_timeout
        self._conns: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, member: str) -> MemberState:
        f = self.facts[member]
        try:
            answer, pg_error = self._ask_pg(member, f.address), None
        except Exception as e:
            answer, pg_error = None, first_line(e)
        if answer is not None:
            return classify(member, answer, None, None, None, self.since)
        rc, out, err = self.run(f.node, node_command(f.bin_dir, f.data_dir, f.fencer_state), self.ssh_timeout)
        node = node_answer(rc, out)
        ssh_error = (err.strip().splitlines() or [f"exit {rc}"])[-1]
        return classify(member, None, pg_error, node, None if node else ssh_error, self.since)

    def _ask_pg(self, member: str, address: str) -> PgAnswer:
        with self._lock:
            conn = self._conns.pop(member, None)
        try:
            if conn is None:
                conn = self.connect(address)
                conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(MEMBER_SQL)
                answer = pg_answer(cur.fetchone())
        except Exception:
            if conn is not None:
                _close(conn)
            raise
        with self._lock:
            self._conns[member] = conn
        return answer

    def close(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        for c in conns:
            _close(c)


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        pass


def lab_member_probe(topo: Any, facts: Any, shell: Any, *, since: datetime | None,
                     members: list[str] | None = None) -> MemberProbe:
    """A MemberProbe for the lab's members: facts (bin_dir, data_dir, the fencer's state file) read
    now from each node (``facts``: lab.exercises.kit.facts.Facts), PostgreSQL asked on each member's
    own address with tight bounds, the node over ``shell`` (lab.exercises.kit.shell.Shell)."""
    names = members or [n.member for n in topo.postgres_nodes]
    node_facts = {}
    for m in names:
        n = topo.node(m)
        node_facts[m] = NodeFacts(n.name, n.address, facts.bin_dir(n.name), facts.data_dir(n.name),
                                  facts.fencer_state_file(n.name))

    def connect(address: str) -> Any:
        return remote.pg_connect(topo, address, timeout=2, options="-c statement_timeout=2000",
                                 tcp_user_timeout=2000, keepalives=1, keepalives_idle=2, keepalives_interval=1,
                                 keepalives_count=2)

    def run(node: str, command: str, timeout: float) -> tuple[int, str, str]:
        out = shell.run(node, command, timeout=timeout)
        return out.rc, out.stdout, out.stderr

    return MemberProbe(node_facts, connect, run, since=since)
