"""Write figures on synthetic attempt logs: outages, the surviving timeline, writes after the fork."""
from __future__ import annotations

from lab.exercises.observe.writes import (AFTER_FORK, KEPT, Survivor, WriteAttempt, parse_history, parse_lsn, path_figures,
                                  write_figures)

FORK = parse_lsn("0/5000060")
T_FAULT = 100.0


def w(path, i, at, ok=True, server=None, tl=None, lsn=None, error=None, latency=0.01):
    return WriteAttempt(path, i, at, at + latency, ok, server, tl, lsn, error)


def kill9_log():
    """primary-patroni-kill as a persistent client saw it: pg1 (TL1) kept acknowledging for 25 s after
    the fault, pg2 was promoted at +21 s (TL2 forked from TL1 at FORK), the VIP connection broke at
    +25 s, 0.3 s of refusals, then pg2 on TL2."""
    log, lsn = [], FORK - 2000
    at = lambda k: round(T_FAULT - 2 + k * 0.1, 3)     # one attempt every 0.1 s from 2 s before the fault
    for k in range(270):                                  # pg1 until +25 s
        lsn += 100
        log.append(w("vip", k + 1, at(k), server="pg1", tl=1, lsn=lsn))
    for k in range(270, 273):                             # +25.0 .. +25.2: refused
        log.append(w("vip", k + 1, at(k), ok=False, error="server closed the connection unexpectedly"))
    for k in range(273, 293):                             # from +25.3: pg2, timeline 2
        log.append(w("vip", k + 1, at(k), server="pg2", tl=2, lsn=FORK + 10_000 + k))
    return log


def test_history_files_are_parsed_into_fork_points():
    text = "1\t0/5000060\tno recovery target specified\n\n2\t0/7000000\tno recovery target specified\n"
    assert parse_history(text) == {1: FORK, 2: parse_lsn("0/7000000")}
    assert parse_lsn("1/0") == 1 << 32


def test_a_double_primary_counts_the_old_primarys_writes_after_the_fork():
    log = kill9_log()
    survivor = Survivor(2, {1: FORK})
    f = path_figures(log, T_FAULT, survivor)
    # pg1's writes with a position past the fork point are not in timeline 2's history
    after = [a for a in log if a.ok and a.timeline == 1 and a.lsn > FORK]
    assert f.after_fork == len(after) > 200
    assert f.servers["pg1"][AFTER_FORK] == len(after) and f.servers["pg2"] == {KEPT: 20}
    # the path refused writes for only 0.3 s, but it was 25.3 s before writes landed where they survive
    assert f.outage_s == 0.31           # first refusal sent to the next acknowledgement
    assert f.to_surviving_timeline_s == 25.31
    assert f.rto_s == 25.31
    assert f.longest_ack_gap_s == 0.4


def test_totals_compare_the_fork_count_with_the_ids_missing_at_the_end():
    log = kill9_log()
    acked = {a.id for a in log if a.ok}
    after = {a.id for a in log if a.ok and a.timeline == 1 and a.lsn > FORK}
    figures = write_figures(log, T_FAULT, survivor=Survivor(2, {1: FORK}), present=acked - after, counted_on="pg2")
    assert figures.lost == len(after) == figures.after_fork
    assert figures.lost_not_after_fork == [] and figures.after_fork_but_present == []
    assert figures.surviving_timeline == 2 and figures.forks == {"1": FORK}
    assert figures.paths["vip"].rto_s == 25.31


def test_a_replica_fault_keeps_rto_zero_and_nothing_after_a_fork():
    log = [w("vip", i, T_FAULT - 1 + i * 0.2, server="pg1", tl=1, lsn=1000 + i) for i in range(50)]
    f = path_figures(log, T_FAULT, Survivor(1, {}))
    assert f.rto_s == 0.0 and f.outage_s == 0.0 and f.after_fork == 0
    assert f.longest_ack_gap_s == 0.2
    assert f.to_surviving_timeline_s == 0.01


def test_a_per_transaction_path_reports_its_outage_and_an_open_one():
    log = [w("vip-per-txn", 1, 99.0, server="pg1", tl=1, lsn=10),
           w("vip-per-txn", 2, 101.0, ok=False, error="connection refused"),
           w("vip-per-txn", 3, 103.0, ok=False, error="connection refused"),
           w("vip-per-txn", 4, 108.0, server="pg2", tl=2, lsn=FORK + 1),
           w("vip-per-txn", 5, 110.0, ok=False, error="timeout")]
    f = path_figures(log, T_FAULT, Survivor(2, {1: FORK}))
    assert f.outages == [[1.0, 8.01], [10.0, None]] and f.open
    assert f.outage_s == 7.02                 # 7.01 + the open one up to the last attempt's end (0.01)
    assert f.rto_s is None                    # refused at the end: it never came back
    assert f.refused == 3


def test_writes_on_a_discarded_branch_are_after_the_fork():
    """A rogue promotion (timeline 3 from 1) that the surviving timeline 2 does not contain."""
    log = [w("vip", 1, 101.0, server="pg3", tl=3, lsn=FORK - 10), w("vip", 2, 102.0, server="pg1", tl=2, lsn=FORK + 5)]
    f = path_figures(log, T_FAULT, Survivor(2, {1: FORK}))
    assert f.after_fork == 1 and f.after_fork_ids == [1]


def test_without_a_surviving_timeline_nothing_is_classified_and_lost_is_not_zero():
    log = kill9_log()
    figures = write_figures(log, T_FAULT, survivor=None, present=None, uncounted_reason="no leader")
    assert figures.lost is None and figures.uncounted_reason == "no leader"
    assert figures.after_fork is None
    p = figures.paths["vip"]
    assert p.classified is False and p.after_fork is None and p.unclassified == p.acknowledged
    assert p.rto_s == 25.31        # judged by refusals only: back after the 0.3 s of refused writes


def test_a_write_without_timeline_is_unclassified_not_kept():
    log = [w("vip", 1, 101.0, server="pg1")]
    f = path_figures(log, T_FAULT, Survivor(2, {1: FORK}))
    assert f.unclassified == 1 and f.after_fork == 0


def test_the_write_event_has_the_contract_keys():
    ev = w("vip", 7, 1.0, server="pg2", tl=2, lsn=5).event()
    assert {"path", "ok", "id", "latency_s", "server", "timeline", "error"} <= set(ev)
    assert ev["latency_s"] == 0.01


def test_an_outage_of_the_restore_ends_the_rto_only_when_the_restore_is_not_meant_to_move_the_leader():
    """Two clean switchovers: the drill's at +10 s (TL1 -> TL2), the restore's at +30 s (TL2 -> TL3).
    Counted to the end, the RTO is the restore's; with ``rto_until`` at the restore mark (+25 s) it is
    the drill's own, and both outages stay listed."""
    survivor = Survivor(3, {1: FORK, 2: FORK + 50_000})
    log = [w("vip", k, T_FAULT + k * 0.5, server="pg1", tl=1, lsn=FORK - 5000 + k) for k in range(20)]        # to +9.5
    log += [w("vip", 20 + k, T_FAULT + 10 + k * 0.5, ok=False) for k in range(3)]                               # +10..+11
    log += [w("vip", 30 + k, T_FAULT + 11.5 + k * 0.5, server="pg2", tl=2, lsn=FORK + 100 + k) for k in range(37)]  # to +29.5
    log += [w("vip", 70 + k, T_FAULT + 30 + k * 0.5, ok=False) for k in range(2)]                               # +30..+30.5
    log += [w("vip", 80 + k, T_FAULT + 31 + k * 0.5, server="pg3", tl=3, lsn=FORK + 60_000 + k) for k in range(5)]
    whole = path_figures(log, T_FAULT, survivor)
    assert whole.rto_s == 31.01 and len(whole.outages) == 2
    own = path_figures(log, T_FAULT, survivor, rto_until=T_FAULT + 25)
    assert own.rto_s == 11.51 and own.outages == whole.outages and own.after_fork == 0
