"""The runner without machines: a fake lab, a scripted trainee, the writer's accounting, the watch."""
from __future__ import annotations

import json

import pytest

from lab.exercises.kit import actions as F
from lab.exercises.console import ScriptedConsole
from lab.exercises import Drill, Lab, run_drill
from lab.exercises.monitor import SplitBrainWatch
from lab.exercises.kit.shell import Output
from lab.exercises.writer import Writer
from labcore.topology import load

from fake_clock import FakeClock


class FakeCluster:
    """A healthy three-member cluster whose Patroni on node2 can be stopped by a shell command."""

    def __init__(self, topo) -> None:
        self.topo = topo
        self.patroni_running = {n.name: True for n in topo.postgres_nodes}
        self.commands: list[tuple[str, str]] = []

    # the Shell protocol
    def run(self, node: str, command: str, timeout: float = 60) -> Output:
        self.commands.append((node, command))
        if command == "sudo systemctl stop patroni":
            self.patroni_running[node] = False
        elif command == "sudo systemctl start patroni":
            self.patroni_running[node] = True
        elif command.startswith("systemctl is-active patroni"):
            return Output(0 if self.patroni_running[node] else 3,
                          "active" if self.patroni_running[node] else "inactive")
        return Output(0, "")

    # the Probe surface the runner and the health gate use
    def etcd_healthy(self):
        return {n.name: True for n in self.topo.etcd_nodes}

    def members(self):
        out = []
        for i, n in enumerate(self.topo.postgres_nodes):
            if self.patroni_running[n.name]:
                out.append({"name": n.member, "role": "leader" if i == 0 else "replica",
                            "state": "running" if i == 0 else "streaming"})
        return out

    def leader(self):
        return self.topo.postgres_nodes[0].member

    def replicas(self):
        return [n.member for n in self.topo.postgres_nodes[1:]]

    def streaming(self, member):
        return self.patroni_running[self.topo.node(member).name]

    def primaries(self):
        return [self.leader()]

    def in_recovery(self, member):
        return member != self.leader() if self.patroni_running[self.topo.node(member).name] else None

    def vip_holders(self):
        return {"read_write": ["node1"], "read_only": ["node2"], "haproxy": ["node1"]}

    def dynamic_config(self):
        return {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}


class StopAReplica(Drill):
    name = "test-stop-a-replica"
    section = "§5 table, row 2"
    summary = "test drill"
    story = "Stop Patroni on a replica; its PostgreSQL stops."
    expected = "it stops"
    differs = "none"
    writes = False

    def run(self, lab: Lab) -> None:
        replica = lab.replicas()[0]
        lab.inject(F.stop_patroni(lab.facts, replica))
        lab.expect(lambda: lab.probe.in_recovery(replica) is None, f"PostgreSQL on {replica} is down", within=30)
        lab.undo()
        lab.expect(lambda: lab.probe.streaming(replica), f"{replica} streams again", within=60)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    monkeypatch.setenv("LAB_LANG", "en")     # these tests read the English screens, whatever the host's locale
    return FakeCluster(load())


def make_lab(fake, console, tmp_path, auto):
    return Lab(fake.topo, auto=auto, console=console, clock=FakeClock(), shell=fake, probe=fake,
               results_dir=tmp_path / "drills")


def test_guided_drill_waits_for_the_trainee_who_injects_by_hand(fake, tmp_path):
    shown_commands: list[tuple[str, str]] = []

    def trainee(text: str) -> None:
        # A person reads the command and the node from the screen and types it there.
        if "$ sudo systemctl stop patroni" in text:
            node = text.split("on ", 1)[1].split(":", 1)[0].strip()
            shown_commands.append((node, "sudo systemctl stop patroni"))
        if "Type it on the node now" in text:
            node, cmd = shown_commands[-1]
            fake.run(node, cmd)

    console = ScriptedConsole(on_show=trainee)
    res = run_drill(StopAReplica, make_lab(fake, console, tmp_path, auto=False),
                    watch=SplitBrainWatch(fake.primaries, None, interval=0.01))
    assert res.passed, res.reason
    assert res.mode == "guided"
    assert shown_commands == [("node2", "sudo systemctl stop patroni")]
    assert len(console.pauses) >= 3        # story, undo, restore
    assert ("node2", "sudo systemctl start patroni") in fake.commands
    saved = json.loads((tmp_path / "drills" / "test-stop-a-replica.json").read_text())
    assert saved["verdict"] == "pass" and saved["checks"][0]["ok"]


def test_guided_drill_lets_the_trainee_say_go(fake, tmp_path):
    console = ScriptedConsole(answers=["go"])
    res = run_drill(StopAReplica, make_lab(fake, console, tmp_path, auto=False),
                    watch=SplitBrainWatch(fake.primaries, None, interval=0.01))
    assert res.passed, res.reason
    assert ("node2", "sudo systemctl stop patroni") in fake.commands


def test_auto_drill_injects_itself_and_never_pauses(fake, tmp_path):
    console = ScriptedConsole()
    res = run_drill(StopAReplica, make_lab(fake, console, tmp_path, auto=True),
                    watch=SplitBrainWatch(fake.primaries, None, interval=0.01))
    assert res.passed and console.pauses == []


def test_an_unmet_expectation_fails_the_drill_and_still_restores(fake, tmp_path):
    class NeverComesBack(StopAReplica):
        def run(self, lab):
            lab.inject(F.stop_patroni(lab.facts, lab.replicas()[0]))
            lab.expect(lambda: False, "something impossible", within=5)

    res = run_drill(NeverComesBack, make_lab(fake, ScriptedConsole(), tmp_path, auto=True),
                    watch=SplitBrainWatch(fake.primaries, None, interval=0.01))
    assert res.verdict == "fail" and "something impossible" in res.reason
    assert fake.patroni_running["node2"], "restore must undo the fault"
    assert res.gate_after and all(f["ok"] for f in res.gate_after)


def test_a_lab_not_at_baseline_is_refused_before_anything_is_touched(fake, tmp_path):
    fake.patroni_running["node3"] = False
    res = run_drill(StopAReplica, make_lab(fake, ScriptedConsole(), tmp_path, auto=True),
                    watch=SplitBrainWatch(fake.primaries, None, interval=0.01))
    assert res.verdict == "fail" and "nothing was touched" in res.reason
    assert not any("stop" in c for _, c in fake.commands)


def test_split_brain_fails_a_drill_that_forbids_it(fake, tmp_path):
    watch = SplitBrainWatch(lambda: ["pg1", "pg2"], None, interval=0.01)
    res = run_drill(StopAReplica, make_lab(fake, ScriptedConsole(), tmp_path, auto=True), watch=watch)
    assert res.verdict == "fail" and "split brain" in res.reason


# --- the writer's accounting -------------------------------------------------------------

class FakeConn:
    def __init__(self, server) -> None:
        self.server = server
        self.notices: list[str] = []
        self.autocommit = False

    def cursor(self):
        conn = self

        class Cur:
            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False

            def execute(self, sql, params=None):
                if conn.server["down"]:
                    raise OSError("server closed the connection unexpectedly")
                if conn.server["sync_wait"]:
                    conn.notices.append("WARNING:  canceling wait for synchronous replication due to statement timeout")
                conn.server["rows"].add(params[0])
        return Cur()

    def cancel(self):
        pass    # a statement on this connection never blocks: nothing to cancel

    def close(self):
        pass


def test_writer_counts_rto_per_path_and_lost_acknowledged_writes():
    t = {"now": 0.0}
    server = {"down": False, "sync_wait": False, "rows": set()}
    w = Writer([("vip", "192.0.2.1", 5432)], lambda a, p: FakeConn(server), clock=lambda: t["now"])
    log = w.logs["vip"]
    conn = None
    for step in range(30):                # one attempt per second
        t["now"] = float(step)
        server["down"] = 10 <= step < 17  # the outage
        server["sync_wait"] = 20 <= step < 22
        conn = w.write_once(log, conn)
    assert log.rto(since=8.0) == 9.0      # fault at 8, first success at 17
    assert log.rto(since=0.0) == 17.0
    assert log.outages(0.0)[0] == (10.0, 17.0)
    assert len(log.sync_cancelled) == 2   # committed locally, never acknowledged
    acked = w.acknowledged()
    assert len(acked) == 30 - 7 - 2
    lost = {acked[3], acked[-1]}
    assert set(w.missing(set(acked) - lost)) == lost


def test_writer_rto_is_zero_without_outage_and_none_without_recovery():
    t = {"now": 0.0}
    server = {"down": False, "sync_wait": False, "rows": set()}
    w = Writer([("haproxy", "192.0.2.1", 5000)], lambda a, p: FakeConn(server), clock=lambda: t["now"])
    log, conn = w.logs["haproxy"], None
    for step in range(5):
        t["now"] = float(step)
        conn = w.write_once(log, conn)
    assert log.rto(since=1.0) == 0.0
    server["down"] = True
    t["now"] = 6.0
    w.write_once(log, conn)
    assert log.rto(since=5.0) is None


def test_split_brain_watch_summarises_double_primaries_and_vips():
    t = {"now": 0.0}
    seq = iter([["pg1"], ["pg1", "pg2"], ["pg1", "pg2"], ["pg2"]])
    vips = iter([{"read_write": ["node1"]}, {"read_write": ["node1", "node2"]}])
    w = SplitBrainWatch(lambda: next(seq), lambda: next(vips), interval=1.0, clock=lambda: t["now"])
    for i in range(4):
        t["now"] = float(i)
        w.sample(i)
    s = w.summary()
    assert s["double_primary"] and s["max_primaries_at_once"] == 2
    assert s["double_primary_nodes"] == ["pg1", "pg2"] and s["double_primary_seconds"] == 1.0
    assert s["vip_held_twice"] == {"read_write": ["node1", "node2"]}


def test_writer_knows_when_every_path_writes_again():
    t = {"now": 0.0}
    server = {"down": False, "sync_wait": False, "rows": set()}
    w = Writer([("vip", "192.0.2.1", 5432), ("haproxy", "192.0.2.2", 5000)], lambda a, p: FakeConn(server),
               clock=lambda: t["now"])
    assert not w.all_paths_writing()          # nothing written yet
    w.write_once(w.logs["vip"], None)
    server["down"] = True
    w.write_once(w.logs["haproxy"], None)
    assert not w.all_paths_writing()
    server["down"] = False
    w.write_once(w.logs["haproxy"], None)
    assert w.all_paths_writing()
