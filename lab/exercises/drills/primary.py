"""Article §5, the table's primary rows: what Patroni does when something breaks on the leader."""
from __future__ import annotations

from lab.exercises.api import steps as S
from lab.exercises.api.context import Lab
from lab.exercises.kit import actions as F
from lab.exercises.kit.outcomes import Outcome
from lab.exercises.api.model import Drill, NotApplicable, drill


SLOW_START_TIMEOUT = 20   # primary_start_timeout for part 2: the article's 300 s, shortened to fit a drill
GAVE_UP = "startup is taking too long"   # Patroni's log line when it stops waiting for the start


@drill
class PrimaryPostgresStopped(Drill):
    name = "primary-pg-stop"
    commands = [
        'on the leader: sudo -u postgres /usr/lib/postgresql/15/bin/pg_ctl stop -D /pgsql/data -m fast',
        "anywhere: patronictl -c /etc/patroni edit-config -s 'primary_start_timeout=20' --force",
        'on the leader again: the same pg_ctl stop, and freeze the postmaster Patroni starts next (kill -STOP <pid in postmaster.pid>)',
        'on the leader: sudo journalctl -u patroni -f   # PostgreSQL is still starting up, N seconds until timeout',
        'on the leader, once Patroni gave up: sudo kill -CONT <that pid>; then patronictl list shows another leader',
        "undo: patronictl -c /etc/patroni edit-config -s 'primary_start_timeout=null' --force",
    ]
    section = "§5 table, row 6 (主库PG停止)"
    summary = "Stop PostgreSQL on the leader: Patroni restarts it; a start longer than primary_start_timeout fails over."
    story = """The leader's PostgreSQL stops while its Patroni keeps running and keeps the
leader key. Patroni's first choice is to start PostgreSQL again on the same node:
that keeps every replica following the same timeline and loses nothing. It gives
the start primary_start_timeout seconds (the article's master_start_timeout, 300
by default); a start that takes longer makes it give up the leader key so that a
replica takes over.

Part 1 stops PostgreSQL with the default timeout: same leader, a short outage.
Part 2 sets primary_start_timeout to 20 s and stops it again, and this time the
start hangs (the drill freezes the new postmaster before it accepts
connections, as a long crash recovery would): Patroni keeps the key while it
waits, then gives up and a replica is promoted."""
    expected = ("Part 1: the same leader is writable again within about one loop_wait. Part 2: Patroni starts "
                "PostgreSQL again and reports it starting; the leader keeps the key for primary_start_timeout; "
                "then Patroni gives up ('primary startup is taking too long') within primary_start_timeout + "
                "loop_wait of the start, another member becomes the writable leader, and the old leader rejoins as "
                "a replica.")
    differs = ("Patroni 4 calls the setting primary_start_timeout (master_start_timeout is the old name). The "
               "article's 300 s is shortened to 20 s to fit a drill. The slow start is a start the drill holds before "
               "PostgreSQL does anything; once Patroni has given up on it, the drill ends it, as Patroni's own "
               "stop of a start it gave up on would.")

    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        t = lab.timing()
        lab.step("Part 1: default primary_start_timeout", f"Leader: {leader}.")
        stopped = lab.inject(F.stop_postgres(lab.facts, leader, lab.probe.postgres_up))
        lab.expect(S.writable_leader(lab, leader),
                   f"Patroni restarts PostgreSQL on {leader}; it is the writable leader again",
                   within=t.loop_wait + 30)
        lab.within_bound("restart_same_leader_s", lab.since_t(stopped), t.loop_wait + 30,
                         "loop_wait (the next HA loop starts it) + 30 s margin")
        lab.expect(S.replicas_stream(lab, at_least=1), "the replicas stream again", within=60)

        timeout = SLOW_START_TIMEOUT
        lab.step(f"Part 2: primary_start_timeout = {timeout}, and a start that takes longer",
                 "Patroni waits that long for its PostgreSQL, then prefers a failover.")
        S.set_config(lab, **{lab.topo.patroni_release.start_timeout_key: timeout})   # master_ before Patroni 3.0
        since = S.node_epoch(lab, lab.node_of(leader))
        held = F.slow_start_postgres(lab.facts, leader, lab.probe.postgres_up)
        stopped = lab.inject(held)
        lab.expect(lambda: lab.probe.member_state(leader).get("state") == "starting",
                   f"Patroni starts PostgreSQL on {leader} again; it stays 'starting'", within=t.loop_wait + 15)
        began = lab.mark("start_began")
        lab.hold(lambda: lab.probe.leader() == leader,
                 f"{leader} keeps the leader key while its PostgreSQL starts", for_=timeout - 5, every=1)
        lab.expect(lambda: S.journal_mentions(lab, leader, GAVE_UP, since),
                   f"Patroni on {leader} gives up waiting ('primary {GAVE_UP}')", within=t.loop_wait + 20)
        lab.within_bound("gave_up_after_start_s", lab.since_t(began), timeout + t.loop_wait + 5,
                         "primary_start_timeout + loop_wait (the check runs once per loop) + 5 s margin")
        lab.undo(held)      # the held start ends, as Patroni's stop of a start it gave up on would
        S.new_primary_within(lab, leader, timeout + 2 * t.loop_wait + 40,
                             "the start is noticed within loop_wait, primary_start_timeout, the give-up within "
                             "loop_wait, promotion (+ 40 s margin)", since=stopped, key="failover_after_slow_start_s",
                             how=f"another member than {leader} is the writable leader")
        S.rejoined(lab, leader, within=120)


@drill
class PrimaryPatroniStopped(Drill):
    name = "primary-patroni-stop"
    ending = "release"
    commands = [
        'on the leader: sudo systemctl stop patroni',
        'anywhere: patronictl -c /etc/patroni list',
        'on the old leader, to undo: sudo systemctl start patroni',
    ]
    section = "§5 table, row 7 (停止主库Patroni)"
    summary = "Stop Patroni on the leader cleanly: it stops PostgreSQL and hands over; a replica takes over."
    story = """\
`systemctl stop patroni` on the leader. Patroni stops its PostgreSQL first (so
no write can land on a node that is no longer the leader), then deletes the
leader key instead of letting it expire. The replicas see the key gone and race
at once: the most up-to-date one is promoted, the read-write VIP moves with it
(on_role_change callback), and haproxy's health check on /primary follows."""
    expected = "The old leader's PostgreSQL is down within seconds; a replica is the writable leader within seconds (no ttl wait); the VIP follows; the old leader rejoins as a replica when Patroni starts again."
    differs = "Same in Patroni 4."

    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        t = lab.timing()
        lab.step("Who is who", f"Leader: {leader}.")
        lab.inject(F.stop_patroni(lab.facts, leader))
        lab.expect_outcomes({leader: Outcome.STOPPED}, f"PostgreSQL on {leader} is stopped with its Patroni",
                            within=30)
        new = S.new_primary_within(lab, leader, t.loop_wait + 20,
                                   "the key is released at once, so within one loop_wait + 20 s margin (no ttl wait)")
        lab.expect(lambda: lab.node_of(new) in lab.probe.vip_holders()["read_write"],
                   f"the read-write VIP is on {lab.node_of(new)} (on_role_change callback)", within=20, every=2)
        holders = lab.probe.vip_holders()["read_write"]
        lab.measure("read_write_vip_holders", holders)
        if lab.node_of(leader) in holders:
            lab.note(f"{lab.node_of(leader)} still holds the read-write VIP: the article's callback runs on "
                     "on_start/on_restart/on_role_change only, and a cleanly stopped Patroni calls none of them; "
                     "clients follow the new holder once their ARP cache takes its gratuitous ARP or expires "
                     "(see RTO via the VIP)")
        S.undo_then_rejoined(lab, leader, within=90, measure="old_leader_rejoined_s")


@drill
class PrimaryPatroniKilled(Drill):
    name = "primary-patroni-kill"
    ending = "key-expiry"
    commands = [
        'on the leader: systemctl show -p Restart --value patroni   # must be no, as in the article',
        'on the leader: sudo kill -9 $(systemctl show -p MainPID --value patroni)',
        "on every node: sudo -u postgres psql -c 'select pg_is_in_recovery()'   # two say f",
        'on every node: ip -o -4 addr show   # who holds the VIP',
        'undo: sudo systemctl reset-failed patroni; sudo systemctl start patroni   # demote + pg_rewind',
    ]
    section = "§5 table, row 8 (强杀主库Patroni → 双主); §5.1"
    summary = "kill -9 Patroni on the leader: a replica is promoted while the old PostgreSQL still accepts writes."
    story = """\
Patroni on the leader dies without cleaning up (kill -9 or a crash), and its
PostgreSQL keeps running as a primary: nobody tells it otherwise. The leader key
is no longer renewed, expires after ttl seconds, and a replica is promoted. For a
while two PostgreSQL instances accept writes: the "double primary" the article
warns of. The read-write VIP is added on the new leader while the old node still
holds it; haproxy moves, because its check asks Patroni's REST API, which died.
Writes acknowledged by the old primary in that window are lost when it comes back:
the restarted Patroni finds a primary without the key, demotes it and rewinds it
(pg_rewind) onto the new leader's timeline.

This needs the article's Restart=no unit. With Restart=on-failure, systemd would
restart Patroni at once, it would find its PostgreSQL still leading, and nothing
would happen. A watchdog (§5.1, drill watchdog-freeze) is what prevents the
double primary; this drill runs without one."""
    expected = "A new leader within about ttl + loop_wait; two primaries at once until the old Patroni returns; acknowledged writes on the old primary lost (measured, not fixed); the old leader rewound and streaming after Patroni starts."
    differs = ("Same in Patroni 4. It needs the article's Restart=no unit (the lab provisions it); where the unit "
               "restarts Patroni on failure (Debian's package) there is no failover to see, and the drill says it "
               "is not applicable.")
    split_brain = True

    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        t = lab.timing()
        restart = lab.facts.unit_restart(leader)
        lab.measure("patroni_unit_restart_policy", restart)
        S.watchdog_off_for(lab, leader)
        lab.step("Who is who", f"Leader: {leader}. Patroni's unit has Restart={restart}.")
        since = S.node_epoch(lab, lab.node_of(leader))
        if restart != "no":
            raise NotApplicable(f"Patroni's unit on {lab.node_of(leader)} has Restart={restart}, not the article's "
                                "Restart=no: systemd would restart the killed Patroni and nothing would fail over")
        lab.inject(F.kill_patroni(lab.facts, leader))
        lab.hold(S.outcomes_are(lab, {leader: [Outcome.PRIMARY]}),
                 f"PostgreSQL on {leader} keeps running as a primary without Patroni", for_=5)
        new = S.new_primary_within(lab, leader, t.ttl + t.loop_wait + 20,
                                   "ttl (the key expires) + loop_wait + 20 s margin",
                                   how="a replica is promoted once the leader key expires")
        lab.expect_outcomes({leader: Outcome.PRIMARY, new: Outcome.PRIMARY},
                            f"double primary: {leader} and {new} both primary", within=10)
        lab.measure("vip_holders_during_double_primary", lab.probe.vip_holders()["read_write"])
        lab.mark("rejoin")
        lab.undo()
        lab.expect_outcomes({leader: Outcome.REPLICA}, f"{leader} is demoted to a replica", within=t.loop_wait + 60)
        lab.measure("old_primary_demoted_after_start_s", lab.since("rejoin"))
        S.rejoined(lab, leader, within=120, how=f"streams from {new}")
        lab.measure("old_primary_rejoined_s", lab.since("rejoin"))
        lab.measure("pg_rewind_used", S.journal_mentions(lab, leader, "rewind", since))


@drill
class PrimaryCutFromEtcd(Drill):
    name = "primary-etcd-cut"
    ending = "key-expiry"
    commands = [
        'on the leader: sudo iptables -I OUTPUT -d <etcd address> -p tcp --dport 2379 -j DROP',
        'on the leader: sudo journalctl -u patroni -f   # demoting self',
        'undo: sudo iptables -D OUTPUT -d <etcd address> -p tcp --dport 2379 -j DROP',
    ]
    section = "§5 table, row 9 (主库无法连接etcd); §5.1 point 2"
    summary = "Cut the leader off from etcd: it demotes itself, then a replica takes over; never two primaries."
    story = """\
The leader's Patroni cannot reach etcd, so it cannot renew the leader key and
cannot know whether it still leads. After retry_timeout seconds of failed
attempts it stops acting as primary: it restarts its PostgreSQL read-only. The
key expires (ttl) a little later and a replica is promoted. Because the old
leader demotes itself before its key can expire (loop_wait + 2*retry_timeout <=
ttl), there is never a moment with two primaries."""
    expected = ("The old leader demotes itself to a replica within retry_timeout + loop_wait (+ 20 s margin); a "
                "replica is the writable leader within ttl + loop_wait (+ 30 s); the watch never sees two primaries; "
                "the old leader streams again after the rule is removed. Where the lab's watchdog fences the old "
                "leader instead of letting it demote, the verdict is differs, with the fencer's record.")
    differs = "Same in Patroni 4 (failsafe_mode off, the default; §5.3's failsafe drill shows the other choice)."

    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        t = lab.timing()
        lab.step("Who is who", f"Leader: {leader}.")
        lab.inject(F.cut_from_etcd(lab.facts, leader))
        bound = t.retry_timeout + t.loop_wait + 20
        seen = lab.expect_outcomes({leader: Outcome.REPLICA}, f"{leader} demotes itself to a replica", within=bound,
                                   explained={Outcome.FENCED: S.FENCED_INSTEAD_OF_DEMOTED})
        lab.within_bound("old_leader_demoted_after_s", lab.fault_to_last_met(), bound, "retry_timeout + loop_wait + 20 s")
        lab.measure("old_leader_outcome", str(seen[leader].outcome))
        S.new_primary_within(lab, leader, t.ttl + t.loop_wait + 30, "ttl (the key expires) + loop_wait + 30 s")
        # revive: a fenced node's Patroni was killed by its watchdog
        S.undo_then_rejoined(lab, leader, within=120, measure="old_leader_rejoined_s", revive=True)
