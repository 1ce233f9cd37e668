"""The band's negative control: haproxy's checks made lossy on purpose while haproxy.cfg still says
inter 3 s, rise 2. The haproxy path then comes back later than the settings predict, and the result
must say so in its notes (lab/exercises/observe/band.py), whatever the drill's verdict."""
from __future__ import annotations

import pytest

from lab.exercises import DRILLS
from lab.exercises.run.controls import haproxy_checks_lossy

from drill_verdicts import drill_run, report, run_live, topo  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.live, pytest.mark.drills]


def test_slowed_haproxy_checks_put_the_haproxy_rto_outside_the_band_and_say_so(topo, drill_run):
    res = run_live(topo, DRILLS["primary-patroni-kill"], drill_run, before=haproxy_checks_lossy)
    band = res.failover["band"]["haproxy"]
    rto = res.rto_s.get("haproxy")
    print(f"band control: RTO haproxy {rto} against {band['low']}-{band['high']} s\n{report(res)}")
    flagged = [n for n in res.notes if n.startswith("RTO haproxy") and "band" in n]
    assert flagged, f"no band note for RTO haproxy {rto} (band {band}):\n{report(res)}"
    assert rto is None or rto > band["high"], (rto, band)
    # the VIP path does not go through haproxy: its RTO stays inside its own band
    assert not [n for n in res.notes if n.startswith("RTO vip ")], res.notes
    assert res.gate_after and all(f["ok"] for f in res.gate_after), report(res)
