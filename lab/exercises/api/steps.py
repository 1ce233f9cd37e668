"""Named steps and conditions the drills share, each written once (as Patroni's own features/steps
name "the old leader rejoined" once and use it everywhere).

A condition is a function of the lab returning a zero-argument callable for ``lab.expect`` /
``lab.hold``; a step does something (and may expect something) and returns what it measured.
Drills are scenarios made of these; the kit below does the talking to the nodes.
"""
from __future__ import annotations

import shlex
import time
from datetime import datetime
from typing import Any, Callable, Iterable

import yaml

from lab.exercises.api.context import Lab
from lab.i18n.phrases import phrase
from lab.exercises.kit import actions, ctl, patroni_config, sql
from lab.exercises.kit.outcomes import MemberState, Outcome
from lab.exercises.kit.patroni_config import PATRONI_CONFIG, PATRONI_UNIT
from lab.exercises.api.model import ExpectationFailed

Condition = Callable[[], Any]


# --- who is who ------------------------------------------------------------------------------

def scope(lab: Lab) -> str:
    return lab.topo.cluster.scope


def members(lab: Lab) -> list[str]:
    """Every member of the main cluster, in topology order."""
    return [n.member for n in lab.topo.postgres_nodes]


def pick_candidate(lab: Lab, exclude: tuple[str, ...] = ()) -> str:
    """A streaming replica to hand the primary to (the first in topology order)."""
    for m in lab.replicas():
        if m not in exclude and lab.probe.streaming(m):
            return m
    raise ExpectationFailed("no streaming replica to switch over to")


# --- conditions --------------------------------------------------------------------------------

def writable_leader(lab: Lab, member: str) -> Condition:
    """``member`` holds the leader key and its PostgreSQL is out of recovery."""
    return lambda: lab.probe.leader() == member and lab.probe.in_recovery(member) is False


def new_leader_other_than(lab: Lab, old: str) -> Condition:
    """A member other than ``old`` is the writable leader (the condition's value is its name)."""
    def check():
        lead = lab.probe.leader()
        return lead if lead and lead != old and lab.probe.in_recovery(lead) is False else None
    return check


def a_writable_leader(lab: Lab) -> Condition:
    """Some member holds the leader key and is writable (the condition's value is its name)."""
    return new_leader_other_than(lab, "")


def streams(lab: Lab, member: str) -> Condition:
    """``member`` is a replica whose WAL receiver streams (Patroni says so)."""
    return lambda: lab.probe.streaming(member)


def streams_from(lab: Lab, member: str, source: str) -> Condition:
    """``member``'s PostgreSQL is in recovery and ``source`` sees its WAL receiver (pg_stat_replication),
    whatever Patroni on ``member`` says (or whether it runs at all)."""
    return lambda: lab.probe.in_recovery(member) is True and member in lab.probe.replication_clients(source)


def replicas_stream(lab: Lab, at_least: int = 0) -> Condition:
    """Every member other than the leader streams (and there are at least ``at_least`` of them)."""
    def check() -> bool:
        replicas = lab.replicas()
        return all(lab.probe.streaming(r) for r in replicas) and len(replicas) >= at_least
    return check


def rw_vip_only_on(lab: Lab, node: str) -> Condition:
    """The read-write VIP is on ``node``, and only there."""
    return lambda: lab.probe.vip_holders()["read_write"] == [node]


def rw_vip_on_leader(lab: Lab) -> Condition:
    """The read-write VIP is on the leader's node, and only there."""
    def check() -> bool:
        lead = lab.probe.leader()
        return bool(lead) and rw_vip_only_on(lab, lab.node_of(lead))()
    return check


def outcomes_are(lab: Lab, claims: dict[str, Iterable[Outcome]]) -> Condition:
    """Every member's outcome is one of its claimed ones (not "anything but primary")."""
    return lambda: all(lab.outcome(m).outcome in set(o) for m, o in claims.items())


def vip_commit(lab: Lab) -> tuple[bool, str]:
    """One write through the read-write VIP, as an application would."""
    return lab.probe.can_commit(address=lab.topo.vips.read_write)


def commit_waits_for_sync(lab: Lab, member: str | None = None, *, address: str | None = None) -> Condition:
    """A write on ``member`` (or through ``address``) reaches a server that takes it, but its commit waits
    for a synchronous standby and is cancelled, never acknowledged. A refused connection or a read-only
    server is not this (the old "not committed" check accepted any failure)."""
    def check() -> bool:
        ok, why = lab.probe.can_commit(member, address=address)
        return not ok and "waited for a synchronous standby" in why
    return check


def writable_through(lab: Lab, address: str, port: int | None = None) -> bool:
    """A connection to address:port lands on a server out of recovery."""
    got = sql.whoami(lab.topo, address, port)
    return got is not None and got[1] is False


# --- expectations shared by several drills ---------------------------------------------------------

def new_primary_within(lab: Lab, old: str, bound: float, derived: str, *, since: float | None = None,
                       key: str = "new_leader_after_fault_s", how: str = "a replica is the writable leader") -> str:
    """A member other than ``old`` becomes the writable leader within ``bound`` seconds of the fault
    (or of ``since``, a monotonic instant) — the article's bound, asserted and kept with its derivation.
    Returns the new leader."""
    start = lab.t_fault if since is None else since
    lab.expect(new_leader_other_than(lab, old), how, within=bound)
    lab.within_bound(key, lab.since_t(start if start is not None else lab.t_start), bound, derived)
    return lab.leader()


def member_key(lab: Lab, member: str) -> Any:
    """``member``'s key in etcd as its Patroni last wrote it (None: absent, e.g. expired after ttl)."""
    return lab.probe.dcs_key(f"members/{member}")


def leader_unchanged(lab: Lab, leader: str, seconds: float) -> float:
    """``leader`` stays the leader and writable for ``seconds``."""
    return lab.hold(writable_leader(lab, leader), f"{leader} stays the leader and writable", for_=seconds, every=2)


def leader_stays(lab: Lab, leader: str, seconds: float) -> float:
    """``leader`` keeps the leader key for ``seconds`` (no failover happens)."""
    return lab.hold(lambda: lab.probe.leader() == leader, f"{leader} stays the leader", for_=seconds, every=2)


def rejoined(lab: Lab, member: str, within: float, how: str = "rejoins as a replica", every: float = 1.0) -> float:
    """``member`` streams again within ``within`` seconds; returns the seconds it took."""
    return lab.expect(streams(lab, member), f"{member} {how}", within=within, every=every)


def undo_then_rejoined(lab: Lab, member: str, *, within: float, measure: str,
                       how: str = "rejoins as a replica", revive: bool = False) -> float:
    """The common ending: undo the last fault, (start a Patroni a watchdog fenced,) expect ``member``
    to stream again and measure how long that took under ``measure``."""
    lab.undo()
    if revive:
        revive_patroni(lab)
    took = rejoined(lab, member, within, how)
    lab.measure(measure, took)
    return took


def haproxy_reaches(lab: Lab, member: str, within: float = 40) -> float:
    """Wait until haproxy's write port (through its VIP) lands on ``member`` writable; returns the seconds."""
    vip, port = lab.topo.vips.haproxy, lab.topo.ports.haproxy_primary
    address = lab.topo.node(member).address
    return lab.expect(lambda: sql.whoami(lab.topo, vip, port) == (address, False),
                      f"haproxy :{port} on {vip} lands on {member} (after fall/rise checks)", within=within, every=0.5)


# --- operations ----------------------------------------------------------------------------------

def switchover(lab: Lab, candidate: str | None = None, *, within: float = 60) -> tuple[str, str, float]:
    """``patronictl switchover`` from the current leader to ``candidate`` (chosen now if None).
    Returns (old leader, new leader, seconds from the command to a writable new leader)."""
    old = lab.leader()
    new = candidate or pick_candidate(lab)
    op = actions.switchover(lab.node_of(old), scope(lab), old, new, observed=writable_leader(lab, new))
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


FENCED_INSTEAD_OF_DEMOTED = phrase(
    "the lab arms a watchdog (§5.1): the leader's loop waited on the unreachable etcd for most of the watchdog "
    "timeout (ttl - safety_margin), so the watchdog fenced the node before its demotion was done (on a VM: a "
    "reboot); the article's table describes Patroni without a watchdog")


def expect_everyone_read_only(lab: Lab, t: dict) -> dict[str, MemberState]:
    """§5.3 and the table's row 10: every member a read-only replica within retry_timeout + loop_wait
    (+ 25 s margin). A leader fenced by the lab's watchdog instead is a deviation, reported as such
    (the drill differs, with the fencer's record as evidence); stopped or unreachable fails."""
    bound = t["retry_timeout"] + t["loop_wait"] + 25
    seen = lab.expect_outcomes({m: Outcome.REPLICA for m in members(lab)}, "every member is a read-only replica",
                               within=bound, explained={Outcome.FENCED: FENCED_INSTEAD_OF_DEMOTED})
    lab.within_bound("all_read_only_after_s", lab.since_fault(), bound, "retry_timeout + loop_wait + 25")
    lab.measure("outcomes", {m: str(s.outcome) for m, s in seen.items()})
    return seen


def read_only_or_explained(lab: Lab) -> Condition:
    """Every member still a replica (or fenced, the deviation already explained)."""
    return outcomes_are(lab, {m: (Outcome.REPLICA, Outcome.FENCED) for m in members(lab)})


# --- synchronous replication: etcd's /sync key ---------------------------------------------------------

def sync_key(lab: Lab) -> dict:
    value = lab.probe.dcs_key("sync")
    return value if isinstance(value, dict) else {}


def sync_standby(lab: Lab) -> str | None:
    return sync_key(lab).get("sync_standby") or None


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


def fenced_during_drill(lab: Lab, node: str) -> bool:
    """The fencing watchdog fired on ``node`` after this drill started (its state file says when)."""
    state = lab.facts.fencer_state(node)
    if not state.startswith("fired") or not lab.result:
        return False
    when = state.split()[-1]
    try:
        fired = datetime.fromisoformat(when.replace("Z", "+00:00"))
        return fired >= datetime.fromisoformat(lab.result.started)
    except ValueError:
        return False


def fenced_nodes(lab: Lab) -> list[str]:
    return [n.name for n in lab.topo.postgres_nodes if fenced_during_drill(lab, n.name)]


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


# --- Patroni's configuration (always put back in restore) ------------------------------------------------

def restart_pending(lab: Lab) -> bool:
    """True when no member is pending restart; otherwise restart once and return False (call again).
    The primary first: lowering a parameter such as max_connections, a replica keeps at least the
    primary's running value (PostgreSQL refuses less) until it has replayed the primary's change, so
    a replica restarted too early stays pending."""
    pending = [m for m in members(lab) if lab.probe.member_state(m).get("pending_restart")]
    if not pending:
        return True
    lead = lab.probe.leader() or pending[0]
    cmd = ctl.restart(scope(lab), lead) if lead in pending else ctl.restart(scope(lab), pending=True)
    lab.shell.run(lab.node_of(lead), cmd, timeout=300)
    return False


def set_config(lab: Lab, **changes: Any) -> None:
    """Change Patroni's dynamic configuration (``patronictl edit-config -s``), remembered for restore."""
    current = lab.probe.dynamic_config()
    previous = {k: current.get(k) for k in changes}
    lab.say("\n" + lab.tr("config", changes=", ".join(f"{k}={v}" for k, v in changes.items())))
    lab.command(lab.node_of(lab.topo.postgres_nodes[0].member), patroni_config.edit_config_command(changes))
    lab.probe.patch_config(changes)
    lab.on_restore(f"config {previous}", lambda: lab.probe.patch_config(previous))


def set_local(lab: Lab, member: str, updates: dict[str, Any], why: str = "", *,
              fragment: str = patroni_config.DRILL_FRAGMENT, tag: str = patroni_config.MARKER_TAG) -> None:
    """Change one node's local Patroni configuration (dotted keys) and reload Patroni; undone in
    restore. With a configuration directory the change is one extra ``fragment``, merged in name
    order (the drill's last but a negative control's); with the article's single file, the file is
    edited and its original text put back. A marker ``tag`` proves the reload happened (GET /patroni
    shows tags)."""
    node = lab.node_of(member)
    marker = f"{int(time.time() * 1000)}"
    shown = ", ".join(f"{k}: {v}" for k, v in updates.items())
    lab.say("\n" + lab.tr("local_config", node=node, changes=shown))
    if lab.facts.config_is_directory(node):
        path = f"{PATRONI_CONFIG}/{fragment}"
        lab.command(node, f"sudoedit {path}   # {shown}", why)
        lab.command(node, f"sudo systemctl reload {PATRONI_UNIT}")
        _write_file(lab, node, path, patroni_config.dump(patroni_config.with_updates({}, updates, marker, tag)))
        _reloaded(lab, member, marker, tag)
        lab.on_restore(f"{path} on {node}", lambda: _remove_fragment(lab, member, path, tag))
        return
    path = f"{PATRONI_CONFIG}.yml"
    original = lab.run_on(node, f"sudo cat {path}").stdout
    data = patroni_config.with_updates(yaml.safe_load(original) or {}, updates, marker, tag)
    lab.command(node, f"sudoedit {path}   # set {shown}", why)
    lab.command(node, f"sudo systemctl reload {PATRONI_UNIT}")
    _write_file(lab, node, path, patroni_config.dump(data))
    _reloaded(lab, member, marker, tag)

    def put_back() -> None:
        _write_file(lab, node, path, original)
        _reloaded(lab, member, None, tag)
    lab.on_restore(f"{path} on {node}", put_back)


def _write_file(lab: Lab, node: str, path: str, text: str) -> None:
    lab.run_on(node, patroni_config.write_file_command(path, text))
    lab.facts.forget(node)


def _remove_fragment(lab: Lab, member: str, path: str, tag: str = patroni_config.MARKER_TAG) -> None:
    node = lab.node_of(member)
    lab.command(node, f"sudo rm {path} && sudo systemctl reload {PATRONI_UNIT}")
    lab.run_on(node, f"sudo rm -f {path}")
    lab.facts.forget(node)
    _reloaded(lab, member, None, tag)


def _reloaded(lab: Lab, member: str, marker: str | None, tag: str = patroni_config.MARKER_TAG) -> None:
    node = lab.node_of(member)
    if lab.facts.unit_state(node, PATRONI_UNIT) != "active":
        return   # a stopped Patroni reads the file when it starts
    # A SIGHUP that reaches a Patroni still starting up (e.g. just started by an undo) kills it:
    # reload only once its REST API answers, which comes after its signal handlers.
    lab.expect(lambda: lab.probe.rest_alive(member), f"Patroni on {member} is up", within=60)
    lab.run_on(node, f"sudo systemctl reload {PATRONI_UNIT}")
    lab.expect(lambda: (lab.probe.member_state(member).get("tags") or {}).get(tag) == marker,
               f"Patroni on {member} has reloaded its configuration", within=30)


# --- the nodes: shells, logs, interfaces ----------------------------------------------------------------

def psql(lab: Lab, node: str, *statements: str) -> str:
    """``psql`` as postgres over the local socket (peer auth), one -c per statement."""
    bin_dir = lab.facts.bin_dir(node)
    return f"sudo -u postgres {bin_dir}/psql -XAt " + " ".join(f"-c {shlex.quote(s)}" for s in statements)


def node_epoch(lab: Lab, node: str) -> float:
    """The node's clock now (seconds since the epoch), to read its logs from this moment on."""
    out = lab.run_on(node, "date +%s.%N")
    return float(out.stdout.strip())


def journal_mentions(lab: Lab, member: str, words: str, since_epoch: float) -> bool:
    """Patroni's journal on ``member``'s node mentions ``words`` since ``since_epoch`` (the node's clock)."""
    out = lab.shell.run(lab.node_of(member), f"sudo journalctl -u {PATRONI_UNIT} --since @{int(since_epoch)} "
                                             f"--no-pager | grep -ci {words!r}")
    return out.ok and out.stdout.strip() not in ("", "0")


def iface_of(lab: Lab, node: str) -> str:
    """The node's interface on the lab network (the one holding its own address)."""
    addr = lab.topo.node(node).address
    out = lab.run_on(node, f"ip -o -4 addr show to {addr}/32")
    return out.stdout.split()[1]


def mac_of(lab: Lab, node: str) -> str:
    return lab.run_on(node, f"cat /sys/class/net/{iface_of(lab, node)}/address").stdout.strip().lower()


def on_control_host(lab: Lab, command: str, why: str = "") -> None:
    """Show a command typed on the control host (where the lab's CLI runs), not on a node."""
    lab.say("   " + lab.tr("on_control_host") + f"\n   $ {command}" + (f"\n   ({lab.said(why)})" if why else ""))
