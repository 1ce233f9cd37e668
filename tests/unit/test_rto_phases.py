"""The failover's phases from a drill's evidence, and the band Patroni's settings predict."""
from __future__ import annotations

from lab.exercises.observe import band, phases

NODES = {"pg1": "node1", "pg2": "node2", "pg3": "node3"}


def sample(t, primary, timeline, vip_on):
    members = {m: {"outcome": "primary" if m == primary else "replica", "timeline": timeline if m == primary else 1}
               for m in NODES}
    if primary is None:
        members["pg1"]["outcome"] = "stopped"
    return {"type": "sample", "t": t, "members": members, "vips": {"read_write": vip_on, "read_only": ["node3"]}}


def killed_leader_run(*, with_dcs=True, with_haproxy=True):
    ev = [sample(1.0, "pg1", 1, ["node1"]),
          {"type": "dcs", "t": 1.5, "leader": "pg1", "ttl_left": 26.0},
          {"type": "mark", "t": 2.0, "name": "fault", "label": "kill -9 patroni on node1"},
          {"type": "write", "t": 2.1, "path": "vip", "ok": True, "id": 7, "timeline": 1},
          {"type": "dcs", "t": 10.0, "leader": "pg1", "ttl_left": 17.5},
          sample(12.0, None, 1, ["node1"]),
          {"type": "dcs", "t": 24.0, "leader": "pg2", "ttl_left": 30.0},
          {"type": "patroni", "t": 24.5, "leader": "pg2", "members": []},
          sample(25.0, "pg2", 2, ["node2"]),
          {"type": "write", "t": 25.3, "path": "vip", "ok": True, "id": 9, "timeline": 2},
          {"type": "haproxy", "t": 29.0, "primary": {"pg1": "DOWN", "pg2": "UP", "pg3": "DOWN"}},
          {"type": "write", "t": 29.2, "path": "haproxy", "ok": True, "id": 10, "timeline": 2}]
    return [e for e in ev if (with_dcs or e["type"] != "dcs") and (with_haproxy or e["type"] != "haproxy")]


def by_name(found):
    return {p.name: p for p in found}


def test_every_phase_of_a_key_expiry_failover_is_read_from_the_evidence():
    got = by_name(phases.derive(killed_leader_run(), ttl=30, node_of=NODES))
    assert {n: p.t for n, p in got.items()} == {
        "fault": 0.0, "key_renewed": -4.5, "key_expired": 22.0, "new_leader": 22.5, "new_timeline": 23.0,
        "rw_vip_moved": 23.0, "haproxy_up": 27.0, "first_write_haproxy": 27.2, "first_write_vip": 23.3}
    assert "pg2" in got["new_leader"].seen and "timeline 2" in got["new_timeline"].seen


def test_a_phase_missing_from_the_evidence_is_unknown_not_zero():
    got = by_name(phases.derive(killed_leader_run(with_dcs=False, with_haproxy=False), ttl=30, node_of=NODES))
    for name in ("key_renewed", "key_expired", "haproxy_up"):
        assert got[name].t is None and not got[name].known, name
        assert got[name].seen.startswith("no "), got[name].seen
    assert got["new_timeline"].t == 23.0            # the others are still read


def test_a_run_without_a_fault_has_every_phase_unknown():
    found = phases.derive([sample(1.0, "pg1", 1, ["node1"])], ttl=30, node_of=NODES)
    assert found and all(p.t is None and p.seen == "the run has no fault mark" for p in found)


def test_a_key_that_never_expires_is_said_so():
    ev = [e for e in killed_leader_run() if not (e["type"] == "dcs" and e["leader"] == "pg2")]
    assert by_name(phases.derive(ev, ttl=30, node_of=NODES))["key_expired"].t is None


ARTICLE = band.Settings(ttl=30, loop_wait=10, retry_timeout=10, haproxy_inter=3, haproxy_rise=2)


def test_haproxys_check_settings_are_read_from_its_configuration():
    cfg = "listen pgsql\n    bind *:5000\n    default-server inter 3s fall 3 rise 2\nlisten pgsql_read\n    server a 1:1 check inter 500ms rise 4\n"
    assert band.haproxy_checks(cfg, "pgsql") == (3.0, 2)
    assert band.haproxy_checks(cfg, "pgsql_read") == (0.5, 4)
    assert band.haproxy_checks(cfg, "other") is None


def test_the_key_expiry_band_follows_ttl_and_loop_wait():
    b = band.predict(band.Ending.KEY_EXPIRY, ARTICLE)
    assert (b["vip"].low, b["vip"].high) == (18.8, 44.7)
    assert (b["haproxy"].low, b["haproxy"].high) == (21.8, 49.2)
    longer = band.predict(band.Ending.KEY_EXPIRY, band.Settings(ttl=60, loop_wait=10, retry_timeout=25))
    assert longer["vip"].low == b["vip"].low + 30 and longer["vip"].high == b["vip"].high + 30


def test_a_released_key_is_predicted_without_the_ttl():
    b = band.predict(band.Ending.RELEASE, ARTICLE)
    assert b["vip"].high < ARTICLE.ttl - ARTICLE.loop_wait


def test_a_measured_rto_outside_its_band_is_flagged_and_one_not_measured_is_not_counted_inside():
    b = band.predict(band.Ending.KEY_EXPIRY, ARTICLE)
    assert band.outside({"vip": 23.3, "haproxy": 27.2}, b) == []
    # haproxy's checks slowed to inter 10 s, rise 3 while the band is still computed from inter 3 s, rise 2
    notes = band.outside({"vip": 23.3, "haproxy": 30.0 + 3 * 10 + 0.2}, b)
    assert len(notes) == 1 and notes[0].startswith("RTO haproxy 60.2 s is above the band")
    assert band.outside({"vip": None}, {"vip": b["vip"]}) == [
        "RTO vip: not measured, so not compared with the band 18.8-44.7 s"]


def test_repeated_runs_give_nearest_rank_quantiles_and_keep_the_unknown_apart():
    from lab.exercises.observe import repeats

    runs = [{"drill": "d", "verdict": "pass", "rto_s": {"vip": v}, "writes": {"lost": 0},
             "failover": {"phases": [{"name": "key_expired", "t": v - 3 if v else None}], "band": {}}, "notes": []}
            for v in (22.0, 25.0, None, 21.0)]
    s = repeats.summarize(runs)
    assert s["rto_s"]["vip"] == {"n": 3, "unknown": 1, "min": 21.0, "p50": 22.0, "p95": 25.0, "max": 25.0}
    assert s["phases"]["key_expired"]["unknown"] == 1 and s["lost"] == 0
    runs[1]["writes"]["lost"] = None
    assert repeats.summarize(runs)["lost"] is None and repeats.summarize(runs)["lost_uncounted"] == 1
    assert any(line.startswith("RTO vip") for line in repeats.lines(s))



def test_each_part_of_the_failover_is_judged_against_the_setting_that_decides_it():
    fine = {"key_expired": 20.0, "new_leader": 20.3, "new_timeline": 20.6, "rw_vip_moved": 20.6, "haproxy_up": 25.0}
    assert band.gaps_outside(fine, ARTICLE) == []
    slow_haproxy = {**fine, "haproxy_up": 36.6}            # checks losing connections: 16 s after the promotion
    notes = band.gaps_outside(slow_haproxy, ARTICLE)
    assert notes == ["haproxy_up came 16 s after new_timeline; haproxy's checks (inter 3 s, rise 2) predict 2-7 s"]
    late_race = {**fine, "new_leader": 35.0, "new_timeline": 35.2, "rw_vip_moved": 35.3, "haproxy_up": 40.0}
    assert [n.split(";")[0] for n in band.gaps_outside(late_race, ARTICLE)] == ["new_leader came 15 s after key_expired"]
    assert band.gaps_outside({"key_expired": None, "new_leader": 30.0}, ARTICLE) == []   # unknown: not judged
