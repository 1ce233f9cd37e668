"""Tier 3, article §6-§8: the operations drills in auto mode against the live lab, each with the
timings its page quotes (switchover, VIP moves, haproxy detection, standby lag)."""
from __future__ import annotations

import json

import pytest

from labcore import state as lab_state
from lab.exercises import DRILLS, Lab, run_drill
from lab.exercises.timing import timeout_scale
from labcore.topology import load

pytestmark = [pytest.mark.live, pytest.mark.drills]

# drill -> the measurements it must report (seconds unless the name says otherwise)
TIMINGS = {
    "parameters": ["restart_all_members_s"],
    "rest-api": ["health_endpoints"],
    "switchover": ["switchover_s", "old_leader_streaming_s"],
    "failover": ["failover_s"],
    "pause": ["held_without_failover_s", "writable_after_resume_s"],
    "reinit": ["reinit_to_streaming_s"],
    "multihost-url": ["switchover_s"],
    "callback-vip": ["vip_move_s", "arp_follows_after_vip_s", "new_leader_after_stop_s"],
    "readonly-vip": ["vip_to_leader_s", "vip_back_on_replica_s"],
    "haproxy": ["haproxy_detection_s", "haproxy_writable_after_fault_s"],
    "haproxy-vip": ["haproxy_vip_move_s"],
    "cascading": ["cascade_established_s", "fallback_to_leader_s", "cascade_restored_s"],
    "standby-cluster": ["standby_lag_s", "standby_follows_after_switchover_s", "slot_retained_bytes",
                        "standby_promote_s", "standby_demote_s"],
}


@pytest.fixture(scope="module")
def topo(request):
    """The session's lab (tests/live/conftest.py brings it up); skipped when it is not provisioned."""
    try:
        request.getfixturevalue("live_lab")
    except pytest.FixtureLookupError:
        pass
    if lab_state.load().phase != "provisioned":
        pytest.skip("the lab is not provisioned (run `invoke up`)")
    return load()


def report(res) -> str:
    return json.dumps({"verdict": res.verdict, "reason": res.reason, "metrics": res.metrics, "rto_s": res.rto_s,
                       "writes": res.writes, "notes": res.notes,
                       "failed_checks": [c.__dict__ for c in res.checks if not c.ok]}, indent=1, default=str)


def test_every_ops_drill_is_listed():
    assert set(TIMINGS) <= set(DRILLS)


@pytest.mark.parametrize("name", list(TIMINGS))
def test_ops_drill_passes_and_measures(topo, name):
    res = run_drill(DRILLS[name], Lab(topo, auto=True, scale=timeout_scale(),
                                      results_dir=lab_state.lab_dir() / "drills"))
    print(report(res))
    assert res.passed, report(res)
    # every expectation came true within its bound; every "stays" held for its whole period
    assert all(c.kept_bound for c in res.checks), report(res)
    missing = [k for k in TIMINGS[name] if k not in res.metrics]
    assert not missing, f"{name} did not measure {missing}"
    for key in TIMINGS[name]:
        if key.endswith("_s"):
            assert isinstance(res.metrics[key], (int, float)) and res.metrics[key] >= 0
    if DRILLS[name].lossless:
        assert res.writes.get("lost") == 0
    assert res.split_brain.get("max_primaries_at_once", 0) <= 1
