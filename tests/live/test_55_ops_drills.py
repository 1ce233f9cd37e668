"""Tier 3, article §6-§8: the operations drills in auto mode against the live lab, each with the
timings its page quotes (switchover, VIP moves, haproxy detection, standby lag)."""
from __future__ import annotations

import pytest

from lab.exercises import DRILLS

from drill_verdicts import assert_sound, drill_run, report, run_live, topo  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.live, pytest.mark.drills]

# drill -> the measurements it must report (seconds unless the name says otherwise)
TIMINGS = {
    "parameters": ["restart_all_members_s"],
    "rest-api": ["health_endpoints", "leader_only_endpoints"],
    "switchover": ["switchover_s", "old_leader_streaming_s"],
    "failover": ["failover_s"],
    "pause": ["held_without_failover_s", "writable_after_resume_s"],
    "reinit": ["reinit_to_streaming_s"],
    "multihost-url": ["switchover_s", "jdbc_any_balanced_before_the_switchover",
                      "jdbc_any_balanced_after_the_switchover"],
    "callback-vip": ["vip_move_s", "arp_follows_after_vip_s", "new_leader_after_stop_s"],
    "readonly-vip": ["vip_to_leader_s", "vip_back_on_replica_s"],
    "haproxy": ["haproxy_detection_s", "haproxy_writable_after_fault_s", "noloadbalance_out_of_read_listener_s"],
    "haproxy-vip": ["haproxy_vip_move_s"],
    "cascading": ["cascade_established_s", "fallback_to_leader_s", "cascade_restored_s", "follower_elected_s"],
    "standby-cluster": ["standby_lag_s", "standby_follows_after_switchover_s", "slot_retained_bytes",
                        "standby_promote_s", "standby_demote_s"],
}


def test_every_ops_drill_is_listed():
    assert set(TIMINGS) <= set(DRILLS)


@pytest.mark.parametrize("name", list(TIMINGS))
def test_ops_drill_proves_its_claim_and_measures(topo, drill_run, name):
    res = run_live(topo, DRILLS[name], drill_run)
    print(report(res))
    assert_sound(res, DRILLS[name])
    missing = [k for k in TIMINGS[name] if k not in res.metrics]
    assert not missing, f"{name} did not measure {missing}"
    for key in TIMINGS[name]:
        if key.endswith("_s"):
            assert isinstance(res.metrics[key], (int, float)) and res.metrics[key] >= 0
    assert res.watch.max_primaries_at_once <= 1, report(res)
