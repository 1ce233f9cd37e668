"""Article §5, the table's cluster rows: etcd down; no synchronous standby in synchronous mode."""
from __future__ import annotations

from lab.exercises.api import steps as S
from lab.exercises.api.context import Lab
from lab.exercises.kit import actions as F
from lab.exercises.kit.outcomes import Outcome
from lab.exercises.api.model import Drill, drill


@drill
class EtcdDown(Drill):
    name = "etcd-down"
    commands = [
        'on the etcd node: sudo systemctl stop etcd',
        "on every node: sudo -u postgres psql -c 'select pg_is_in_recovery()'   # all t",
        'undo: sudo systemctl start etcd',
    ]
    section = "§5 table, row 10 (etcd集群故障); §5.3"
    summary = "Stop etcd: every Patroni demotes its PostgreSQL; the cluster is all replicas and refuses writes."
    story = """\
With etcd gone, no Patroni can read or renew the leader key. The leader cannot
prove it still leads, so after retry_timeout it demotes its own PostgreSQL to
read-only rather than risk a second primary somewhere else. The replicas stay
replicas. Result: the whole cluster is read-only, and every write is refused,
until etcd returns. That is why the article asks for a highly available etcd,
especially when one etcd serves many clusters (§5.3)."""
    expected = ("Every member is a read-only replica within retry_timeout + loop_wait (+ 25 s margin); writes through "
                "the VIP are refused while etcd is down; after etcd starts, a leader is elected and writes resume. "
                "Where the lab's watchdog fences the old leader instead of letting it demote, the verdict is "
                "differs, with the fencer's record.")
    differs = ("Same in Patroni 4 by default. Patroni 4 adds failsafe_mode, which keeps the primary while it can "
               "reach every member (drill etcd-failsafe). With the lab's watchdog armed (§5.1) the leader's loop "
               "spends most of the watchdog timeout waiting on etcd, so the watchdog may fence it before its "
               "demotion completes: the drill reports which happened.")

    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        t = lab.timing()
        lab.step("Who is who", f"Leader: {leader}. etcd runs on: {', '.join(n.name for n in lab.topo.etcd_nodes)}.")
        S.stop_all_etcd(lab)
        S.expect_everyone_read_only(lab, t)
        still = S.read_only_or_explained(lab)
        lab.hold(lambda: not S.vip_commit(lab)[0] and still(),
                 "writes through the read-write VIP are refused, every member still a replica", for_=10, every=2)
        lab.mark("etcd_back")
        S.start_all_etcd(lab)
        S.revive_patroni(lab)
        lab.expect(lambda: lab.probe.leader() and S.vip_commit(lab)[0], "a leader again, writes through the VIP commit",
                   within=t.ttl + t.loop_wait + 30)
        lab.measure("writable_after_etcd_start_s", lab.since("etcd_back"))


@drill
class SyncNoStandby(Drill):
    name = "sync-no-standby"
    commands = [
        "anywhere: patronictl -c /etc/patroni edit-config -s 'synchronous_mode=true' --force",
        'on the etcd node: etcdctl get /service/pgsql/sync',
        'on the other replica: set tags.nosync: true in a new fragment /etc/patroni/90-lab-drill.yml; sudo systemctl reload patroni',
        'on the sync standby: sudo systemctl stop patroni   # key shows sync_standby null',
        'on the leader: sudo systemctl stop patroni   # nobody takes over',
        'undo: start both Patroni again, remove the tag, synchronous_mode=null',
    ]
    section = "§5 table, row 11 (同步模式下无可用同步备库); §5.2"
    summary = "Synchronous mode with no sync standby left: writes go on asynchronously, and failover is held."
    story = """\
In synchronous mode Patroni keeps one replica as the synchronous standby and
records it in etcd's /sync key. Only that replica may be promoted. When no
replica can be a synchronous standby, Patroni lets the primary go on alone
(asynchronously) so writes do not stop, and writes sync_standby: null into the
key. While the key names no standby, no replica is allowed to take over: a
replica that missed acknowledged writes must not become primary.

The lab makes that state with two replicas: one is tagged nosync (like the remote
DR node in §5.2, it never becomes a sync standby) and the other, the sync
standby, is stopped. Then the primary's Patroni is stopped too: the remaining
replica is healthy but not allowed to lead, so the cluster waits."""
    expected = "The /sync key names the leader and a standby, then sync_standby null after the standby stops, while writes go on; after the leader stops, no replica is promoted for longer than ttl; the old leader leads again when it returns. No acknowledged write lost."
    differs = "Same in Patroni 4 (the key also records the quorum size in newer versions)."
    lossless = True

    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        t = lab.timing()
        S.set_config(lab, synchronous_mode=True)
        lab.expect(lambda: S.sync_standby(lab) not in (None, ""), "the /sync key names a synchronous standby", within=40)
        standby = S.sync_standby(lab)
        others = [r for r in lab.replicas() if r != standby]
        lab.step("Who is who", f"Leader: {leader}. Synchronous standby: {standby}. Other replicas: {', '.join(others)}.")
        for r in others:
            S.set_local(lab, r, {"tags.nosync": True}, why="like §5.2's remote DR node: never a synchronous standby")
        stopped = lab.inject(F.stop_patroni(lab.facts, standby))
        stop_took = lab.since_t(stopped)
        lab.measure("standby_stop_command_s", stop_took)
        lab.expect(lambda: S.sync_key(lab).get("leader") == leader and not S.sync_standby(lab),
                   "the /sync key shows sync_standby: null (degraded to asynchronous)", within=40)
        # from the moment the standby's Patroni was told to stop (it stops its PostgreSQL first, and the
        # leader sees it gone on its next loop), not from when the drill began to look
        degraded = lab.since_t(stopped)
        lab.measure("degraded_to_async_after_s", degraded)
        if degraded - stop_took < 1.5:
            lab.note(f"the /sync key already named no synchronous standby when `systemctl stop patroni` on "
                     f"{standby} returned, {stop_took:g} s after it was typed (Patroni stops its PostgreSQL "
                     "first): the degradation took at most that; writes through the VIP went on meanwhile")
        lab.expect(lambda: S.vip_commit(lab)[0], "writes through the VIP still commit", within=15)
        lab.mark("leader_stopped", f"Patroni on {leader} stopped while no synchronous standby exists")
        leader_stopped = lab.inject(F.stop_patroni(lab.facts, leader))
        lab.hold(lambda: lab.probe.leader() is None and S.outcomes_are(
                     lab, {**{r: [Outcome.REPLICA] for r in others}, leader: [Outcome.STOPPED]})(),
                 "failover is held: no leader, the other replicas stay replicas, the old leader's PostgreSQL stopped",
                 for_=t.ttl + t.loop_wait + 5, every=2)
        lab.measure("failover_held_s", lab.since_t(leader_stopped))
        lab.note("writes through the VIP are refused from the moment the leader's Patroni stops until it returns: "
                 "that is the held failover the article describes (no replica may take over), not the degradation "
                 "to asynchronous replication, during which writes went on (checked above)")
        lab.undo()   # start the old leader's Patroni
        took = lab.expect(S.writable_leader(lab, leader),
                          f"{leader} leads again when its Patroni returns", within=60)
        lab.measure("old_leader_back_after_start_s", took)

