"""The watch: concurrent sampling, a cadence it keeps, every error kept, and a rule for when it was blind."""
from __future__ import annotations

import threading

from lab.exercises.kit.outcomes import MemberState, Outcome
from lab.exercises.observe.watch import Watch, WatchRule, WatchSample, blind_reason, summarize, with_lag

from fake_clock import FakeClock

MEMBERS = ["pg1", "pg2", "pg3"]
NODES = ["node1", "node2", "node3", "node4"]


def primary(m, tl=1, lsn=1000):
    return MemberState(m, Outcome.PRIMARY, timeline=tl, lsn=lsn)


def replica(m, tl=1, lsn=900):
    return MemberState(m, Outcome.REPLICA, timeline=tl, lsn=lsn)


def sample(i, at, prim=("pg1",), took=0.05, vips=None, errors=None):
    members = {m: primary(m) if m in prim else replica(m) for m in MEMBERS}
    return WatchSample(i, at, took, members, vips, {}, errors or {})


def test_members_and_vip_nodes_are_sampled_at_the_same_time():
    """Every probe of a cycle waits at a barrier for all the others: one at a time, it would break."""
    barrier = threading.Barrier(len(MEMBERS) + len(NODES), timeout=5)

    def probe(m):
        barrier.wait()
        return primary(m) if m == "pg1" else replica(m)

    def vips(node):
        barrier.wait()
        return {"read_write"} if node == "node1" else set()

    w = Watch(MEMBERS, probe, vip_nodes=NODES, vip_probe=vips, vip_roles=["read_write", "read_only"], deadline=10)
    s = w.cycle()
    assert s.complete and not w.errors
    assert s.primaries == ["pg1"]
    assert s.vips == {"read_write": ["node1"], "read_only": []}
    assert s.members["pg2"].lag_bytes == 100


def test_a_member_that_does_not_answer_is_unreachable_and_not_asked_twice():
    release = threading.Event()
    calls = []

    def probe(m):
        calls.append(m)
        if m == "pg3":
            release.wait(10)
        return replica(m)

    w = Watch(MEMBERS, probe, deadline=0.05)
    s1 = w.cycle()
    assert s1.members["pg3"].outcome == Outcome.UNREACHABLE
    assert "no answer within 0.05 s" in s1.members["pg3"].error
    assert s1.complete            # a member that does not answer is a fact about it, not a watch failure
    s2 = w.cycle()
    assert "still waiting" in s2.members["pg3"].error
    assert calls.count("pg3") == 1
    release.set()
    w._pending["member:pg3"][0].result(timeout=5)
    assert w.cycle().members["pg3"].outcome == Outcome.REPLICA
    w.stop()


def test_probe_errors_are_kept_as_evidence_and_count_against_the_watch():
    events = []

    def probe(m):
        if m == "pg2":
            raise RuntimeError("bug in the probe")
        return replica(m)

    w = Watch(MEMBERS, probe, record=lambda type, at, **f: events.append((type, f)))
    s = w.cycle()
    assert not s.complete and "bug in the probe" in s.probe_errors["pg2"]
    assert [t for t, _ in events] == ["sample", "sample_error"]
    assert events[0][1]["members"]["pg2"]["outcome"] == "unreachable"
    assert "bug in the probe" in events[1][1]["error"]
    assert w.errors


def test_cycles_start_every_interval_and_a_slow_cycle_is_not_followed_by_a_sleep():
    clock = FakeClock()
    slow = {2}

    def probe(m):
        if m == "pg1" and len(w.samples) in slow:
            clock.now += 1.2       # this cycle takes 1.2 s
        return replica(m)

    w = Watch(MEMBERS, probe, interval=0.5, clock=clock.monotonic, sleep=clock.sleep, deadline=5)
    w.run(cycles=5)
    starts = [s.at for s in w.samples]
    assert starts == [0.0, 0.5, 1.0, 2.2, 2.7]
    assert clock.sleeps == [0.5, 0.5, 0.5]        # no sleep after the slow cycle
    summary = w.summary(start=0.0, end=3.0)
    assert summary.longest_gap_s == 1.2
    assert summary.missed_cycles == 1           # 6 slots in 3 s, 5 samples


def test_the_summary_measures_gaps_double_primaries_and_vips_held_twice():
    samples = [sample(0, 0.0), sample(1, 0.5, prim=("pg1", "pg2")), sample(2, 1.0, prim=("pg1", "pg2")),
               sample(3, 1.5), sample(4, 4.5, vips={"read_write": ["node1", "node2"], "read_only": ["node3"]}),
               sample(5, 5.0)]
    s = summarize(samples, [], start=0.0, end=5.0, interval=0.5)
    assert s.samples == 6 and s.samples_per_s == 1.2
    assert s.longest_gap_s == 3.0
    assert s.expected_cycles == 10 and s.missed_cycles == 4
    assert s.max_primaries_at_once == 2 and s.double_primary
    assert s.double_primary_members == ["pg1", "pg2"]
    assert s.double_primary_seconds == 1.0     # from the first double sample to the next single one
    assert s.first_double_primary_at == 0.5
    assert s.vip_held_twice == {"read_write": ["node1", "node2"]}
    assert s.outcomes_seen["pg2"] == {"replica": 4, "primary": 2}


def test_the_rule_a_gap_over_two_seconds_or_too_many_missed_cycles_is_blind():
    rule = WatchRule(max_missed_share=0.2, max_gap_s=2.0)
    steady = [sample(i, i * 0.5) for i in range(21)]
    assert blind_reason(summarize(steady, [], start=0.0, end=10.0, interval=0.5), rule) is None
    gap = [s for s in steady if not 3.0 < s.at < 5.5]        # nothing between 3.0 and 5.5: 2.5 s
    why = blind_reason(summarize(gap, [], start=0.0, end=10.0, interval=0.5), rule)
    assert why and "saw nothing for 2.5 s from t=3 s" in why        # where the stretch began
    sparse = steady[::2]                                      # one cycle per second: half missed, gap 1 s
    why = blind_reason(summarize(sparse, [], start=0.0, end=10.0, interval=0.5), rule)
    assert why and "missed 9 of 20 cycles" in why and "saw nothing" not in why
    broken = [sample(i, i * 0.5, errors={"pg1": "x"} if i % 3 == 0 else None) for i in range(21)]
    why = blind_reason(summarize(broken, [], start=0.0, end=10.0, interval=0.5), rule)
    assert why and "missed 6 of 20" in why    # 7 of 21 samples had a probe error: they do not count


def test_a_window_of_few_cycles_is_not_blind_for_a_late_sample_or_two():
    """rest-api's window lasts 1-2 s: 1 of 2 or 2 of 4 cycles missed is not a blind watch, while the
    same share over a 10 s window is, and a short window with no sample at all still is."""
    rule = WatchRule(max_missed_share=0.2, max_gap_s=2.0)
    assert blind_reason(summarize([sample(0, 0.1)], [], start=0.0, end=1.0, interval=0.5), rule) is None
    # CI: rest-api's window of 2.04 s, 2 of 4 cycles late, longest gap under 2 s
    late = [sample(0, 0.1), sample(1, 1.6)]
    assert blind_reason(summarize(late, [], start=0.0, end=2.04, interval=0.5), rule) is None
    sparse = [sample(i, i * 1.0) for i in range(11)]
    assert "missed" in (blind_reason(summarize(sparse, [], start=0.0, end=10.0, interval=0.5), rule) or "")
    assert "no sample" in (blind_reason(summarize([], [], start=0.0, end=1.0, interval=0.5), rule) or "")


def test_lag_needs_one_primary_on_the_same_timeline():
    one = with_lag({"pg1": primary("pg1", lsn=5000), "pg2": replica("pg2", lsn=4000),
                    "pg3": replica("pg3", tl=2, lsn=100)})
    assert one["pg2"].lag_bytes == 1000 and one["pg3"].lag_bytes is None and one["pg1"].lag_bytes is None
    two = with_lag({"pg1": primary("pg1"), "pg2": primary("pg2"), "pg3": replica("pg3")})
    assert two["pg3"].lag_bytes is None


def test_start_and_stop_in_a_thread_keep_every_sample_and_the_servers_identity():
    w = Watch(MEMBERS, lambda m: MemberState(m, Outcome.REPLICA, started=f"boot-{m}"), interval=0.01)
    w.start()
    got = threading.Event()
    w.record = lambda type, at, **f: got.set() if len(w.samples) >= 3 else None
    assert got.wait(5)
    w.stop()
    n = len(w.samples)
    assert n >= 3 and [s.cycle for s in w.samples] == list(range(n))
    assert w.server_of("boot-pg2") == "pg2" and w.server_of("other") is None


def test_a_slow_patroni_view_does_not_stretch_the_cycle_and_is_kept_when_it_answers():
    answer = threading.Event()
    events = []

    def view():
        answer.wait(10)
        return {"leader": "pg1", "members": []}

    clock = FakeClock()
    w = Watch(MEMBERS, lambda m: replica(m), patroni_view=view, patroni_every=1, deadline=5, clock=clock.monotonic,
              record=lambda type, at, **f: events.append((type, at)))
    w.cycle()                       # the view is asked at 0.0 and does not answer yet
    assert [t for t, _ in events] == ["sample"]
    clock.now = 0.5
    w.cycle()                       # still pending: not asked twice, the cycle does not wait for it
    answer.set()
    w._pending["patroni"][0].result(timeout=5)
    clock.now = 1.0
    w.cycle()
    assert events.index(("patroni", 0.0)) > events.index(("sample", 0.5))    # kept at the moment it was asked
    assert w.patroni[0] == (0.0, {"leader": "pg1", "members": []})
    w.stop()


def test_the_etcd_and_haproxy_views_are_recorded_and_a_failed_one_is_not_held_against_the_watch():
    events = []

    def etcd_down():
        raise ConnectionError("etcd does not answer")

    w = Watch(MEMBERS, replica, views={"dcs": lambda: {"leader": "pg1", "ttl_left": 27.0}, "haproxy": etcd_down},
              record=lambda type, at, **f: events.append((type, f)))
    w.cycle()                                 # asks the views (every second cycle)
    for f, _ in list(w._pending.values()):
        f.result(timeout=5) if f.exception(timeout=5) is None else None
    w.cycle()                                 # records what they answered
    w.stop()
    by_type = {t: f for t, f in events}
    assert by_type["dcs"] == {"leader": "pg1", "ttl_left": 27.0}
    assert by_type["view_error"]["view"] == "haproxy" and "etcd does not answer" in by_type["view_error"]["error"]
    assert "haproxy" not in by_type and w.errors == []
