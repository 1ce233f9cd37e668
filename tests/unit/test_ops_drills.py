"""The §6-§8 drills without machines: registry, texts, run-time choices, and whole runs on a fake cluster."""
from __future__ import annotations

import json

import pytest

from lab.exercises import DRILLS
from lab.exercises.api.console import ScriptedConsole
from lab.exercises import ExpectationFailed, Lab, run_drill
from lab.exercises.api import steps
from lab.exercises.drills import cascade
from lab.exercises.kit import sql
from lab.exercises.kit.shell import Output
from labcore.topology import load, parse

import fake_dcs
from fake_clock import FakeClock
from fake_watch import outcome_of, watch_for

OPS = ["parameters", "rest-api", "switchover", "failover", "pause", "reinit", "multihost-url", "callback-vip",
       "readonly-vip", "haproxy", "haproxy-vip", "cascading", "standby-cluster"]


def test_every_drill_of_sections_6_to_8_is_registered_in_article_order():
    names = list(DRILLS)
    assert [n for n in names if n in OPS] == OPS
    sections = [DRILLS[n].section for n in OPS]
    for sub in ("§6.1", "§6.2", "§7.1", "§7.2", "§7.3", "§7.4", "§8.1", "§8.2"):
        assert any(s.startswith(sub) for s in sections), sub
    numbers = [s.split()[0].lstrip("§").split(".")[0] for s in sections]
    assert numbers == sorted(numbers)


@pytest.mark.parametrize("name", OPS)
def test_each_page_says_what_to_type_where_and_what_to_watch(name):
    d = DRILLS[name]
    assert d.commands and all(c.startswith("on ") and ": " in c for c in d.commands)
    assert d.expected.startswith("What to watch")
    assert "patronictl -c /etc/patroni.yml" not in " ".join(d.commands)   # the lab's config is a directory


class FakeCluster:
    """Three members; `patronictl switchover/failover` hands the leader key over (unless ``stuck``)."""

    def __init__(self, topo, stuck: bool = False) -> None:
        self.topo = topo
        self.lead = topo.postgres_nodes[0].member
        self.timeline = 1
        self.history: list[list] = []
        self.stuck = stuck
        self.commands: list[tuple[str, str]] = []

    def run(self, node: str, command: str, timeout: float = 60) -> Output:
        self.commands.append((node, command))
        if files := fake_dcs.config_files(command):
            return files
        if " switchover " in command or " failover " in command:
            cand = command.split("--candidate ")[1].split()[0]
            if not self.stuck:
                self.history.append([self.timeline, 1000, "no recovery target specified", "t", cand])
                self.lead, self.timeline = cand, self.timeline + 1
        elif " history " in command:
            rows = [dict(zip(["TL", "LSN", "Reason", "Timestamp", "New Leader"], r)) for r in self.history]
            return Output(0, json.dumps(rows))
        return Output(0, "")

    def etcd_healthy(self):
        return {n.name: True for n in self.topo.etcd_nodes}

    def members(self):
        return [{"name": n.member, "role": "leader" if n.member == self.lead else "replica",
                 "state": "running" if n.member == self.lead else "streaming"} for n in self.topo.postgres_nodes]

    def leader(self):
        return self.lead

    def replicas(self):
        return [n.member for n in self.topo.postgres_nodes if n.member != self.lead]

    def streaming(self, member):
        return member != self.lead

    def primaries(self):
        return [self.lead]

    def in_recovery(self, member):
        return member != self.lead

    def member_state(self, member):
        return {"role": "primary" if member == self.lead else "replica", "state": "running",
                "timeline": self.timeline}

    def forked_replicas(self, leader, replicas):
        return {}

    def vip_holders(self):
        return {"read_write": [self.topo.node(self.lead).name], "read_only": ["node2"], "haproxy": ["node1"]}

    def dynamic_config(self):
        return fake_dcs.provisioned(self.topo)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    cluster = FakeCluster(load())
    # haproxy's write port lands on whoever leads (what the real check verifies over the network)
    monkeypatch.setattr(sql, "whoami", lambda topo, address, port=None, **k: (topo.node(cluster.lead).address, False))
    return cluster


def run(cls, fake, tmp_path):
    quiet = type(cls.__name__, (cls,), {"writes": False})     # no writer: nothing to connect to
    lab = Lab(fake.topo, auto=True, console=ScriptedConsole(), clock=FakeClock(), shell=fake, probe=fake,
              results_dir=tmp_path / "drills", outcome_probe=outcome_of(fake))
    return run_drill(quiet, lab, watch=watch_for(fake, lab.clock))


def test_switchover_drill_hands_over_to_the_replica_it_chose(fake, tmp_path):
    res = run(DRILLS["switchover"], fake, tmp_path)
    assert res.passed, res.reason
    assert fake.lead == "pg2" and fake.timeline == 2 and len(fake.history) == 1
    typed = [c for _, c in fake.commands if " switchover " in c]
    assert typed == ["sudo -u postgres patronictl -c /etc/patroni switchover pgsql --leader pg1 --candidate pg2 --force"]
    assert "switchover_s" in res.metrics and "haproxy_follows_s" in res.metrics


def test_switchover_drill_fails_when_the_leader_does_not_change(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    fake = FakeCluster(load(), stuck=True)
    res = run(DRILLS["switchover"], fake, tmp_path)
    assert res.verdict == "fail" and "pg2 is not the writable leader" in res.reason


def test_failover_drill_promotes_the_candidate(fake, tmp_path):
    res = run(DRILLS["failover"], fake, tmp_path)
    assert res.passed, res.reason
    assert fake.lead == "pg2"
    assert any("failover pgsql --candidate pg2 --force" in c for _, c in fake.commands)


def _lab(fake):
    return Lab(fake.topo, auto=True, console=ScriptedConsole(), clock=FakeClock(), shell=fake, probe=fake)


def test_cascade_pair_follows_the_article_when_pg1_leads(fake):
    assert cascade.cascade_pair(_lab(fake)) == ("pg3", "pg2", False)


def test_cascade_pair_uses_the_topology_when_both_are_replicas(fake):
    topo = load()
    object.__setattr__(topo, "options", {**topo.options, "replicatefrom": {"pg2": "pg3"}})
    fake.topo = topo
    assert cascade.cascade_pair(_lab(fake)) == ("pg2", "pg3", True)
    fake.lead = "pg3"          # the configured source leads now: choose at run time
    assert cascade.cascade_pair(_lab(fake)) == ("pg2", "pg1", False)


def test_standby_drill_without_a_standby_node_says_so(tmp_path, monkeypatch):
    import yaml
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    doc = yaml.safe_load(load().path.read_text())
    doc["nodes"] = [n for n in doc["nodes"] if "standby" not in n["roles"]]
    doc["etcd"]["members"] = ["node1"]
    fake = FakeCluster(parse(doc))
    with pytest.raises(ExpectationFailed, match="no node with role standby"):
        cascade.Standby(_lab(fake))


def test_parameters_drill_counts_every_member():
    topo = load()
    assert steps.members(_lab(FakeCluster(topo))) == ["pg1", "pg2", "pg3"]


def test_vip_move_is_read_from_the_callbacks_own_log(fake):
    from lab.exercises.drills import access
    log = ("1764154470.100000 node2 patroni-vip[1]: called: action=on_role_change role=primary scope=pgsql\n"
           "1764154470.300000 node2 patroni-vip[2]: added 192.168.234.210 to eth1\n"
           "1764154473.400000 node2 patroni-vip[3]: announced 192.168.234.210 by gratuitous ARP\n")
    fake.run = lambda node, command, timeout=60: Output(0, log if "journalctl -t patroni-vip" in command else "")
    lab = _lab(fake)
    assert access.callback_event(lab, "node2", "added", 1764154470.0) == 1764154470.3
    assert access.callback_event(lab, "node2", "announced", 1764154470.0) == 1764154473.4
    assert access.callback_event(lab, "node2", "removed", 1764154470.0) is None
    assert access.callback_event(lab, "node2", "added", 1764154471.0) is None    # before the switchover
