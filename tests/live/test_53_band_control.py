"""The band's negative control: haproxy's checks of the replicas dropped until the drill's restore,
while haproxy.cfg still says inter 3 s, rise 2. haproxy then marks the new primary UP later after the promotion than its checks
predict, and the result must say so in its notes (lab/exercises/observe/band.py), whatever the
drill's verdict. (The whole RTO's band is as wide as the leader race is uncertain, 20-40 s with the
article's settings: a haproxy path 15 s slow still fits in it, which is why each part is judged.)"""
from __future__ import annotations

import pytest

from lab.exercises import DRILLS
from lab.exercises.run.controls import haproxy_checks_blocked

from drill_verdicts import drill_run, report, run_live, topo  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.live, pytest.mark.drills]


def test_slowed_haproxy_checks_put_haproxys_part_of_the_failover_outside_its_band_and_say_so(topo, drill_run):
    res = run_live(topo, DRILLS["primary-patroni-kill"], drill_run, before=haproxy_checks_blocked)
    phases = {p["name"]: p["t"] for p in res.failover["phases"]}
    print(f"band control: RTO haproxy {res.rto_s.get('haproxy')}, haproxy_up {phases.get('haproxy_up')} s after the "
          f"fault, new timeline {phases.get('new_timeline')}\nnotes: {res.notes}\n{report(res)}")
    flagged = [n for n in res.notes if n.startswith("haproxy_up came")]
    assert flagged, f"haproxy's slowed checks were not flagged: {res.notes}\n{report(res)}"
    # the VIP path does not go through haproxy: its parts and its RTO stay inside their bands
    assert not [n for n in res.notes if n.startswith(("rw_vip_moved came", "RTO vip "))], res.notes
    assert res.gate_after and all(f["ok"] for f in res.gate_after), report(res)
