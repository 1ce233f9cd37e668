"""Member outcomes: what PostgreSQL and the node say, turned into one word with its evidence."""
from __future__ import annotations

import subprocess
from datetime import datetime, timezone

import pytest

from lab.exercises.kit.outcomes import (MemberProbe, NodeAnswer, NodeFacts, Outcome, PgAnswer, classify, node_answer,
                                    node_command)

SINCE = datetime(2026, 12, 1, 0, 10, tzinfo=timezone.utc)
NO_SERVER = NodeAnswer(False, "pg_ctl status: pg_ctl: no server running")


def test_an_answering_member_is_primary_or_replica_with_its_timeline():
    p = classify("pg1", PgAnswer(False, 2, 1000, "t0"), None, None, None, SINCE)
    r = classify("pg2", PgAnswer(True, 2, 900, "t1"), None, None, None, SINCE)
    assert (p.outcome, p.timeline, p.lsn) == (Outcome.PRIMARY, 2, 1000)
    assert (r.outcome, r.timeline) == (Outcome.REPLICA, 2)
    assert p.answers and r.answers


def test_no_postmaster_is_stopped_with_the_nodes_words():
    s = classify("pg3", None, "connection refused", NO_SERVER, None, SINCE)
    assert s.outcome == Outcome.STOPPED
    assert "no server running" in s.evidence and s.error == "connection refused"


def test_a_fencing_since_the_start_is_fenced_one_from_before_is_only_stopped():
    fired_now = NodeAnswer(False, "pg_ctl status: no server running", "fired 2026-12-01T00:11:03Z")
    fired_before = NodeAnswer(False, "pg_ctl status: no server running", "fired 2026-12-01T00:01:00Z")
    f = classify("pg1", None, "connection refused", fired_now, None, SINCE)
    assert f.outcome == Outcome.FENCED and "fired 2026-12-01T00:11:03Z" in f.evidence
    assert classify("pg1", None, "refused", fired_before, None, SINCE).outcome == Outcome.STOPPED


def test_ssh_failing_too_is_unreachable_with_both_errors():
    u = classify("pg1", None, "timeout expired", None, "NoValidConnectionsError: no route", SINCE)
    assert u.outcome == Outcome.UNREACHABLE
    assert "timeout expired" in u.error and "no route" in u.error


def test_a_running_postmaster_that_does_not_answer_is_unreachable_not_stopped():
    u = classify("pg1", None, "the database system is starting up",
                 NodeAnswer(True, "pg_ctl status: server is running (PID: 42)"), None, SINCE)
    assert u.outcome == Outcome.UNREACHABLE and "starting up" in u.error and "PID: 42" in u.evidence


@pytest.mark.parametrize("fencer,rc,expect", [
    ("", 3, NodeAnswer(False, "pg_ctl status: pg_ctl: no server running", "")),
    ("fired 2026-12-01T00:11:03Z", 3,
     NodeAnswer(False, "pg_ctl status: pg_ctl: no server running", "fired 2026-12-01T00:11:03Z")),
    ("armed timeout=25", 0, NodeAnswer(True, "pg_ctl status: pg_ctl: server is running", "armed timeout=25")),
])
def test_the_node_command_runs_in_a_real_shell(tmp_path, fencer, rc, expect):
    """node_command is real shell text: run it with sudo and pg_ctl stand-ins, parse what it prints."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sudo").write_text('#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do [ "$1" = -u ] && shift; shift; done\n'
                                 'exec "$@"\n')
    words = "server is running" if rc == 0 else "no server running"
    (bindir / "pg_ctl").write_text(f"#!/bin/sh\necho 'pg_ctl: {words}'\nexit {rc}\n")
    for f in bindir.iterdir():
        f.chmod(0o755)
    state = tmp_path / "state"
    if fencer:
        state.write_text(fencer + "\n")
    cmd = node_command(str(bindir), "/pgsql/data", str(state))
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, env={"PATH": f"{bindir}:/usr/bin:/bin"})
    assert out.returncode == rc
    assert node_answer(out.returncode, out.stdout) == expect


def test_an_ssh_failure_is_no_node_answer():
    assert node_answer(255, "") is None


class FakeConn:
    def __init__(self, row=None, error=None):
        self.row, self.error, self.closed, self.autocommit = row, error, False, False

    def cursor(self):
        conn = self

        class Cur:
            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False

            def execute(self, sql):
                if conn.error:
                    raise conn.error

            def fetchone(self):
                return conn.row
        return Cur()

    def close(self):
        self.closed = True


def test_the_member_probe_keeps_its_connection_and_asks_the_node_only_when_pg_is_silent():
    facts = {"pg1": NodeFacts("node1", "10.0.0.1", "/bin", "/data", "/run/w/state")}
    conns = [FakeConn(row=(False, 1000, 3, "t0"))]
    ran = []

    def connect(address):
        if not conns:
            raise OSError("connection refused")
        return conns.pop(0)

    def run(node, cmd, timeout):
        ran.append(node)
        return 3, "fired 2026-12-01T00:11:03Z\npg_ctl: no server running\n", ""

    probe = MemberProbe(facts, connect, run, since=SINCE)
    assert probe("pg1").outcome == Outcome.PRIMARY
    assert probe("pg1").timeline == 3            # the same connection, asked twice
    assert ran == []
    probe._conns["pg1"].error = OSError("server closed the connection unexpectedly")
    s = probe("pg1")
    assert s.outcome == Outcome.FENCED and ran == ["node1"]
    assert "server closed" in s.error
    s = probe("pg1")                              # reconnect refused: asks the node again
    assert s.outcome == Outcome.FENCED and s.error == "connection refused"
