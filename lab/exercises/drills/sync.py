"""Article §5.2: synchronous replication as the brain-split protection that does not depend on a watchdog."""
from __future__ import annotations

from lab.exercises import steps as S
from lab.exercises.context import Lab
from lab.exercises.kit import actions as F
from lab.exercises.kit import sql
from lab.exercises.model import Drill, drill


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
        lab.inject(last_replica)
        others = [r for r in lab.replicas() if r != first]
        if others:
            took = lab.expect(lambda: S.sync_standby(lab) in others, "another replica becomes the synchronous standby",
                              within=40)
            lab.measure("new_sync_standby_after_s", took)
            second = S.sync_standby(lab)
            last_replica = F.stop_patroni(lab.facts, second)
            lab.inject(last_replica)
        took = lab.expect(lambda: S.sync_key(lab).get("leader") == leader and not S.sync_standby(lab),
                          "the /sync key shows sync_standby: null", within=40)
        lab.measure("degraded_to_async_after_s", took)
        lab.expect(lambda: S.vip_commit(lab)[0], "writes through the VIP still commit (asynchronously)", within=15)

        lab.step("Strict mode", "Now forbid the fallback.")
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
        took = lab.expect(lambda: not S.vip_commit(lab)[0], "writes wait for a synchronous standby (not acknowledged)",
                          within=40, every=2)
        lab.measure("strict_blocks_writes_after_s", took)
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
    differs = ("Same in Patroni 4. Needs the article's Restart=no unit (see primary-patroni-kill).")
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
        lab.inject(F.kill_patroni(lab.facts, leader))
        if restart != "no":
            lab.note(f"Restart={restart}: systemd restarts Patroni, no failover to observe")
            S.leader_stays(lab, leader, t["ttl"] + 10)
            return
        lab.expect(lambda: S.new_leader_other_than(lab, leader)() == standby,
                   f"the synchronous standby {standby} is promoted", within=t["ttl"] + t["loop_wait"] + 20)
        lab.measure("new_leader_after_fault_s", lab.since_fault())
        ok, why = lab.probe.can_commit(leader)
        lab.measure("write_on_old_primary", why)
        lab.expect(lambda: not lab.probe.can_commit(leader)[0],
                   f"a write on the old primary {leader} is not acknowledged", within=10, every=2)
        lab.mark("rejoin")
        lab.undo()
        S.rejoined(lab, leader, within=150, how=f"is rewound and streams from {standby}")
        lab.measure("old_primary_rejoined_s", lab.since("rejoin"))
