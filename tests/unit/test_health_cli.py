"""`invoke status --check`, `invoke heal` and `invoke status --watch` without a lab: the gate and
its repair are faked, the command's side (lines, exit codes, what heal says) is real."""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import pytest
from invoke import Context, Exit
from rich.console import Console

from lab.cli import health, watch
from lab.cli.machines import status
from lab.status import Section


@dataclass
class F:
    check: str
    ok: bool
    detail: str


HEALTHY = [F("etcd healthy", True, "1 member(s) healthy"), F("one leader", True, "leaders: pg1"),
           F("replicas streaming", True, "2 streaming")]
REPLICA_DOWN = [HEALTHY[0], HEALTHY[1], F("replicas streaming", False, "not streaming: pg3=stopped")]


class FakeRecovery:
    def __init__(self, now, after=None, actions=("started Patroni on pg3",)):
        self.now, self.after, self.actions = now, after, list(actions)
        self.repaired = False
        self.waited: float | None = None

    def findings(self):
        return self.now

    def repair(self):
        self.repaired = True
        return self.actions

    def wait_healthy(self, within):
        self.waited = within
        return not health.off_baseline(self.after), self.after


@pytest.fixture
def provisioned(monkeypatch):
    monkeypatch.setattr(health, "provisioned_topology", lambda action="": "topo")


def test_check_is_silent_and_zero_on_the_baseline(provisioned, capsys):
    health.check(lambda topo: FakeRecovery(REPLICA_DOWN, after=HEALTHY))     # a blip, gone on the next read
    assert capsys.readouterr().out.startswith("healthy: 3 checks")


def test_check_names_each_finding_on_its_own_line_and_exits_one(provisioned):
    found = REPLICA_DOWN + [F("VIP read_only held once", False, "192.168.242.211 held by nobody")]
    rec = FakeRecovery(found, after=found)
    with pytest.raises(Exit) as e:
        health.check(lambda topo: rec)
    assert rec.waited == health.CONFIRM_WITHIN and not rec.repaired     # confirmed, never repaired
    assert e.value.code == 1
    assert e.value.message.splitlines() == ["replicas streaming: not streaming: pg3=stopped",
                                            "VIP read_only held once: 192.168.242.211 held by nobody"]


def test_heal_repairs_only_a_lab_off_its_baseline():
    rec = FakeRecovery(HEALTHY)
    h = health.heal_lab(rec)
    assert h.ok and not rec.repaired and h.lines()[0].startswith("nothing to heal")


def test_heal_says_what_it_found_did_and_fixed():
    rec = FakeRecovery(REPLICA_DOWN, after=HEALTHY)
    h = health.heal_lab(rec, within=30)
    assert h.ok and rec.repaired and rec.waited == 30
    assert h.lines() == ["found: replicas streaming: not streaming: pg3=stopped",
                         "did: started Patroni on pg3",
                         "fixed: replicas streaming: 2 streaming"]


def test_heal_that_could_not_reach_the_baseline_exits_non_zero(monkeypatch, provisioned):
    rec = FakeRecovery(REPLICA_DOWN, after=REPLICA_DOWN)
    monkeypatch.setattr(health, "LabRecovery", lambda topo: rec)
    with pytest.raises(Exit) as e:
        health.heal(Context())
    assert e.value.code == 1
    assert "still: replicas streaming: not streaming: pg3=stopped" in e.value.message


def test_check_and_heal_refuse_a_lab_that_is_not_up(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path / "lab"))
    for call in (lambda: status(Context(), check=True), lambda: health.heal(Context())):
        with pytest.raises(Exit) as e:
            call()
        assert e.value.code == 2 and "invoke up" in e.value.message
    assert not (tmp_path / "lab").exists()


def test_watch_redraws_each_frame_from_a_fresh_read():
    reads = []

    def collect():
        reads.append(len(reads))
        return [Section("patroni", ["member", "role"], [["pg1", "leader"], ["pg2", f"replica {len(reads)}"]])]

    out = io.StringIO()
    drawn = watch.watch(collect, Console(file=out, width=100, force_terminal=False), interval=0.01, frames=3)
    text = out.getvalue()
    assert drawn == 3 and len(reads) == 3
    assert "replica 1" in text and "replica 3" in text and text.count("Ctrl-C to stop") == 3


def test_watch_stops_when_told_and_a_failing_section_shows_its_error():
    stop = threading.Event()
    stop.set()

    def broken(topo, st):
        raise TimeoutError("node2 did not answer")

    sec = watch._safe(broken, None, None)
    out = io.StringIO()
    drawn = watch.watch(lambda: [sec], Console(file=out, width=100), interval=5, stop=stop)
    assert drawn == 1 and "TimeoutError: node2 did not answer" in out.getvalue()


class StaleProbe:
    """Patroni still says pg3 streams (its loop has not run yet), but pg3's PostgreSQL is stopped."""

    def __init__(self, pg3_answers: bool, pg2_history: int = 1, pending: tuple[str, ...] = ()) -> None:
        from test_provision_support import topology
        self.topo = topology()
        self.pg3_answers = pg3_answers
        self.pg2_history = pg2_history           # the newest timeline history in pg2's pg_wal
        self.pending = pending                   # members Patroni flags pending restart

    def forked_replicas(self, leader, replicas):
        return {"pg2": (self.pg2_history, 1)} if "pg2" in replicas and self.pg2_history > 1 else {}

    def etcd_healthy(self):
        return {"node4": True}

    def members(self):
        return [{"name": m, "role": role, "state": state, **({"pending_restart": True} if m in self.pending else {})}
                for m, role, state in (("pg1", "leader", "running"), ("pg2", "replica", "streaming"),
                                       ("pg3", "replica", "streaming"))]

    def primaries(self):
        return ["pg1"]

    def in_recovery(self, member):
        return None if member == "pg3" and not self.pg3_answers else member != "pg1"

    def vip_holders(self):
        return {"read_write": ["node1"], "read_only": ["node2"], "haproxy": ["node1"]}


def test_the_gate_asks_postgresql_itself_not_only_patroni():
    from lab.exercises.run import health as gate

    assert health.off_baseline(gate.findings(StaleProbe(pg3_answers=True))) == []
    assert health.off_baseline(gate.findings(StaleProbe(pg3_answers=False))) == [
        "PostgreSQL answers on every member: no answer from: pg3"]


def test_a_member_pending_restart_is_off_the_baseline():
    """max_connections put back in the DCS by hand runs its old value until a restart: streaming
    members that Patroni flags pending restart are not the baseline a drill starts from."""
    from lab.exercises.run import health as gate

    assert health.off_baseline(gate.findings(StaleProbe(pg3_answers=True, pending=("pg1", "pg3")))) == [
        "no member pending restart: pending restart: pg1, pg3"]


def test_the_gate_sees_a_replica_that_streams_but_holds_a_newer_timeline():
    """A replica promoted by hand and demoted before any rewind streams today and refuses its leader at the
    next reconnect: the baseline does not hold while its history is ahead of the leader's timeline."""
    from lab.exercises.run import health as gate

    assert health.off_baseline(gate.findings(StaleProbe(pg3_answers=True, pg2_history=2))) == [
        "replicas on the leader's timeline: pg2 holds timeline 2's history, the leader is on 1"]


def test_a_replica_whose_history_cannot_be_read_is_not_called_on_the_leaders_timeline():
    """No answer is not "no fork": the real Probe lists the replica as unknown, the gate says so, and
    the repair does not rebuild it for that alone."""
    from lab.exercises.run import health as gate
    from lab.exercises.kit.probe import Probe

    probe = object.__new__(Probe)
    history = {"pg2": None, "pg3": 1}
    probe.history_timeline = history.get
    probe.current_timeline = lambda member: 1
    assert probe.forked_replicas("pg1", ["pg2", "pg3"]) == {"pg2": (None, 1)}
    probe.current_timeline = lambda member: None
    assert probe.forked_replicas("pg1", ["pg3"]) == {"pg3": (1, None)}

    stale = StaleProbe(pg3_answers=True)
    stale.forked_replicas = lambda leader, replicas: {"pg2": (None, 1)}
    assert health.off_baseline(gate.findings(stale)) == [
        "replicas on the leader's timeline: pg2: its timeline history could not be read"]
