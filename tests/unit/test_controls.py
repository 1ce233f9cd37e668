"""The negative controls (lab.exercises.run.controls), checked without machines: one per drill family,
each on a drill that exists, and a break in Patroni's local configuration that the drill's own
fragment can neither hide nor remove."""
from __future__ import annotations

import copy

from lab.exercises import DRILLS
from lab.exercises.run.controls import CONTROLS
from lab.exercises.kit import patroni_config

FAMILIES = ["replica faults", "primary faults", "etcd", "watchdog", "sync", "VIPs", "cascading"]


def test_one_control_per_family_on_a_drill_that_exists():
    assert [c.family for c in CONTROLS] == FAMILIES
    for c in CONTROLS:
        assert c.drill in DRILLS, c
        assert c.caught_by.strip() and c.breaks and c.apply.__doc__ and "Cost:" in c.apply.__doc__, c


def test_the_control_fragment_merges_after_the_drills_and_has_its_own_marker():
    # Patroni merges a configuration directory in name order: the later file wins
    assert sorted([patroni_config.DRILL_FRAGMENT, patroni_config.CONTROL_FRAGMENT])[-1] == \
        patroni_config.CONTROL_FRAGMENT
    merged = {}
    drill = patroni_config.with_updates({}, {"tags.replicatefrom": "pg2"}, "1")
    control = patroni_config.with_updates({}, {"tags.replicatefrom": "pg1"}, "2", patroni_config.CONTROL_TAG)
    for fragment in (drill, control):
        patroni_config.deep_merge(merged, copy.deepcopy(fragment))
    assert merged["tags"] == {"replicatefrom": "pg1", patroni_config.MARKER_TAG: "1", patroni_config.CONTROL_TAG: "2"}
    # without the control's fragment the drill's own edit and marker are intact
    assert drill["tags"] == {"replicatefrom": "pg2", patroni_config.MARKER_TAG: "1"}
