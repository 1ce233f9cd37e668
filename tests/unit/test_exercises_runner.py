"""The runner without machines: a fake lab, a scripted trainee, the writer's accounting, the watch."""
from __future__ import annotations

import json

import pytest

from lab.exercises.kit import actions as F
from lab.exercises.api.console import ScriptedConsole
from lab.exercises import Drill, Lab, run_drill
from lab.exercises.api.model import NotApplicable
from lab.exercises.kit.shell import Output
from lab.exercises.kit.outcomes import MemberState, Outcome
from lab.exercises.observe.writer import Writer
from lab.exercises.observe.writes import Survivor, write_figures
from labcore.topology import load

import fake_dcs
from fake_clock import FakeClock
from fake_watch import ClockDrivenWatch, outcome_of, watch_for


class FakeCluster:
    """A healthy three-member cluster whose Patroni on node2 can be stopped by a shell command."""

    def __init__(self, topo) -> None:
        self.topo = topo
        self.patroni_running = {n.name: True for n in topo.postgres_nodes}
        self.commands: list[tuple[str, str]] = []
        self.config: dict = fake_dcs.provisioned(topo)

    # the Shell protocol
    def run(self, node: str, command: str, timeout: float = 60) -> Output:
        self.commands.append((node, command))
        if files := fake_dcs.config_files(command):
            return files
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

    def forked_replicas(self, leader, replicas):
        return {}

    def vip_holders(self):
        return {"read_write": ["node1"], "read_only": ["node2"], "haproxy": ["node1"]}

    def dynamic_config(self):
        return dict(self.config)

    def patch_config(self, changes):
        for k, v in changes.items():
            if v is None:
                self.config.pop(k, None)
            else:
                self.config[k] = v
        return self.config


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


def make_lab(fake, console, tmp_path, auto, recorder=None):
    return Lab(fake.topo, auto=auto, console=console, clock=FakeClock(), shell=fake, probe=fake,
               results_dir=tmp_path / "drills", outcome_probe=outcome_of(fake), recorder=recorder)


def run(cls, fake, console, tmp_path, auto=True, **watch_kw):
    lab = make_lab(fake, console, tmp_path, auto)
    return run_drill(cls, lab, watch=watch_for(fake, lab.clock, **watch_kw))


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
    res = run(StopAReplica, fake, console, tmp_path, auto=False)
    assert res.passed, res.reason
    assert res.mode == "guided"
    assert shown_commands == [("node2", "sudo systemctl stop patroni")]
    assert len(console.pauses) >= 3        # story, undo, restore
    assert ("node2", "sudo systemctl start patroni") in fake.commands
    saved = json.loads((tmp_path / "drills" / "test-stop-a-replica.json").read_text())
    assert saved["verdict"] == "pass" and saved["checks"][0]["ok"]


def test_guided_drill_lets_the_trainee_say_go(fake, tmp_path):
    console = ScriptedConsole(answers=["go"])
    res = run(StopAReplica, fake, console, tmp_path, auto=False)
    assert res.passed, res.reason
    assert ("node2", "sudo systemctl stop patroni") in fake.commands


def test_auto_drill_injects_itself_and_never_pauses(fake, tmp_path):
    console = ScriptedConsole()
    res = run(StopAReplica, fake, console, tmp_path)
    assert res.passed and console.pauses == []


def test_an_unmet_expectation_fails_the_drill_and_still_restores(fake, tmp_path):
    class NeverComesBack(StopAReplica):
        def run(self, lab):
            lab.inject(F.stop_patroni(lab.facts, lab.replicas()[0]))
            lab.expect(lambda: False, "something impossible", within=5)

    res = run(NeverComesBack, fake, ScriptedConsole(), tmp_path)
    assert res.verdict == "fail" and "something impossible" in res.reason
    assert fake.patroni_running["node2"], "restore must undo the fault"
    assert res.gate_after and all(f["ok"] for f in res.gate_after)


def test_a_lab_not_at_baseline_is_refused_before_anything_is_touched(fake, tmp_path):
    fake.patroni_running["node3"] = False
    res = run(StopAReplica, fake, ScriptedConsole(), tmp_path)
    assert res.verdict == "error" and "nothing was touched" in res.reason
    assert not any("stop" in c for _, c in fake.commands)


def test_split_brain_fails_a_drill_that_forbids_it(fake, tmp_path):
    lab = make_lab(fake, ScriptedConsole(), tmp_path, auto=True)
    two = lambda m: MemberState(m, Outcome.PRIMARY if m in ("pg1", "pg2") else Outcome.REPLICA)
    res = run_drill(StopAReplica, lab, watch=ClockDrivenWatch(lab.clock, ["pg1", "pg2", "pg3"], two))
    assert res.verdict == "fail" and "split brain" in res.reason


# --- the writer and its figures -----------------------------------------------------------

class FakeConn:
    """A connection to a fake server that says who it is (address, postmaster start, timeline, position)."""

    def __init__(self, server) -> None:
        self.server = server
        self.notices: list[str] = []
        self.autocommit = False
        self.closed = False

    def cursor(self):
        conn = self

        class Cur:
            description = None

            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False

            def execute(self, sql, params=None):
                if conn.server["down"]:
                    raise OSError("server closed the connection unexpectedly\n\tThis probably means ...")
                if conn.server["sync_wait"]:
                    conn.notices.append("WARNING:  canceling wait for synchronous replication due to statement timeout")
                if params is None:            # the writer's CREATE TABLE / TRUNCATE
                    return
                conn.server["rows"].add(params[0])
                conn.server["lsn"] += 100
                self.description = [("host",), ("started",), ("timeline",), ("lsn",)]

            def fetchone(self):
                s = conn.server
                return (s["address"], s["started"], s["timeline"], s["lsn"])
        return Cur()

    def cancel(self):
        pass    # a statement on this connection never blocks: nothing to cancel

    def close(self):
        self.closed = True


def server(**kw):
    return {"down": False, "sync_wait": False, "rows": set(), "address": "192.0.2.11", "started": "boot-1",
            "timeline": 1, "lsn": 1000, **kw}


def test_the_writer_logs_who_took_each_write_and_the_figures_follow():
    t = {"now": 0.0}
    srv = server()
    w = Writer([("vip", "192.0.2.1", 5432)], lambda a, p: FakeConn(srv), clock=lambda: t["now"],
               identify=lambda address, started: {"boot-1": "pg1", "boot-2": "pg2"}.get(started))
    log = w.logs["vip"]
    conn = None
    for step in range(30):                # one attempt per second
        t["now"] = float(step)
        srv["down"] = 10 <= step < 17     # the outage
        srv["sync_wait"] = 20 <= step < 22
        if step == 17:                    # back on a promoted server, timeline 2
            srv.update(started="boot-2", timeline=2)
        conn = w.write_once(log, conn)
    a = log.attempts
    assert (a[0].server, a[0].timeline, a[0].lsn) == ("pg1", 1, 1100)
    assert a[10].error == "server closed the connection unexpectedly" and not a[10].ok
    assert a[17].server == "pg2" and a[17].timeline == 2
    assert a[20].sync_cancelled and not a[20].ok     # committed locally, never acknowledged
    acked = w.acknowledged()
    assert len(acked) == 30 - 7 - 2
    figures = write_figures(w.attempts(), 8.0, survivor=Survivor(2, {1: 1500}), present=set(acked) - {acked[-1]})
    f = figures.paths["vip"]
    assert f.outages[0] == [2.0, 9.0]              # refused from 10 to the acknowledgement at 17
    assert f.rto_s == 14.0                         # the sync-cancelled writes at 20-21 are refusals too
    assert f.to_surviving_timeline_s == 9.0
    assert figures.lost == 1 and figures.lost_ids == [acked[-1]]


def test_a_per_transaction_path_opens_a_connection_for_every_write():
    srv, opened = server(), []

    def connect(address, port):
        opened.append(FakeConn(srv))
        return opened[-1]
    w = Writer([("vip-per-txn", "192.0.2.1", 5432, False)], connect, clock=lambda: 0.0)
    conn = None
    for _ in range(3):
        conn = w.write_once(w.logs["vip-per-txn"], conn)
        assert conn is None
    assert len(opened) == 3 and all(c.closed for c in opened)
    persistent = Writer([("vip", "192.0.2.1", 5432)], connect, clock=lambda: 0.0)
    conn = None
    for _ in range(3):
        conn = persistent.write_once(persistent.logs["vip"], conn)
    assert len(opened) == 4 and not opened[-1].closed      # one connection, kept


def test_the_writer_tells_each_attempt_to_the_evidence():
    seen = []
    w = Writer([("haproxy", "192.0.2.1", 5000)], lambda a, p: FakeConn(server()), clock=lambda: 1.0,
               on_attempt=seen.append)
    w.write_once(w.logs["haproxy"], None)
    assert seen[0].event()["path"] == "haproxy" and seen[0].ok


def test_writer_knows_when_every_path_writes_again():
    t = {"now": 0.0}
    srv = server()
    w = Writer([("vip", "192.0.2.1", 5432), ("haproxy", "192.0.2.2", 5000)], lambda a, p: FakeConn(srv),
               clock=lambda: t["now"])
    assert not w.all_paths_writing()          # nothing written yet
    w.write_once(w.logs["vip"], None)
    srv["down"] = True
    w.write_once(w.logs["haproxy"], None)
    assert not w.all_paths_writing()
    srv["down"] = False
    w.write_once(w.logs["haproxy"], None)
    assert w.all_paths_writing()


# --- verdicts from a whole run ----------------------------------------------------------------

class ClaimAllReplicas(StopAReplica):
    """Claims every member a replica after stopping Patroni on node2, as etcd-down claims of all three."""
    explained = None

    def run(self, lab):
        lab.inject(F.stop_patroni(lab.facts, lab.replicas()[0]))
        lab.expect_outcomes({m: Outcome.REPLICA for m in ("pg2", "pg3")}, "the replicas are replicas", within=10,
                            explained=self.explained)


def test_a_stopped_member_where_a_replica_is_claimed_fails_with_what_was_seen(fake, tmp_path):
    res = run(ClaimAllReplicas, fake, ScriptedConsole(), tmp_path)
    assert res.verdict == "fail" and "pg2 is stopped, the article says replica" in res.reason
    oc = res.outcomes[0]
    assert oc.members["pg2"].seen == "stopped" and oc.members["pg2"].expected == ["replica"]
    assert oc.members["pg3"].seen == "replica" and oc.verdict == "fail"


def test_an_explained_deviation_differs_and_keeps_its_evidence(fake, tmp_path):
    class Explained(ClaimAllReplicas):
        explained = {Outcome.STOPPED: "Patroni stops its PostgreSQL when it stops"}
    res = run(Explained, fake, ScriptedConsole(), tmp_path)
    assert res.verdict == "differs" and "Patroni stops its PostgreSQL" in res.reason
    assert res.evidence == ["pg2: pg_ctl status: no server running"]
    assert not res.passed


def test_a_drill_whose_precondition_is_absent_is_not_applicable(fake, tmp_path):
    class NeedsJava(StopAReplica):
        def run(self, lab):
            raise NotApplicable("no Java runtime on the control host")
    res = run(NeedsJava, fake, ScriptedConsole(), tmp_path)
    assert res.verdict == "not-applicable" and "Java" in res.reason
    assert not any("stop" in c for _, c in fake.commands)


class HoldsAfterTheFault(StopAReplica):
    def run(self, lab):
        leader = lab.leader()
        lab.inject(F.stop_patroni(lab.facts, lab.replicas()[0]))
        lab.hold(lambda: lab.probe.leader() == leader, f"{leader} stays the leader", for_=8)


def test_a_watch_that_stalled_in_the_fault_window_makes_the_drill_an_error(fake, tmp_path):
    """The drill passes with a watch that saw it all; the same run with a 3 s stall after the fault is blind."""
    seen = run(HoldsAfterTheFault, fake, ScriptedConsole(), tmp_path)
    assert seen.passed, seen.reason
    assert seen.watch.fault_window.samples >= 16 and seen.watch.fault_window.longest_gap_s <= 0.5
    t_fault = seen.fault_at_s
    fake.patroni_running["node2"] = True
    res = run(HoldsAfterTheFault, fake, ScriptedConsole(), tmp_path, blind_between=(t_fault + 2, t_fault + 5))
    assert res.verdict == "error" and "saw nothing for 4 s" in res.reason    # cycles +2..+5 missing
    assert res.watch.fault_window.longest_gap_s == 4.0
    assert f"from t={t_fault + 1.5:g} s" in res.reason                 # the last cycle it saw before the stall
    # what the live tests run again; a drill that saw everything is never re-run, whatever its verdict
    from lab.exercises.api.model import Result
    from lab.exercises.run.runner import watch_was_blind
    assert watch_was_blind(res) and not watch_was_blind(seen)
    assert watch_was_blind(Result.from_json(json.loads(json.dumps(res.to_json(), default=str))))


def test_a_run_keeps_its_evidence_and_measures_checks_from_the_fault(fake, tmp_path):
    from lab.exercises.observe.evidence import RunRecorder
    from lab.report import runs as report_runs
    lab = make_lab(fake, ScriptedConsole(), tmp_path, auto=True)
    clock = lab.clock
    clock.now = 100.0
    run_rec = RunRecorder("test-stop-a-replica", command="test", lab="t", drills=["test-stop-a-replica"],
                          root=tmp_path / "runs", clock=clock.monotonic)
    rec = run_rec.drill("test-stop-a-replica")
    res = run_drill(StopAReplica, lab, watch=watch_for(fake, clock, record=rec.event), recorder=rec)
    rec.close()
    assert res.passed, res.reason
    # the first check starts when the fault is observed and ends when PostgreSQL is down: from the fault
    down = res.checks[1]
    assert down.description.startswith("PostgreSQL on pg2 is down") and down.start >= 0 and down.end >= down.start
    assert res.fault_at_s is not None
    loaded = report_runs.load(run_rec.path).drills[0]
    assert loaded.verdict == "pass"
    kinds = {e["type"] for e in loaded.events}
    assert {"mark", "sample", "check", "verdict"} <= kinds
    names = [m["name"] for m in loaded.marks()]
    assert names[0] == "start" and "fault" in names and "undo" in names and "restore" in names and names[-1] == "end"
    fault = loaded.mark("fault")
    assert fault == res.fault_at_s
    checks = loaded.of_type("check")
    assert checks[1]["start"] == round(fault + down.start, 3)     # the event keeps the drill's own time line
    assert loaded.result["watch"]["samples"] == len(loaded.of_type("sample"))
    # the watch's windows are on the events' time line: the fault window opens at the fault mark
    assert loaded.result["watch"]["fault_window"]["window_s"][0] == fault
    assert loaded.result["watch"]["window_s"][0] == 0.0
    sample = loaded.of_type("sample")[0]
    assert set(sample["members"]["pg1"]) >= {"outcome", "timeline", "lag_bytes", "error"}


def test_uncountable_writes_in_a_lossless_drill_are_an_error(fake, tmp_path, monkeypatch):
    import lab.exercises.run.runner as runner

    class Lossless(StopAReplica):
        writes = True
        lossless = True
    srv = server()
    monkeypatch.setattr(runner, "_pg_connector", lambda lab: lambda address, port: FakeConn(srv))

    def final_primary_gone(conn, ids):
        raise OSError("connection to the final primary refused")
    monkeypatch.setattr(runner, "ids_present", final_primary_gone)
    lab = make_lab(fake, ScriptedConsole(), tmp_path, auto=True)
    lab.writer_paths = [("vip", "192.0.2.1", 5432)]
    writer = Writer(lab.writer_paths, lambda a, p: FakeConn(srv), clock=lab.clock.monotonic)
    writer.start = lambda: writer.write_once(writer.logs["vip"], None)     # one write, no thread
    writer.stop = lambda: None
    res = run_drill(Lossless, lab, writer=writer, watch=watch_for(fake, lab.clock))
    assert res.writes.acknowledged == 1 and res.writes.lost is None
    assert "connection to the final primary refused" in res.writes.uncounted_reason
    assert res.verdict == "error" and "could not be counted" in res.reason


def test_a_replica_fault_that_makes_a_write_path_refuse_fails(fake, tmp_path, monkeypatch):
    """rto_zero: the application must not notice a replica's fault. One refused write is enough to fail;
    without it the same run passes, with the bound kept in the result."""
    import lab.exercises.run.runner as runner

    class ReplicaFault(StopAReplica):
        writes = True
        rto_zero = True
    srv = server()
    monkeypatch.setattr(runner, "_pg_connector", lambda lab: lambda address, port: FakeConn(srv))
    monkeypatch.setattr(runner, "ids_present", lambda conn, ids: set(ids))

    def run_with(refuse: bool):
        lab = make_lab(fake, ScriptedConsole(), tmp_path, auto=True)
        lab.writer_paths = [("vip", "192.0.2.1", 5432)]
        writer = Writer(lab.writer_paths, lambda a, p: FakeConn(srv), clock=lab.clock.monotonic)

        def start():
            lab.inject(F.stop_patroni(lab.facts, lab.replicas()[0]))     # the fault first, then the writes
            for down in (False, refuse, False):
                srv["down"] = down
                writer.write_once(writer.logs["vip"], None)
            srv["down"] = False
        writer.start, writer.stop = start, (lambda: None)
        return run_drill(type("D", (ReplicaFault,), {"run": lambda self, lab: None}), lab, writer=writer,
                         watch=watch_for(fake, lab.clock))
    ok = run_with(refuse=False)
    assert ok.passed, ok.reason
    assert ok.bounds["write_paths_untouched"].ok and ok.rto_s == {"vip": 0.0}
    bad = run_with(refuse=True)
    assert bad.verdict == "fail" and "the vip path refused 1 write(s)" in bad.reason
    assert not bad.bounds["write_paths_untouched"].ok


def test_a_server_the_watch_had_not_seen_yet_is_identified_when_the_figures_are_made():
    seen = {}
    srv = server(address="192.0.2.210", started="boot-9")      # through a VIP: the address says nothing
    w = Writer([("vip", "192.0.2.210", 5432)], lambda a, p: FakeConn(srv), clock=lambda: 0.0,
               identify=lambda address, started: seen.get(started))
    w.write_once(w.logs["vip"], None)
    assert w.logs["vip"].attempts[0].server is None            # unknown when the write returned
    seen["boot-9"] = "pg3"                                       # the watch's next cycle saw that postmaster
    assert w.attempts()[0].server == "pg3"


def test_a_statement_is_cancelled_from_a_child_process_so_no_thread_of_ours_waits_on_it(tmp_path):
    """psycopg2's cancel() holds the GIL while libpq connects: to an unreachable VIP that froze the whole
    process (watch and writers) for seconds. The request goes out from a child process instead."""
    from lab.exercises.kit.sql import cancel_from_a_child
    import os

    class Conn:
        def cancel(self):
            (tmp_path / "cancelled-by").write_text(str(os.getpid()))
    cancel_from_a_child(Conn())
    assert int((tmp_path / "cancelled-by").read_text()) != os.getpid()


def test_a_control_breaks_the_dynamic_configuration_after_the_gate_and_the_restore_puts_it_back(fake, tmp_path):
    """A negative control applied before the gate is refused there (the gate sees the configuration);
    with_break applies it first thing in the drill's run, and the restore undoes it."""
    from lab.exercises.run.controls import with_break

    def pause(lab):
        lab.probe.patch_config({"pause": True})
        lab.on_restore("resume", lambda: lab.probe.patch_config({"pause": None}))

    lab = make_lab(fake, ScriptedConsole(), tmp_path, auto=True)
    pause(lab)
    refused = run_drill(StopAReplica, lab, watch=watch_for(fake, lab.clock))
    assert refused.verdict == "error" and "pause: True -> removed" in refused.reason
    fake.patch_config({"pause": None})

    res = run(with_break(StopAReplica, pause), fake, ScriptedConsole(), tmp_path)
    assert res.passed, res.reason
    assert res.drill == StopAReplica.name and "pause" not in fake.config
    assert res.gate_after and all(f["ok"] for f in res.gate_after)


def test_a_time_measured_at_a_check_is_when_the_look_that_met_it_began(fake, tmp_path):
    """A look at an unreachable node can take a minute of ssh timeouts; the figure is the moment the
    look began that found the claim true, not the moment the look gave its answer."""
    lab = make_lab(fake, ScriptedConsole(), tmp_path, auto=True)
    lab.t_fault = lab.clock.monotonic()
    looks = []

    def slow_look() -> bool:
        looks.append(lab.clock.now)
        lab.clock.now += 50          # the look itself takes 50 s
        return len(looks) == 3
    lab.expect(slow_look, "the node is gone", within=300, every=5)
    assert looks == [0, 55, 110]
    assert lab.fault_to_last_met() == 110 and lab.since_fault() == 160


def test_slow_machines_are_watched_less_often_and_judged_by_the_same_stretched_gap(monkeypatch):
    """Under TCG (timeout scale 3) a look at four VMs takes over a second: the watch's cadence and the
    gap its verdict tolerates stretch with every other wait, and the result records the rule it used."""
    from labcore import poll
    from lab.exercises.run import runner

    monkeypatch.setenv(poll.SCALE_ENV, "3")
    assert runner.watch_rule().max_gap_s == 6.0 and runner.watch_rule().max_missed_share == 0.2
    monkeypatch.setenv(poll.SCALE_ENV, "1")
    assert runner.watch_rule() == runner.WATCH_RULE


class NoFault(Drill):
    name = "test-no-fault"
    section = "§6"
    summary = "looks, changes nothing"
    writes = False

    def run(self, lab: Lab) -> None:
        lab.clock.sleep(30)
        lab.expect(lambda: lab.probe.leader() is not None, "a leader", within=5)


def test_a_drill_without_a_fault_is_judged_from_the_watchs_start_not_from_before_the_gate(fake, tmp_path):
    """Before the gate has passed nothing is looked at: on slow VMs the gate takes seconds, and
    counting them as the watch's gap made such a drill blind."""
    lab = make_lab(fake, ScriptedConsole(), tmp_path, auto=True)
    lab.clock.now = 100.0
    watch = watch_for(fake, lab.clock)
    real_start = watch.start

    def late_start():          # the gate and the set-up took 9 s before the watch began
        lab.clock.now += 9
        real_start()
    watch.start = late_start
    res = run_drill(NoFault, lab, watch=watch)
    assert res.watch.fault_window.window_s[0] == round(watch.started_at - lab.t_start, 3) >= 9
    assert res.watch.fault_window.longest_gap_s < 9, res.watch.fault_window
