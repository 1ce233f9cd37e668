"""The repair puts Patroni's dynamic configuration back and restarts what that leaves pending
(lab.exercises.run.recovery): a killed `parameters` drill leaves max_connections=300 in the DCS."""
from __future__ import annotations

import copy

import pytest

from lab.exercises import Lab

from lab.exercises.run import recovery
from lab.exercises.api.console import ScriptedConsole
from lab.exercises.kit.shell import Output
from labcore.topology import load

import fake_dcs
from fake_clock import FakeClock


class KilledParametersDrill:
    """Healthy, but the DCS holds max_connections=300 and every member runs 300. A PATCH back flags each
    member pending restart at its next loop; a replica restarted before the primary stays pending (it may
    not run less than the primary's running value)."""

    def __init__(self, topo, clock: FakeClock) -> None:
        self.topo, self.clock = topo, clock
        self.config = fake_dcs.provisioned(topo)
        self.config.setdefault("postgresql", {}).setdefault("parameters", {})["max_connections"] = 300
        self.running = {n.member: 300 for n in topo.postgres_nodes}
        self.patched_at: float | None = None
        self.restarts: list[str] = []
        self.patches: list[dict] = []

    def want(self) -> int:
        return (self.config.get("postgresql") or {}).get("parameters", {}).get("max_connections") or 100

    def pending(self, member: str) -> bool:
        seen = self.patched_at is not None and self.clock.now >= self.patched_at + 5   # the member's next loop
        return seen and self.running[member] != self.want()

    # Shell
    def run(self, node: str, command: str, timeout: float = 60) -> Output:
        if files := fake_dcs.config_files(command):
            return files
        if " restart pgsql" in command:
            names = [m for m in self.running if f" {m} " in command]
            targets = names or [m for m in self.running if self.pending(m)]
            for m in targets:
                self.restarts.append(m)
                if m == "pg1" or self.running["pg1"] == self.want():
                    self.running[m] = self.want()
        return Output(0, "")

    # Probe
    def etcd_healthy(self):
        return {n.name: True for n in self.topo.etcd_nodes}

    def members(self):
        return [{"name": m, "role": "leader" if m == "pg1" else "replica", "state": "running" if m == "pg1" else "streaming",
                 **({"pending_restart": True} if self.pending(m) else {})} for m in self.running]

    def member_state(self, member):
        return next(m for m in self.members() if m["name"] == member)

    def leader(self):
        return "pg1"

    def streaming(self, member):
        return member != "pg1"

    def forked_replicas(self, leader, replicas):
        return {}

    def primaries(self):
        return ["pg1"]

    def in_recovery(self, member):
        return member != "pg1"

    def vip_holders(self):
        return {"read_write": ["node1"], "read_only": ["node2"], "haproxy": ["node1"]}

    def dynamic_config(self):
        return copy.deepcopy(self.config)

    def patch_config(self, changes):
        self.patches.append(changes)
        self.config["postgresql"]["parameters"].pop("max_connections")
        self.patched_at = self.clock.now
        return self.config


@pytest.fixture
def lab(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    clock = FakeClock()
    fake = KilledParametersDrill(load(), clock)
    return Lab(fake.topo, auto=True, console=ScriptedConsole(), clock=clock, shell=fake, probe=fake), fake


def test_the_gate_names_the_drift_and_the_repair_restarts_the_primary_first(lab):
    lab, fake = lab
    ok, found = recovery.gate(lab, within=4)
    assert not ok and [f"{f.check}: {f.detail}" for f in found if not f.ok] == [
        "Patroni's dynamic configuration as provisioned: postgresql.parameters.max_connections: 300 -> removed"]

    recovery.repair(lab)
    assert fake.patches == [{"postgresql": {"parameters": {"max_connections": None}}}]
    assert fake.restarts[0] == "pg1" and set(fake.restarts) == {"pg1", "pg2", "pg3"}
    assert all(v == 100 for v in fake.running.values())
    ok, found = recovery.gate(lab, within=4)
    assert ok, [f for f in found if not f.ok]


def test_members_left_pending_are_off_the_baseline_until_restarted(lab):
    lab, fake = lab
    fake.patch_config({})
    lab.clock.sleep(5)
    ok, found = recovery.gate(lab, within=4)
    assert not ok and [f"{f.check}: {f.detail}" for f in found if not f.ok] == [
        "no member pending restart: pending restart: pg1, pg2, pg3"]
    recovery.repair(lab)
    assert fake.patches == [{}] and fake.restarts[0] == "pg1"
    assert recovery.gate(lab, within=4)[0]
