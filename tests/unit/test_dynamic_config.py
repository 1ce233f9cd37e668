"""The dynamic configuration a killed drill leaves behind, found and put back (lab.exercises.run.dynamic_config)."""
from __future__ import annotations

from lab.exercises.run import dynamic_config as dc
from test_provision_support import topology

LOCAL = {"bootstrap": {"dcs": {"ttl": 30, "loop_wait": 10, "retry_timeout": 10, "synchronous_mode": False,
                               "postgresql": {"use_slots": True, "parameters": {"wal_level": "logical"}}}}}


def provisioned() -> dict:
    topo = topology()
    return dc.baseline(topo, LOCAL)


def test_the_baseline_is_the_members_bootstrap_dcs_plus_the_standby_slot():
    topo = topology()
    want = provisioned()
    assert want["ttl"] == 30 and want["postgresql"]["parameters"] == {"wal_level": "logical"}
    assert want["slots"] == {topo.cluster.standby_slot: {"type": "physical"}}


def test_a_freshly_provisioned_cluster_has_no_drift_and_switched_off_extras_are_not_drift():
    want = provisioned()
    have = {**want, "failsafe_mode": False, "synchronous_mode_strict": None}
    assert dc.drift(want, have) == {}


def test_what_the_etcd_retry_timeout_drill_leaves_when_killed_is_put_back():
    want = provisioned()
    have = {**want, "retry_timeout": 3600, "synchronous_mode": True, "synchronous_mode_strict": True,
            "postgresql": {"use_slots": True, "parameters": {"wal_level": "logical", "synchronous_commit": "local"}}}
    patch = dc.drift(want, have)
    assert patch == {"retry_timeout": 10, "synchronous_mode": False, "synchronous_mode_strict": None,
                     "postgresql": {"parameters": {"synchronous_commit": None}}}
    assert "retry_timeout: 3600 -> 10" in dc.describe(patch, have)
    assert "postgresql.parameters.synchronous_commit: 'local' -> removed" in dc.describe(patch, have)


def test_a_missing_key_is_put_back():
    want = provisioned()
    have = {k: v for k, v in want.items() if k != "slots"}
    assert dc.drift(want, have) == {"slots": want["slots"]}


def test_the_gate_finds_the_drift_on_the_lab_and_names_each_key():
    from types import SimpleNamespace

    topo = topology()
    want = provisioned()
    have = {**want, "retry_timeout": 11}
    lab = SimpleNamespace(topo=topo, facts=SimpleNamespace(forget=lambda node: None, patroni_config=lambda node: LOCAL),
                          probe=SimpleNamespace(dynamic_config=lambda: have))
    finding, patch = dc.check(lab)
    assert not finding.ok and finding.detail == "retry_timeout: 11 -> 10" and patch == {"retry_timeout": 10}
    have = {}
    finding, patch = dc.check(lab)
    assert not finding.ok and "could not read" in finding.detail and patch == {}
