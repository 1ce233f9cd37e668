"""Article §5, the table's replica rows: what Patroni does when something breaks on a replica.

Common thread: nothing that happens on a replica may disturb the leader; the
writer keeps writing through both read-write paths (RTO 0).
"""
from __future__ import annotations

from lab.exercises.api import steps as S
from lab.exercises.api.context import Lab
from lab.exercises.kit import actions as F
from lab.exercises.kit import ctl
from lab.exercises.kit.outcomes import Outcome
from lab.exercises.api.model import Drill, drill
from labcore import poll


@drill
class ReplicaPostgresStopped(Drill):
    name = "replica-pg-stop"
    commands = [
        'on a replica: sudo -u postgres /usr/lib/postgresql/15/bin/pg_ctl stop -D /pgsql/data -m fast',
        'anywhere: patronictl -c /etc/patroni list   # watch it come back',
    ]
    section = "§5 table, row 1 (备库PG停止)"
    summary = "Stop PostgreSQL on a replica behind Patroni's back; Patroni starts it again."
    story = """\
A replica's PostgreSQL stops (a crash, or someone ran pg_ctl stop). Patroni on that
node is still running: on its next HA loop (every loop_wait seconds) it finds
PostgreSQL down and starts it again as a replica of the current leader. The leader
is never involved, so writes go on without a pause."""
    expected = "PostgreSQL on the replica answers again within about one loop_wait and streams again; the leader and the writes are untouched."
    differs = ("The table's wording (Patroni action: '停止备库PG') reads as if the replica stays down. "
               "Patroni 4 starts it again on the next HA loop; the drill verifies that.")
    lossless = rto_zero = True

    def run(self, lab: Lab) -> None:
        leader, replica = lab.leader(), lab.replicas()[0]
        t = lab.timing()
        lab.step("Who is who", f"Leader: {leader}. The replica we break: {replica}.")
        lab.inject(F.stop_postgres(lab.facts, replica, lab.probe.postgres_up))
        bound = t.loop_wait + 30
        lab.expect_outcomes({replica: Outcome.REPLICA}, f"Patroni starts PostgreSQL on {replica} again, as a replica",
                            within=bound)
        lab.within_bound("restarted_after_s", lab.fault_to_last_met(), bound, "loop_wait (the next HA loop) + 30 s margin")
        S.rejoined(lab, replica, within=60, how=f"streams from {leader} again")
        S.leader_unchanged(lab, leader, 5)


@drill
class ReplicaPatroniStopped(Drill):
    name = "replica-patroni-stop"
    commands = [
        'on a replica: sudo systemctl stop patroni',
        'on the same replica, to undo: sudo systemctl start patroni',
    ]
    section = "§5 table, row 2 (停止备库Patroni)"
    summary = "Stop Patroni on a replica cleanly; it stops its PostgreSQL too, the leader is untouched."
    story = """\
`systemctl stop patroni` on a replica. A cleanly stopping Patroni takes its
PostgreSQL down with it (article §5.1, point 3: a node without a running Patroni
must not serve as if nothing happened). The replica leaves the cluster; the
leader and the writes do not notice."""
    expected = "PostgreSQL on the replica stops within seconds; the leader stays writable; after `systemctl start patroni` the replica streams again."
    differs = "Same in Patroni 4."
    lossless = rto_zero = True

    def run(self, lab: Lab) -> None:
        leader, replica = lab.leader(), lab.replicas()[0]
        lab.step("Who is who", f"Leader: {leader}. The replica we stop: {replica}.")
        lab.inject(F.stop_patroni(lab.facts, replica))
        lab.expect_outcomes({replica: Outcome.STOPPED}, f"PostgreSQL on {replica} is stopped with its Patroni",
                            within=30)
        lab.measure("postgres_stopped_after_s", lab.fault_to_last_met())
        S.leader_unchanged(lab, leader, 10)
        S.undo_then_rejoined(lab, replica, within=60, measure="rejoined_after_start_s",
                             how="streams again after Patroni starts")


@drill
class ReplicaPatroniKilled(Drill):
    name = "replica-patroni-kill"
    commands = [
        "on a replica: systemctl show -p Restart --value patroni   # the article's unit says no",
        'on a replica: sudo kill -9 $(systemctl show -p MainPID --value patroni)',
        "on the leader: sudo -u postgres psql -c 'select application_name, state from pg_stat_replication'",
        'undo: sudo systemctl reset-failed patroni; sudo systemctl start patroni',
    ]
    section = "§5 table, row 3 (强杀备库Patroni)"
    summary = "kill -9 Patroni on a replica; nothing happens: PostgreSQL keeps streaming."
    story = """\
Patroni on a replica dies without a chance to clean up (kill -9, or a crash).
Its PostgreSQL is a child that nobody stops, and a replica cannot accept writes
anyway, so Patroni's design is to do nothing: the replica keeps streaming from the
leader. Its member key in etcd expires after ttl seconds, so `patronictl list`
stops showing it, but the data keeps flowing.

The article's unit has Restart=no, so the killed Patroni stays dead until
someone starts it. A unit with Restart=on-failure (Debian's own package) would
restart it within a second; the drill says which one this lab has."""
    expected = "The replica's PostgreSQL stays in recovery and keeps streaming (visible in the leader's pg_stat_replication) for longer than ttl; the leader is untouched."
    differs = "Same in Patroni 4."
    lossless = rto_zero = True

    def run(self, lab: Lab) -> None:
        leader, replica = lab.leader(), lab.replicas()[0]
        t = lab.timing()
        restart = lab.facts.unit_restart(replica)
        lab.measure("patroni_unit_restart_policy", restart)
        if restart != "no":
            lab.note(f"the patroni unit on {lab.node_of(replica)} has Restart={restart}, not the article's "
                     "Restart=no: systemd restarts the killed Patroni at once")
        lab.step("Who is who", f"Leader: {leader}. The replica whose Patroni we kill: {replica}.")
        lab.inject(F.kill_patroni(lab.facts, replica))
        lab.hold(S.streams_from(lab, replica, leader),
                 f"{replica} stays a replica streaming from {leader}, with no Patroni", for_=t.ttl + 5, every=2)
        S.leader_unchanged(lab, leader, 3)
        S.undo_then_rejoined(lab, replica, within=60, measure="rejoined_after_start_s",
                             how="is a Patroni member again")


@drill
class ReplicaCutFromEtcd(Drill):
    name = "replica-etcd-cut"
    commands = [
        'on a replica: sudo iptables -I OUTPUT -d <etcd address> -p tcp --dport 2379 -j DROP',
        'undo: sudo iptables -D OUTPUT -d <etcd address> -p tcp --dport 2379 -j DROP',
    ]
    section = "§5 table, row 4 (备库无法连接etcd)"
    summary = "Cut a replica off from etcd; nothing happens: it keeps streaming."
    story = """\
The replica's Patroni cannot reach etcd (here: iptables drops what the node sends
to etcd's client port). It can no longer learn who leads, but a replica is no
danger to anyone: Patroni keeps PostgreSQL running as it is, and the replica keeps
streaming from the leader over the database network, which still works."""
    expected = "The replica stays in recovery and keeps streaming for longer than retry_timeout + loop_wait; the leader is untouched; when the rule is removed it is a member again."
    differs = "Same in Patroni 4 (with failsafe_mode off, the default)."
    lossless = rto_zero = True

    def run(self, lab: Lab) -> None:
        leader, replica = lab.leader(), lab.replicas()[0]
        t = lab.timing()
        lab.step("Who is who", f"Leader: {leader}. The replica we cut off from etcd: {replica}.")
        lab.inject(F.cut_from_etcd(lab.facts, replica))
        before = S.member_key(lab, replica)       # what its Patroni last wrote into etcd
        lab.hold(S.streams_from(lab, replica, leader),
                 f"{replica} stays a replica streaming from {leader}", for_=t.retry_timeout + t.loop_wait + 10,
                 every=2)
        # the cut was real: its Patroni has not written its member key since (it expired, or is unchanged)
        frozen = S.member_key(lab, replica)
        lab.expect(lambda: frozen in (None, before),
                   f"{replica}'s Patroni has not written its member key in etcd since the cut", within=1)
        lab.measure("member_key_expired_during_cut", frozen is None)
        S.leader_unchanged(lab, leader, 3)
        undone = lab.clock.monotonic()
        lab.undo()
        # measured from the undo to the moment its Patroni writes its member key again: the first sign that
        # it reaches etcd (GET /patroni's dcs_last_seen is no such sign: etcd3's watch cache refreshes it)
        lab.expect(lambda: S.member_key(lab, replica) not in (None, frozen),
                   f"{replica}'s Patroni writes its member key in etcd again", within=t.loop_wait + 30)
        lab.measure("rejoined_after_undo_s", lab.since_t(undone))
        S.rejoined(lab, replica, within=60, how="is a streaming member again")


@drill
class RoguePrimary(Drill):
    name = "replica-rogue-primary"
    commands = [
        'on a replica: sudo -u postgres /usr/lib/postgresql/15/bin/pg_ctl promote -D /pgsql/data',
        "on it: sudo -u postgres psql -c 'select pg_is_in_recovery()'   # false, then true again",
        'on it: sudo journalctl -u patroni -f   # the demotion and pg_rewind',
    ]
    section = "§5 table, row 5; §5.1 point 1 (非Leader角色但是PG处于生产模式)"
    summary = "Promote a replica's PostgreSQL by hand; Patroni turns it back into a replica."
    story = """\
Someone runs `pg_ctl promote` on a replica: now a PostgreSQL that does not hold
the leader key accepts writes. Patroni's loop compares the role PostgreSQL plays
with the role the DCS gives the node, finds a primary without the leader key,
and demotes it: it restarts PostgreSQL in recovery mode and, because the promoted
node started a new timeline, rewinds it (use_pg_rewind) so it can follow the
leader again. The applications never saw the rogue primary: the read-write VIP
and haproxy follow the leader key, not pg_is_in_recovery()."""
    expected = ("The promoted node is back in recovery within a few HA loops; the leader, the VIP and the writes are "
                "untouched; the watch sees two primaries only for the rogue window. It streams again after pg_rewind, "
                "or after a reinit when Patroni demoted it before its new timeline reached pg_control.")
    differs = ("Same in Patroni 4. Measured here: when Patroni demotes the node before the promotion's checkpoint "
               "completes, pg_control still shows the old timeline, no pg_rewind runs, and PostgreSQL refuses to "
               "follow ('highest timeline 1 of the primary is behind recovery timeline 2'); the drill then "
               "rebuilds it with `patronictl reinit` and reports that it had to.")
    split_brain = None   # the fault itself is a second primary; the drill measures how long it lives
    lossless = rto_zero = True

    def run(self, lab: Lab) -> None:
        leader, replica = lab.leader(), lab.replicas()[0]
        t = lab.timing()
        lab.step("Who is who", f"Leader: {leader}. The replica we promote by hand: {replica}.")
        lab.inject(F.promote_postgres(lab.facts, replica, lab.probe.in_recovery))
        took = lab.expect(lambda: lab.probe.in_recovery(replica) is True,
                          f"Patroni puts {replica} back into recovery", within=2 * t.loop_wait + 40)
        lab.measure("rogue_primary_lived_s", took)
        streams = poll.until(S.streams(lab, replica), lab.bound(t.loop_wait * 4 + 20), 2.0,
                             lab.clock)[0]
        # Streaming is not yet rejoined: without a rewind the node keeps the new timeline's history and
        # refuses the leader at its next reconnect (seen in CI: the next drill's primary restart).
        forked = lab.probe.forked_replicas(leader, [replica]) if streams else {}
        unknown = replica in forked and None in forked[replica]
        lab.measure("rejoined_without_help", None if unknown else (streams and not forked))
        if unknown:
            lab.note(f"{replica} streams from {leader}, but whether it holds a newer timeline's history could "
                     f"not be read ({lab.probe.describe_fork(replica, *forked[replica])}); rebuilding it with "
                     "reinit so that the next drill does not depend on it")
        elif forked:
            lab.note(f"{replica} streams from {leader} but holds timeline {forked[replica][0]}'s history while the "
                     f"leader is on timeline {forked[replica][1]}: no pg_rewind ran, and it would refuse the "
                     "leader at its next reconnect; rebuilding it with reinit")
        elif not streams:
            # Seen in the lab: demoted before the promotion's (spread) checkpoint, pg_control still says
            # timeline 1, Patroni sees no divergence and does not rewind; PostgreSQL then refuses the
            # primary: "highest timeline 1 of the primary is behind recovery timeline 2".
            lab.note(f"{replica} is back in recovery but cannot follow {leader}: its pg_control did not yet show "
                     "the new timeline when Patroni demoted it, so no pg_rewind ran; rebuilding it with reinit")
        if forked or not streams:
            lab.command(lab.node_of(leader), ctl.reinit(lab.topo.cluster.scope, replica))
            lab.probe.rest(replica, "/reinitialize", method="POST", body={"force": True}, timeout=10)
        S.rejoined(lab, replica, within=180, how=f"streams from {leader} again")
        S.leader_unchanged(lab, leader, 3)
        holders = lab.probe.vip_holders()["read_write"]
        lab.measure("read_write_vip_holders", holders)
