"""What a person does to the cluster on purpose: a switchover, etcd stopped and started, synchronous
mode switched on, the watchdog off for a drill, Patroni started again after a fence; and a command
shown as typed on the control host."""
from __future__ import annotations

from lab.exercises.api.context import Lab
from lab.exercises.kit.shell import HOST
from lab.exercises.api.model import ExpectationFailed
from lab.exercises.api.steps.conditions import pick_candidate, scope, sync_key, sync_standby, writable_leader
from lab.exercises.api.steps.config import set_config, set_local
from labcore.versions import PatroniRelease
from lab.exercises.kit import actions, ctl
from lab.exercises.kit import patroni_release as releases
from lab.exercises.kit.patroni_config import PATRONI_UNIT


def switchover(lab: Lab, candidate: str | None = None, *, within: float = 60,
               release: PatroniRelease | None = None) -> tuple[str, str, float]:
    """``patronictl switchover`` from the current leader to ``candidate`` (chosen now if None), typed on
    the leader's node, whose Patroni is the topology's unless ``release`` says otherwise (mid-upgrade).
    Returns (old leader, new leader, seconds from the command to a writable new leader)."""
    old = lab.leader()
    new = candidate or pick_candidate(lab)
    flag = (release or lab.topo.patroni_release).switchover_leader_flag
    op = actions.switchover(lab.node_of(old), scope(lab), old, new, observed=writable_leader(lab, new),
                            leader_flag=flag)
    lab.mark("switchover")
    try:
        lab.perform(op, observe_within=within)
    except ExpectationFailed as e:
        raise ExpectationFailed(f"switchover: {new} is not the writable leader ({e})") from None
    return old, new, lab.since("switchover")


def history_length(lab: Lab, member: str) -> int:
    """Lines in ``patronictl history`` (the DCS's history key), read on ``member``'s node."""
    out = lab.run_on(lab.node_of(member), ctl.history(scope(lab)))
    return len(ctl.parse_history(out.stdout))


# --- etcd --------------------------------------------------------------------------------------------

def stop_all_etcd(lab: Lab) -> None:
    for n in lab.topo.etcd_nodes:
        lab.inject(actions.stop_etcd(lab.facts, n.name))


def start_all_etcd(lab: Lab) -> None:
    """Undo :func:`stop_all_etcd` (one undo per etcd node, newest first)."""
    for _ in lab.topo.etcd_nodes:
        lab.undo()


# --- synchronous replication: etcd's /sync key ---------------------------------------------------------

def enable_sync(lab: Lab, leader: str) -> str:
    """synchronous_mode on; wait until the /sync key names ``leader`` and a standby; returns the standby."""
    set_config(lab, synchronous_mode=True)
    lab.command(lab.topo.etcd_nodes[0].name,
                f"etcdctl get {lab.topo.cluster.namespace.rstrip('/')}/{lab.topo.cluster.scope}/sync",
                "the article reads the key the same way")
    lab.expect(lambda: sync_key(lab).get("leader") == leader and sync_standby(lab),
               f"the /sync key names leader {leader} and a synchronous standby", within=40)
    standby = sync_standby(lab)
    lab.measure("sync_key", sync_key(lab))
    return standby


# --- the watchdog and fencing -----------------------------------------------------------------------

def watchdog_off_for(lab: Lab, member: str) -> None:
    """The table's rows describe Patroni without a watchdog; if this lab arms one, switch it off on
    ``member`` for this drill (the watchdog drills show what it changes)."""
    wd = lab.facts.watchdog(member)
    if str(wd.get("mode", "off")).lower() in ("off", "false"):
        return
    device = wd.get("device", "/dev/watchdog")
    if not lab.shell.run(lab.node_of(member), f"sudo test -e {device}").ok:
        return   # mode set but no device: Patroni runs without one anyway
    set_local(lab, member, {"watchdog.mode": "off"},
              why="this row of the table is about Patroni without a watchdog; §5.1's drills add it back")
    if wd.get("driver") == "testing":   # the containers' fencing service says whether it is armed
        state = f"$(dirname {device})/state"
        lab.expect(lambda: "disarmed" in lab.shell.run(lab.node_of(member), f"sudo cat {state}").stdout,
                   f"the fencing service on {lab.node_of(member)} is disarmed", within=30)


def revive_patroni(lab: Lab) -> list[str]:
    """Start Patroni where it is not running after the faults were undone: a fencing watchdog
    may have killed it (that is its job); the drill notes it, the baseline needs it back."""
    revived = []
    for n in lab.topo.postgres_nodes:
        if lab.facts.unit_state(n.name, PATRONI_UNIT) != "active":
            lab.note(f"Patroni on {n.name} was not running after the undo "
                     f"({lab.facts.fencer_state(n.name) or 'no fencing record'}); starting it")
            lab.shell.run(n.name, f"sudo systemctl reset-failed {PATRONI_UNIT}; "
                                  f"sudo systemctl start {PATRONI_UNIT}")
            revived.append(n.member)
    return revived


def on_control_host(lab: Lab, command: str, why: str = "") -> None:
    """Show a command typed on the control host (where the lab's CLI runs), not on a node."""
    lab.command(HOST, command, why)


# --- Patroni upgraded in place, member by member ------------------------------------------------------

def member_runs(lab: Lab, member: str, release: PatroniRelease) -> bool:
    """``member``'s REST API answers with ``release``'s version."""
    return (lab.probe.member_state(member).get("patroni") or {}).get("version") == release.version


def roll_patroni(lab: Lab, release: PatroniRelease, previous: PatroniRelease, *, within: float = 120) -> list[dict]:
    """``release`` on every member (each running ``previous``), the way an upgrade is done with the
    cluster running: the replicas one by one (each back and streaming before the next), then a
    switchover to an upgraded replica, then the old leader. Returns one entry per step: the member,
    the seconds until it streamed again (and the switchover's before the old leader), the cluster's
    versions after it."""
    plat = releases.platform(lab.topo)
    leader = lab.leader()
    order = [m for m in lab.replicas() if m != leader] + [leader]
    steps = []
    for member in order:
        step: dict = {"member": member}
        if member == leader:
            _, new, took = switchover(lab, order[0], release=previous)
            step["switchover_s"] = round(took, 1)
        node = lab.node_of(member)
        began = lab.clock.monotonic()
        op = actions.Operation(node, f"Patroni {release.version} on {member} (installed in place, Patroni restarted)",
                               releases.install(release, plat), observed=lambda m=member: member_runs(lab, m, release))
        lab.perform(op, observe_within=within)
        lab.expect(lambda m=member: lab.probe.streaming(m), f"{member} runs Patroni {release.version} and streams again",
                   within=within)
        step["back_s"] = round(lab.clock.monotonic() - began, 1)
        steps.append({**step, **lab.probe.running_versions()})
    return steps
