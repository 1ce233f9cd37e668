"""Article §5.2: synchronous replication as the brain-split protection that does not depend on a watchdog."""
from __future__ import annotations

from lab.exercises.api import steps as S
from lab.exercises.api.context import Lab
from lab.exercises.kit.outcomes import Outcome
from lab.exercises.kit import actions as F
from lab.exercises.kit import sql
from lab.exercises.api.model import Drill, ExpectationFailed, NotApplicable, drill


@drill
class SyncMode(Drill):
    name = "sync-mode"
    commands = [
        "anywhere: patronictl -c /etc/patroni edit-config -s 'synchronous_mode=true' --force",
        'on the etcd node: etcdctl get /service/pgsql/sync',
        'on the sync standby, then on the other replica: sudo systemctl stop patroni',
        "anywhere: patronictl -c /etc/patroni edit-config -s 'synchronous_mode_strict=true' --force",
        "a client: psql -h <rw VIP> -c 'insert ...'   # waits",
    ]
    section = "§5.2 (synchronous_mode, synchronous_mode_strict)"
    summary = "Turn on synchronous mode; lose sync standbys one by one: async fallback, then strict mode blocks writes."
    story = """\
`patronictl edit-config -s synchronous_mode=true`: Patroni picks a synchronous
standby, sets synchronous_standby_names on the primary and records the pair in
etcd's /sync key. If the standby goes away, Patroni picks another replica; when
none is left it falls back to asynchronous replication (sync_standby: null) so
writes go on, a bit like MySQL's semi-sync but decided by Patroni, not by a
timeout. With synchronous_mode_strict the fallback is forbidden: with no
synchronous standby the primary's commits wait, so every acknowledged write is on
two nodes."""
    expected = ("The key names leader and standby; stopping it moves the role to the other replica; stopping that one "
                "too shows sync_standby: null while writes commit; in strict mode synchronous_standby_names becomes "
                "'*' and writes wait (not acknowledged) until a replica returns. No acknowledged write lost.")
    differs = ("Same in Patroni 4. Measured in this lab: with strict mode and no member left, '*' also matches the "
               "standby cluster's replica on node4 (§8.2), which then confirms every commit; the drill stops it to "
               "show the wait, and reports that it confirmed.")
    lossless = True

    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        first = S.enable_sync(lab, leader)
        lab.step("Who is who", f"Leader: {leader}. Synchronous standby: {first}.")
        last_replica = F.stop_patroni(lab.facts, first)
        stopped = lab.inject(last_replica)
        others = [r for r in lab.replicas() if r != first]
        if others:
            took = lab.expect(lambda: S.sync_standby(lab) in others, "another replica becomes the synchronous standby",
                              within=40)
            lab.measure("new_sync_standby_after_s", took)
            second = S.sync_standby(lab)
            last_replica = F.stop_patroni(lab.facts, second)
            stopped = lab.inject(last_replica)
        lab.expect(lambda: S.sync_key(lab).get("leader") == leader and not S.sync_standby(lab),
                   "the /sync key shows sync_standby: null", within=40)
        # from the moment the last standby's Patroni was told to stop, not from when the drill began to look
        lab.measure("degraded_to_async_after_s", lab.since_t(stopped))
        lab.expect(lambda: S.vip_commit(lab)[0], "writes through the VIP still commit (asynchronously)", within=15)

        lab.step("Strict mode", "Now forbid the fallback.")
        strict = lab.mark("strict", "synchronous_mode_strict=true")
        S.set_config(lab, synchronous_mode_strict=True)
        lab.expect(lambda: sql.setting(lab.topo, leader, "synchronous_standby_names") == "*",
                   "Patroni sets synchronous_standby_names = '*' on the primary (any standby may confirm)", within=30)
        standby_cluster = lab.topo.standby_node
        if standby_cluster and standby_cluster.member in lab.probe.replication_clients(leader):
            # Found in this lab: '*' matches every walsender, including the standby cluster of §8.2.
            lab.note(f"the standby cluster's {standby_cluster.member} streams from {leader}; with '*' it counts as a "
                     "synchronous standby and keeps confirming commits; stopping it too")
            lab.measure("standby_cluster_confirms_commits", S.vip_commit(lab)[0])
            lab.inject(F.stop_patroni(lab.facts, standby_cluster.name))
        waits = S.commit_waits_for_sync(lab, address=lab.topo.vips.read_write)
        lab.expect(lambda: waits() and lab.outcome(leader).outcome == Outcome.PRIMARY,
                   f"{leader} is still primary, but writes through the VIP wait for a synchronous standby and are "
                   "never acknowledged", within=40, every=2)
        # from the moment strict mode was asked for (the standby cluster's stop, when needed, is part of it)
        lab.measure("strict_blocks_writes_after_s", lab.since_t(strict))
        lab.measure("strict_write_answer", S.vip_commit(lab)[1])
        lab.mark("standby_back")
        lab.undo(last_replica)   # a replica of this cluster comes back
        lab.expect(lambda: S.vip_commit(lab)[0], "writes commit again once a replica is a synchronous standby",
                   within=90, every=2)
        lab.measure("writes_resume_after_standby_start_s", lab.since("standby_back"))


@drill
class SyncKillPrimary(Drill):
    name = "sync-kill-primary"
    commands = [
        "anywhere: patronictl -c /etc/patroni edit-config -s 'synchronous_mode=true' --force",
        'on the leader: sudo kill -9 $(systemctl show -p MainPID --value patroni)',
        'on the old leader: sudo -u postgres psql -c "set statement_timeout=\'3s\'; insert ..."   # not acknowledged',
        'undo: sudo systemctl reset-failed patroni; sudo systemctl start patroni',
    ]
    section = "§5.2 (同步复制防止脑裂)"
    summary = "Synchronous mode, then kill -9 the leader's Patroni: two primaries, but the old one cannot commit."
    story = """\
The point of §5.2. Repeat the kill -9 drill with synchronous_mode on. The leader's
Patroni dies, its PostgreSQL goes on, the key expires and the synchronous
standby, the only replica allowed to, is promoted. There are two primaries again,
but the old one has synchronous_standby_names pointing at a standby that is now a
primary and no longer confirms anything: every commit on the old primary waits
and is never acknowledged. Double primary, no double write; and because the
promoted node was synchronous, no acknowledged write is missing on it."""
    expected = "The synchronous standby is promoted within about ttl + loop_wait; a write on the old primary is not acknowledged; zero acknowledged writes lost; the old primary is rewound and streams after its Patroni starts."
    differs = ("Same in Patroni 4. Needs the article's Restart=no unit (the lab provisions it; otherwise the drill "
               "is not applicable, see primary-patroni-kill).")
    lossless = True
    split_brain = None   # two primaries are expected; the verdict is about writes

    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        t = lab.timing()
        standby = S.enable_sync(lab, leader)
        S.watchdog_off_for(lab, leader)
        restart = lab.facts.unit_restart(leader)
        lab.measure("patroni_unit_restart_policy", restart)
        lab.step("Who is who", f"Leader: {leader}. Synchronous standby: {standby}.")
        if restart != "no":
            raise NotApplicable(f"Patroni's unit on {lab.node_of(leader)} has Restart={restart}, not the article's "
                                "Restart=no: systemd would restart the killed Patroni and nothing would fail over")
        lab.inject(F.kill_patroni(lab.facts, leader))
        new = S.new_primary_within(lab, leader, t.ttl + t.loop_wait + 20,
                                   "ttl (the key expires) + loop_wait + 20 s margin",
                                   how=f"the synchronous standby {standby} is promoted")
        if new != standby:
            raise ExpectationFailed(f"{new} was promoted, not the synchronous standby {standby}")
        lab.expect_outcomes({leader: Outcome.PRIMARY, new: Outcome.PRIMARY},
                            f"two primaries: {leader} still runs as a primary next to {new}", within=10)
        lab.expect(S.commit_waits_for_sync(lab, leader),
                   f"a write on the old primary {leader} waits for a synchronous standby and is never acknowledged",
                   within=10, every=2)
        lab.measure("write_on_old_primary", lab.probe.can_commit(leader)[1])
        lab.mark("rejoin")
        lab.undo()
        S.rejoined(lab, leader, within=150, how=f"is rewound and streams from {standby}")
        lab.measure("old_primary_rejoined_s", lab.since("rejoin"))
