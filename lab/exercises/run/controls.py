"""Negative controls: the lab's checks, checked. For each drill family, a break that makes the family's
claim false on the running lab, applied before the family's drill runs; the drill must then end in
``fail`` and name the check that caught the break.

A control is applied on the drill's own Lab before ``run_drill``: every change it makes is
registered with ``lab.on_restore``, so the drill's restore puts it back (newest first, after the
drill's own undos) before the health gate that closes the run. The drills know nothing of this.

Each break is one an operator can really make, with the kit the drills use (patronictl, a
configuration fragment and a reload, the dynamic configuration, systemd units), and none of them
is visible to the health gate: the drill starts from its baseline and only its own checks can
catch the break.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Callable

from labcore import poll
from lab.exercises.api import steps as S
from lab.exercises.api.context import Lab
from lab.exercises.drills.cascade import cascade_pair
from lab.exercises.kit import ctl, sql
from lab.exercises.kit.patroni_config import CONTROL_FRAGMENT, CONTROL_TAG, PATRONI_CONFIG
from lab.exercises.api.model import Drill
from provision.context import FENCER_UNIT, VIP_CALLBACK

DEAF_WATCHDOG_UNIT = "lab-control-deaf-watchdog"


@dataclass(frozen=True)
class Control:
    family: str                        # the drill family it checks
    drill: str                         # the family's drill it runs (the quickest that carries the claim)
    breaks: str                        # what is broken, in words
    caught_by: str                     # words of the drill's check that must fail
    apply: Callable[[Lab], None]       # make the break, registering its undo with lab.on_restore


def _local(lab: Lab, member: str, updates: dict, why: str) -> None:
    S.set_local(lab, member, updates, why, fragment=CONTROL_FRAGMENT, tag=CONTROL_TAG)


def _any_node(lab: Lab) -> str:
    return lab.node_of(lab.probe.leader() or lab.topo.postgres_nodes[0].member)


def _patch_until_taken(lab: Lab, changes: dict, within: float = 60) -> None:
    """PATCH /config, retried: right after etcd returns, Patroni may refuse until it reconnects."""
    def patched() -> bool:
        try:
            lab.probe.patch_config(changes)
            return True
        except RuntimeError:
            return False
    if not poll.until(patched, lab.bound(within), 2.0, lab.clock)[0]:
        raise RuntimeError(f"PATCH /config {changes} refused for {within:g} s")


def with_break(cls: type[Drill], apply: Callable[[Lab], None]) -> type[Drill]:
    """Drill ``cls`` whose run starts with the break ``apply``: after the health gate, which would refuse a
    lab whose dynamic configuration is broken (pause, failsafe_mode), and inside the run, so an error in
    it is the drill's error and the restore puts back what it registered."""
    def run(self: Drill, lab: Lab) -> None:
        apply(lab)
        cls.run(self, lab)
    return type(cls.__name__, (cls,), {"run": run})


# --- the breaks -----------------------------------------------------------------------------------------

def pause_cluster(lab: Lab) -> None:
    """Maintenance mode: Patroni no longer starts a PostgreSQL that stopped.
    Cost: about 48 s (the drill's loop_wait + 30 s wait, then resume and the replica's restart)."""
    scope = S.scope(lab)
    node = _any_node(lab)
    lab.command(node, ctl.pause(scope), "control: Patroni will not restart a stopped PostgreSQL")
    lab.run_on(node, ctl.pause(scope))
    lab.on_restore("resume", lambda: lab.run_on(_any_node(lab), ctl.resume(scope)))


def no_replica_may_fail_over(lab: Lab) -> None:
    """Every replica tagged nofailover: when the leader goes, nobody may take over.
    Cost: about 62 s (two reloads, the drill's loop_wait + 20 s wait, the old leader back, two reloads)."""
    for r in lab.replicas():
        _local(lab, r, {"tags.nofailover": True}, "control: this replica may never be promoted")


def failsafe_on(lab: Lab) -> None:
    """failsafe_mode: with etcd gone the primary keeps its role while it reaches every member.
    Cost: about 49 s (the /failsafe key, the drill's retry_timeout + loop_wait + 25 s wait, etcd back)."""
    lab.command(_any_node(lab), ctl.edit_config_set(S.scope(lab), failsafe_mode="true"),
                "control: the primary stays writable when etcd is down")
    lab.probe.patch_config({"failsafe_mode": True})
    lab.on_restore("failsafe_mode=null", lambda: _patch_until_taken(lab, {"failsafe_mode": None}))
    # the leader writes the /failsafe key (every member it may ask) on its next loops
    lab.expect(lambda: isinstance(key := lab.probe.dcs_key("failsafe"), dict)
               and len(key) >= len(lab.topo.postgres_nodes),
               "control: the /failsafe key lists every member", within=lab.timing().loop_wait * 2 + 20)


def deaf_watchdog(lab: Lab) -> None:
    """A watchdog that takes every keepalive and never fires: on each node the fencing service is
    replaced by a reader of its FIFO that does nothing. (Stopping the fencer alone would leave the
    FIFO without a reader, and a Patroni that opens it to lead would block.)
    Cost: about 47 s (the drill's ttl - safety_margin + 13 s wait, the failover, the old leader rewound)."""
    for n in lab.topo.postgres_nodes:
        wd = lab.facts.watchdog(n.member)
        if wd.get("driver") != "testing" or not wd.get("device"):
            raise RuntimeError(f"{n.name}: no fencing service to silence (watchdog {wd})")
        fifo = shlex.quote(wd["device"])
        deaf = (f"sudo systemd-run --quiet --unit={DEAF_WATCHDOG_UNIT} sh -c 'exec cat 0<>{fifo} >/dev/null' && "
                f"sudo systemctl stop {FENCER_UNIT}")
        lab.command(n.name, deaf, "control: the watchdog's pings go nowhere; nothing fences this node")
        lab.on_restore(f"fencing service on {n.name}",
                       lambda node=n.name: lab.run_on(node, f"sudo systemctl start {FENCER_UNIT} && "
                                                            f"sudo systemctl stop {DEAF_WATCHDOG_UNIT}"))
        lab.run_on(n.name, deaf)


def commits_skip_the_standby(lab: Lab) -> None:
    """synchronous_commit=local: in synchronous mode a commit no longer waits for the standby.
    Cost: about 53 s (sync mode on, the kill -9 failover after ttl, the 10 s write check, the old primary back)."""
    lab.command(_any_node(lab), ctl.edit_config_pg(S.scope(lab), synchronous_commit="local"),
                "control: commits are acknowledged without the synchronous standby")
    lab.probe.patch_config({"postgresql": {"parameters": {"synchronous_commit": "local"}}})
    lab.on_restore("synchronous_commit=null", lambda: _patch_until_taken(
        lab, {"postgresql": {"parameters": {"synchronous_commit": None}}}))
    leader = lab.leader()
    lab.expect(lambda: sql.setting(lab.topo, leader, "synchronous_commit") == "local",
               f"control: synchronous_commit is local on {leader}", within=lab.timing().loop_wait + 20)


def callbacks_do_nothing(lab: Lab) -> None:
    """Patroni's callbacks pointed at /bin/true on every member: the read-write VIP no longer moves.
    Its restore runs the real callback on every node for the role it has then, as Patroni would have.
    Cost: about 83 s (three reloads each way, the switchover, the drill's 30 s wait for the VIP)."""
    def vip_where_patroni_would_put_it() -> None:
        leader = lab.probe.leader()
        for n in lab.topo.postgres_nodes:
            role = "primary" if n.member == leader else "replica"
            lab.run_on(n.name, f"sudo {VIP_CALLBACK} on_role_change {role} {S.scope(lab)}")
    lab.on_restore("the read-write VIP on the leader", vip_where_patroni_would_put_it)   # runs last
    for n in lab.topo.postgres_nodes:
        _local(lab, n.member, {f"postgresql.callbacks.{c}": "/bin/true" for c in
                               ("on_start", "on_restart", "on_role_change")},
               "control: the callbacks no longer move the read-write VIP")


def replicates_from_the_leader(lab: Lab) -> None:
    """The cascade's follower tagged replicatefrom the leader (the wrong member): its fragment wins
    over the drill's, so it never streams from the source the drill names.
    Cost: about 86 s (the drill's own tag and reload, its loop_wait + 40 s wait, both fragments removed)."""
    follower, _source, _ = cascade_pair(lab)
    _local(lab, follower, {"tags.replicatefrom": lab.leader()}, "control: this replica follows the wrong member")


def haproxy_checks_blocked(lab: Lab) -> None:
    """haproxy's health checks of every member but the leader cannot connect to Patroni's REST API (a
    firewall between haproxy and the API) until the drill's restore: haproxy.cfg still says inter 3 s,
    rise 2, so the band the runner computes from it is the configured one, and haproxy's part of the
    failover must fall outside it. Only haproxy's connections are dropped (by the uid its checks leave
    as): Patroni's own calls to the other members' APIs, which the leader race needs, go through.
    Not a pass/fail control: it checks the band's note (tests/live/test_53_band_control.py)."""
    from lab.exercises.kit.actions import ensure_iptables

    leader = lab.leader()
    others = [n.address for n in lab.topo.postgres_nodes if n.member != leader]
    for n in lab.topo.haproxy_nodes:
        if not ensure_iptables(lab.facts, n.name):
            raise RuntimeError(f"{n.name}: iptables could not be installed")
        uid = lab.run_on(n.name, "ps -o uid= -C haproxy | head -n 1").stdout.strip()
        if not uid.isdigit():
            raise RuntimeError(f"{n.name}: no haproxy process to take the uid of")
        rules = [f"OUTPUT -p tcp -d {a} --dport {lab.topo.ports.patroni} --syn -m owner --uid-owner {uid} -j DROP"
                 for a in others]
        lab.command(n.name, "; ".join(f"sudo iptables -I {r}" for r in rules),
                    f"control: haproxy's checks of {', '.join(others)} dropped until the restore")
        lab.on_restore(f"haproxy's checks on {n.name}",
                       lambda node=n.name, rs=tuple(rules): lab.run_on(
                           node, "; ".join(f"while sudo iptables -D {r} 2>/dev/null; do :; done" for r in rs)))
        lab.run_on(n.name, " && ".join(f"sudo iptables -I {r}" for r in rules))


CONTROLS: list[Control] = [
    Control("replica faults", "replica-pg-stop", "cluster paused (patronictl pause)",
            "Patroni starts PostgreSQL on", pause_cluster),
    Control("primary faults", "primary-patroni-stop", "every replica tagged nofailover: true",
            "is the writable leader", no_replica_may_fail_over),
    Control("etcd", "etcd-down", "failsafe_mode: true", "every member is a read-only replica", failsafe_on),
    Control("watchdog", "watchdog-freeze", "the fencing service replaced by a reader that never fires",
            "is fenced by its watchdog", deaf_watchdog),
    Control("sync", "sync-kill-primary", "synchronous_commit: local", "waits for a synchronous standby",
            commits_skip_the_standby),
    Control("VIPs", "callback-vip", "Patroni's callbacks set to /bin/true on every member",
            " left node", callbacks_do_nothing),
    Control("cascading", "cascading", "the follower tagged replicatefrom: <leader>", "streams from",
            replicates_from_the_leader),
]


def still_in_place(lab: Lab) -> list[str]:
    """What of any control is still in place on the lab (empty: every break was put back)."""
    found = []
    for n in lab.topo.postgres_nodes:
        if lab.shell.run(n.name, f"sudo test -e {PATRONI_CONFIG}/{CONTROL_FRAGMENT}").ok:
            found.append(f"{n.name}: {PATRONI_CONFIG}/{CONTROL_FRAGMENT}")
        if lab.facts.unit_state(n.name, DEAF_WATCHDOG_UNIT) == "active":
            found.append(f"{n.name}: {DEAF_WATCHDOG_UNIT} running")
        if lab.facts.watchdog(n.member).get("driver") == "testing" and \
                lab.facts.unit_state(n.name, FENCER_UNIT) != "active":
            found.append(f"{n.name}: {FENCER_UNIT} not running")
    cfg = lab.probe.dynamic_config()
    if cfg.get("pause"):
        found.append("the cluster is paused")
    if cfg.get("failsafe_mode"):
        found.append("failsafe_mode is set")
    if "synchronous_commit" in ((cfg.get("postgresql") or {}).get("parameters") or {}):
        found.append("synchronous_commit is set in the dynamic configuration")
    return found
