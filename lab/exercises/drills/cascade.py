"""Article §8: cascading replication inside the cluster and a standby cluster outside it."""
from __future__ import annotations

import uuid

from lab.exercises.api import steps as S
from lab.exercises.api.context import Lab
from lab.exercises.kit import actions as F
from lab.exercises.kit.outcomes import Outcome
from lab.exercises.kit.patroni_config import PATRONI_UNIT
from lab.exercises.api.model import Drill, ExpectationFailed, drill
from labcore import poll
from lab.exercises.kit import ctl, sql

PROBE_TABLE = "lab_standby_probe"


def cascade_pair(lab: Lab) -> tuple[str, str, bool]:
    """(follower, source, already configured?): the topology's replicatefrom if both are replicas now,
    else the last replica follows the first (pg3 from pg2 when pg1 leads, as in the article)."""
    replicas = lab.replicas()
    if len(replicas) < 2:
        raise ExpectationFailed("cascading needs two replicas")
    for follower, source in (lab.topo.options.get("replicatefrom") or {}).items():
        if follower in replicas and source in replicas:
            return follower, source, True
    ordered = [n.member for n in lab.topo.postgres_nodes if n.member in replicas]
    return ordered[-1], ordered[0], False


@drill
class Cascading(Drill):
    name = "cascading"
    section = "§8.1 (集群内部的级联复制); §5.2 (nofailover)"
    summary = ("replicatefrom: a replica streams from another replica, falls back to the leader, and can still "
               "lead; nofailover never does.")
    story = """\
The tag replicatefrom asks Patroni to point a replica's primary_conninfo at
another member instead of the leader, to spare the leader's network (or a
WAN link). It only applies while the member is a replica: it may still be
elected leader. If the source member is gone, Patroni points the replica at
the leader, and back at the source when it returns.

Then the election. §5.2 tags a member that must never lead (a remote DR node)
nofailover. The source gets that tag; the follower stops, then the leader:
the source is the only candidate left (and the most up to date), yet nobody
is promoted. When the follower starts again, it is elected, replicatefrom and
all."""
    differs = "Same in Patroni 4; the lab keeps the tag in a fragment of the configuration directory."

    expected = """\
What to watch: the follower (pg3 when pg1 leads, or the pair in
options.replicatefrom) appears in the source's pg_stat_replication and not in
the leader's; its pg_stat_wal_receiver.sender_host is the source. With the
source's Patroni stopped it streams from the leader (fallback time measured);
with the source back it streams from the source again. With the source tagged
nofailover, the follower stopped and the leader's Patroni stopped, the cluster
has no leader for 2 x loop_wait + 5 s and the source stays a replica; the
follower, started again, is elected within loop_wait + 30 s; the old leader
rejoins as its replica."""
    commands = [
        'on the follower: add to /etc/patroni/90-lab-drill.yml:  tags: {replicatefrom: pg2}',
        'on the follower: sudo systemctl reload patroni',
        "on the source and on the leader: sudo -u postgres psql -c 'select application_name, client_addr, state from pg_stat_replication'",
        "on the follower: sudo -u postgres psql -c 'select sender_host, status from pg_stat_wal_receiver'",
        'on the source: sudo systemctl stop patroni',
        'on the source, to undo: sudo systemctl start patroni',
        'on the source: add to /etc/patroni/90-lab-drill.yml:  tags: {nofailover: true}; sudo systemctl reload patroni',
        'on the follower, then on the leader: sudo systemctl stop patroni',
        'on any member: sudo -u postgres patronictl -c /etc/patroni list   # no leader; the source stays a replica',
        'on the follower: sudo systemctl start patroni   # it is elected; then start the old leader',
    ]
    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        follower, source, configured = cascade_pair(lab)
        lab.step("Who streams from whom", f"Leader {leader}; {follower} shall stream from {source}.")
        if not configured:
            S.set_local(lab, follower, {"tags.replicatefrom": source},
                          why="the article's tags: {replicatefrom: ...}; Patroni reloads tags without a restart")
        lab.command(lab.node_of(source), S.psql(lab, lab.node_of(source),
                                                     "SELECT application_name, client_addr, state FROM pg_stat_replication"))
        lab.mark("tagged")
        lab.expect(lambda: follower in lab.probe.replication_clients(source)
                   and follower not in lab.probe.replication_clients(leader),
                   f"{follower} streams from {source} (in {source}'s pg_stat_replication, not {leader}'s)",
                   within=lab.timing().loop_wait + 40, every=2)
        lab.measure("cascade_established_s", lab.since("tagged"))
        lab.measure("follower_upstream", sql.upstream_host(lab.topo, follower))

        lab.step(f"{source} fails", f"Stop Patroni on {lab.node_of(source)}; {follower} must turn to the leader.")
        lab.inject(F.stop_patroni(lab.facts, source))
        lab.expect(lambda: follower in lab.probe.replication_clients(leader),
                   f"{follower} streams from the leader {leader}", within=lab.timing().loop_wait + 50, every=1)
        lab.measure("fallback_to_leader_s", lab.fault_to_last_met())
        lab.mark("source_back")
        lab.undo()
        S.rejoined(lab, source, within=90, how="streams again")
        lab.expect(lambda: follower in lab.probe.replication_clients(source), f"{follower} streams from {source} again",
                   within=lab.timing().loop_wait + 50, every=1)
        lab.measure("cascade_restored_s", lab.since("source_back"))
        self._follower_can_lead(lab, leader, follower, source)

    def _follower_can_lead(self, lab: Lab, leader: str, follower: str, source: str) -> None:
        """§8.1: replicatefrom does not keep a member out of the leader race; §5.2: nofailover does, even for
        the best candidate. The source (ahead of its follower, which replays what it relays) is tagged
        nofailover; with the follower down and the leader gone it is the only candidate, and must stay a
        replica; once the follower is back, the follower must be elected."""
        t = lab.timing()
        lab.step(f"The follower can lead; {source}, tagged nofailover, never does",
                 f"§5.2 tags a member that must never lead nofailover: {source} gets the tag. {follower} (replicatefrom "
                 f"{source}) stops, then the leader {leader}: {source} is the only candidate left, and must stay a "
                 f"replica. When {follower} starts again it must be elected: its replicatefrom tag does not keep "
                 "it out of the race (§8.1).")
        S.set_local(lab, source, {"tags.nofailover": True},
                    why="the article's tags: {nofailover: true} (§5.2); Patroni reloads tags without a restart")
        follower_down = F.stop_patroni(lab.facts, follower)
        lab.inject(follower_down)
        leader_down = F.stop_patroni(lab.facts, leader)
        lab.inject(leader_down)
        lab.hold(lambda: lab.probe.leader() is None and lab.outcome(source).outcome == Outcome.REPLICA,
                 f"no leader: {source}, the only candidate but tagged nofailover, stays a replica",
                 for_=2 * t.loop_wait + 5, every=1)
        back = lab.mark("follower_back")
        lab.undo(follower_down)
        bound = t.loop_wait + 30
        lab.expect(S.writable_leader(lab, follower), f"{follower}, tagged replicatefrom {source}, is elected leader",
                   within=bound)
        lab.within_bound("follower_elected_s", lab.since_t(back), bound,
                         "Patroni's start of PostgreSQL + one loop_wait (the leader race) + 30 s margin")
        lab.undo(leader_down)
        S.rejoined(lab, leader, within=120, how=f"rejoins as a replica of {follower}")
        lab.expect_outcomes({follower: Outcome.PRIMARY, source: Outcome.REPLICA, leader: Outcome.REPLICA},
                            f"{follower} is the primary; {source} and {leader} replicas", within=30)


class Standby:
    """The standby cluster's member (node4) and its questions."""

    def __init__(self, lab: Lab) -> None:
        node = lab.topo.standby_node
        if node is None:
            raise ExpectationFailed("the topology has no node with role standby")
        self.lab, self.node, self.member = lab, node.name, node.member
        self.scope = lab.topo.cluster.standby_scope

    def state(self) -> dict:
        return self.lab.probe.member_state(self.member)

    def is_standby_leader(self) -> bool:
        st = self.state()
        return st.get("role") == "standby_leader" and st.get("state") == "running"

    def streams_from_vip(self) -> bool:
        return (self.is_standby_leader()
                and sql.upstream_host(self.lab.topo, self.member) == self.lab.topo.vips.read_write)

    def sees(self, token: str) -> bool:
        return self.lag_of(token) is not None

    def lag_of(self, token: str) -> float | None:
        """Seconds between the row's commit on the main cluster and now on node4, if node4 has it
        (one kernel clock in containers; chrony-synced clocks on VMs)."""
        value = sql.scalar(self.lab.topo, self.member,
                           f"SELECT extract(epoch FROM clock_timestamp() - at) FROM {PROBE_TABLE} WHERE token = %s",
                           (token,))
        return None if value is None else round(float(value), 3)

    def config(self) -> dict:
        status, body = self.lab.probe.rest(self.member, "/config")
        return body if status == 200 and isinstance(body, dict) else {}


def write_token(lab: Lab) -> str:
    """One row through the read-write VIP; returns its token."""
    token = uuid.uuid4().hex
    rows = sql.query(lab.topo, "", f"CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (token text, at timestamptz DEFAULT now()); "
                                   f"INSERT INTO {PROBE_TABLE} (token) VALUES (%s)", (token,),
                     address=lab.topo.vips.read_write)
    if rows is None:
        raise ExpectationFailed("cannot write through the read-write VIP")
    return token


def slot_row(lab: Lab, member: str) -> tuple | None:
    """(active, restart_lsn, retained bytes) of the standby's permanent slot on ``member``."""
    rows = sql.query(lab.topo, member,
                     "SELECT active, restart_lsn::text, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
                     "FROM pg_replication_slots WHERE slot_name = %s", (lab.topo.cluster.standby_slot,))
    return rows[0] if rows else None


@drill
class StandbyCluster(Drill):
    name = "standby-cluster"
    section = "§8.2 (集群间的级联复制)"
    summary = "node4's standby cluster follows through the VIP across a switchover, keeps WAL by its slot, is promoted, becomes a standby again."
    story = """\
node4 runs a second Patroni cluster with one member. Its leader is a
"standby leader": it streams from the main cluster through the read-write
VIP, so a switchover in the main cluster does not concern it. The main
cluster keeps a permanent slot for it on whichever member leads, so WAL it
has not received yet is kept even while it is down. Removing standby_cluster
from its configuration (edit-config) promotes it: a disaster-recovery
switch. Putting it back makes it a standby again; what it wrote on its own
diverges from the main cluster, so its data is rewound or rebuilt."""
    differs = ("Patroni 4 adds patronictl promote-cluster / demote-cluster for the same change; the drill uses "
               "the article's edit-config.")

    expected = """\
What to watch: node4's GET /patroni says standby_leader and its
pg_stat_wal_receiver streams from .210; a row written on the main cluster
arrives on node4 (standby lag measured). After a switchover in the main
cluster, node4 reconnects to .210 by itself and slot1 is active on the new
leader (a permanent slot follows the leader). With node4's Patroni stopped,
slot1 is inactive and its restart_lsn stays put while WAL grows: the main
cluster keeps the WAL for node4, which catches up when started. Removing
standby_cluster (edit-config) promotes node4: it accepts writes. Putting
standby_cluster back makes it follow .210 again; its own writes diverged, so it
is rewound, or rebuilt (stop Patroni, `patronictl remove`, empty the data
directory, start Patroni: a new base backup through .210)."""
    commands = [
        'on node4: sudo -u postgres patronictl -c /etc/patroni list   # Standby Leader',
        "on node4: sudo -u postgres psql -c 'select sender_host, status from pg_stat_wal_receiver'",
        "on the main leader: sudo -u postgres psql -c 'select slot_name, active, restart_lsn from pg_replication_slots'",
        'on a main member: sudo -u postgres patronictl -c /etc/patroni switchover pgsql --leader <leader> --candidate <replica> --force',
        'on node4: sudo systemctl stop patroni; (later) sudo systemctl start patroni',
        'on node4: sudo -u postgres patronictl -c /etc/patroni edit-config pgsql-standby --force -s standby_cluster=null   # promote',
        "on node4: sudo -u postgres patronictl -c /etc/patroni edit-config pgsql-standby --force -s standby_cluster.host=192.168.234.210 -s standby_cluster.port=5432 -s standby_cluster.primary_slot_name=slot1 -s 'standby_cluster.create_replica_methods=[basebackup]'",
        'on node4, if it cannot follow: sudo systemctl stop patroni; sudo -u postgres patronictl -c /etc/patroni remove pgsql-standby; sudo -u postgres find /pgsql/data -mindepth 1 -delete; sudo systemctl start patroni',
    ]
    def run(self, lab: Lab) -> None:
        sb = Standby(lab)
        slot = lab.topo.cluster.standby_slot
        vip = lab.topo.vips.read_write
        self.sb = sb
        self.needs_check = True
        lab.command(sb.node, ctl.patronictl("list", sb.scope), "role: Standby Leader")
        lab.expect(sb.streams_from_vip, f"{sb.member} is the standby leader, streaming from {vip}", within=60, every=2)
        self.standby_cfg = sb.config().get("standby_cluster") or {}
        lab.measure("standby_cluster_config", self.standby_cfg)

        lags: list[float] = []
        for _ in range(5):
            token = write_token(lab)
            seen: list[float] = []
            lab.expect(lambda: (lag := sb.lag_of(token)) is not None and seen.append(lag) is None,
                       f"a row written on the main cluster arrives on {sb.member}", within=30, every=0.1)
            lags.append(seen[0])
        # the first sighting bounds the lag from above (one poll every 0.1 s)
        lab.measure("standby_lag_s", max(lags))
        lab.measure("standby_lag_samples_s", lags)
        leader = lab.leader()
        lab.expect(lambda: (slot_row(lab, leader) or (False,))[0] is True, f"slot {slot} is active on {leader}", within=20)

        lab.step("Switch the main cluster over", "node4 follows the VIP; the slot follows the leader.")
        old, new, took = S.switchover(lab)
        lab.measure("switchover_s", took)
        token = write_token_retry(lab)
        took = lab.expect(lambda: sb.sees(token), f"a row written after the switchover arrives on {sb.member}",
                          within=60, every=0.5)
        lab.measure("standby_follows_after_switchover_s", lab.since("switchover"))
        lab.expect(lambda: (slot_row(lab, new) or (False,))[0] is True and sb.streams_from_vip(),
                   f"slot {slot} is active on the new leader {new}; {sb.member} streams from {vip}", within=60, every=1)

        lab.step("The slot keeps WAL", f"Stop {sb.member}'s Patroni; the slot on {new} must hold its position.")
        lab.inject(F.stop_patroni(lab.facts, sb.member))
        lab.expect(lambda: (slot_row(lab, new) or (True,))[0] is False, f"slot {slot} is inactive", within=30)
        held = slot_row(lab, new)
        for _ in range(3):
            write_token(lab)
        sql.query(lab.topo, new, "SELECT pg_switch_wal()")
        lab.expect(lambda: (row := slot_row(lab, new)) is not None and row[1] == held[1] and row[2] > held[2],
                   f"restart_lsn stays at {held[1]} while WAL grows (retained bytes increase)", within=20)
        lab.measure("slot_retained_bytes", slot_row(lab, new)[2])
        token = write_token(lab)
        lab.mark("standby_back")
        lab.undo()
        lab.expect(lambda: sb.sees(token), f"{sb.member} catches up from the slot", within=90, every=0.5)
        lab.measure("standby_catchup_s", lab.since("standby_back"))

        lab.step("Promote the standby cluster", "edit-config removes standby_cluster on node4.")
        # turned back into a standby below (demote)
        promote = F.Operation(sb.node, f"standby cluster {sb.scope} promoted",
                              ctl.edit_config_set(sb.scope, standby_cluster=None),
                              observed=lambda: lab.probe.in_recovery(sb.member) is False)
        lab.mark("promote")
        lab.perform(promote, observe_within=60)
        lab.measure("standby_promote_s", lab.since("promote"))
        lab.expect(lambda: lab.probe.can_commit(sb.member)[0], f"{sb.member} accepts writes", within=20)
        lab.measure("promoted_role", sb.state().get("role"))

        lab.step("Back to a standby cluster", "edit-config puts standby_cluster back; node4 must follow the VIP again.")
        self.demote(lab)

    def demote(self, lab: Lab) -> None:
        sb = self.sb
        cfg = self.standby_cfg or {"host": lab.topo.vips.read_write, "port": lab.topo.ports.postgres,
                                   "primary_slot_name": lab.topo.cluster.standby_slot,
                                   "create_replica_methods": ["basebackup"]}
        settings = {f"standby_cluster__{k}": (f"[{', '.join(v)}]" if isinstance(v, list) else v) for k, v in cfg.items()}
        cmd = ctl.edit_config_set(sb.scope, **settings)
        lab.command(sb.node, cmd)
        lab.mark("demote")
        lab.run_on(sb.node, cmd)
        token = write_token(lab)
        lab.say("   " + lab.said(f"waiting: does {sb.member} stream from the VIP again by itself (pg_rewind if it diverged)?"))
        followed, _, _ = poll.until(lambda: sb.streams_from_vip() and sb.sees(token), lab.bound(90), 2, lab.clock)
        if followed:
            lab.measure("standby_rebuilt", False)
        else:
            lab.note(f"{sb.member} cannot follow after its own writes (diverged timeline): rebuilding its data")
            self.rebuild(lab)
            token = write_token(lab)
            lab.expect(lambda: sb.streams_from_vip() and sb.sees(token), f"{sb.member} streams from the VIP again",
                       within=60, every=2)
            lab.measure("standby_rebuilt", True)
        lab.measure("standby_demote_s", lab.since("demote"))
        self.needs_check = False

    def rebuild(self, lab: Lab) -> None:
        """Stop Patroni, forget the standby cluster in the DCS, empty the data directory, start Patroni:
        it bootstraps the standby leader again from the main cluster (basebackup through the VIP)."""
        sb = self.sb
        data_dir = lab.topo.cluster.data_dir
        for cmd in (f"sudo systemctl stop {PATRONI_UNIT}", ctl.remove(sb.scope),
                    f"sudo -u postgres find {data_dir} -mindepth 1 -delete",
                    f"sudo systemctl start {PATRONI_UNIT}"):
            lab.command(sb.node, cmd)
            lab.run_on(sb.node, cmd, timeout=180)
        lab.expect(sb.is_standby_leader, f"{sb.member} bootstrapped as the standby leader again", within=240, every=3)

    def restore(self, lab: Lab) -> None:
        if not getattr(self, "needs_check", False):
            return
        sb = self.sb
        if sb.streams_from_vip():
            return
        if lab.probe.in_recovery(sb.member) is False:
            self.demote(lab)
            return
        lab.expect(sb.streams_from_vip, f"{sb.member} streams from the VIP", within=90, every=2)



def write_token_retry(lab: Lab) -> str:
    """write_token, polled while the VIP moves during a switchover."""
    tokens: list[str] = []
    lab.expect(lambda: tokens.append(write_token(lab)) or True, "a row can be written through the VIP", within=30)
    return tokens[-1]
