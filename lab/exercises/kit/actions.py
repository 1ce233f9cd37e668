"""Actions on the lab: faults (something breaks; an undo brings it back) and operations (a change a
person makes on purpose: switchover, failover, edit-config, pause, reinit).

An action's command is the exact text a trainee types on the node (after
``ssh -F .lab/ssh_config <node>``); the runner runs the same text over ssh in
auto mode. ``observed`` tells, from outside, that the action took effect, so a
guided drill can wait for the trainee to do it by hand.

Building an action touches nothing: whatever must be read or installed on a
node first (a PID, the iptables tool, PostgreSQL's bin directory) happens in
``prepare``/``command`` when the action is run.
"""
from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable

from lab.exercises.kit import ctl
from lab.exercises.kit.facts import Facts
from lab.exercises.kit.patroni_config import ETCD_UNIT, PATRONI_UNIT
from labcore.topology import Topology

Text = str | Callable[[], str]       # shell text, or how to compute it when the action runs


@dataclass
class Action:
    node: str                      # where the trainee types it (node name)
    what: str                      # one line: what happens
    command: Text                  # shell text, as typed on the node
    undo: str | None = None        # shell text that brings it back (None: nothing to undo)
    observed: Callable[[], bool] = field(repr=False, default=lambda: True)
    prepare: Callable[[], Any] | None = field(repr=False, default=None)   # run first, when the action runs

    def text(self) -> str:
        """The command, computed now (reads the node if it must)."""
        return self.command() if callable(self.command) else self.command


@dataclass
class Fault(Action):
    """Something breaks; ``undo`` brings it back (the runner undoes every fault still in effect)."""

    def __post_init__(self) -> None:
        if not self.undo:
            raise TypeError(f"fault {self.what!r} needs an undo command")


@dataclass
class Operation(Action):
    """A change made on purpose. Most have nothing to undo; one that has (pause -> resume) says so."""


# --- faults -------------------------------------------------------------------------

def stop_service(facts: Facts, node: str, unit: str, what: str) -> Fault:
    name = facts.topo.node(node).name
    return Fault(name, what, f"sudo systemctl stop {unit}", f"sudo systemctl start {unit}",
                 observed=lambda: facts.unit_state(name, unit) != "active")


def stop_patroni(facts: Facts, node: str) -> Fault:
    return stop_service(facts, node, PATRONI_UNIT, f"Patroni on {node} stopped cleanly")


def stop_etcd(facts: Facts, node: str) -> Fault:
    return stop_service(facts, node, ETCD_UNIT, f"etcd on {node} stopped")


def patroni_pid(facts: Facts, node: str) -> str:
    return facts.shell.run(node, f"systemctl show -p MainPID --value {PATRONI_UNIT}").stdout.strip()


def kill_patroni(facts: Facts, node: str) -> Fault:
    """kill -9 of Patroni's main process: PostgreSQL keeps running, nobody tells it anything."""
    name = facts.topo.node(node).name
    before: list[str] = []          # Patroni's PID when the fault runs: "killed" = another PID (or none)

    def remember() -> None:
        before[:] = [patroni_pid(facts, name)]
    return Fault(name, f"Patroni on {node} killed with kill -9 (PostgreSQL left running)",
                 f"sudo kill -9 $(systemctl show -p MainPID --value {PATRONI_UNIT})",
                 f"sudo systemctl reset-failed {PATRONI_UNIT}; sudo systemctl start {PATRONI_UNIT}",
                 observed=lambda: bool(before) and patroni_pid(facts, name) != before[0],
                 prepare=remember)


def freeze_patroni(facts: Facts, node: str, rest_alive: Callable[[str], bool]) -> Fault:
    """SIGSTOP: Patroni still exists but does nothing: the 'host hangs' case of article §5.1."""
    name = facts.topo.node(node).name
    member = facts.topo.node(node).member
    return Fault(name, f"Patroni on {node} frozen with SIGSTOP (a hung process)",
                 f"sudo kill -STOP $(systemctl show -p MainPID --value {PATRONI_UNIT})",
                 f"sudo kill -CONT $(systemctl show -p MainPID --value {PATRONI_UNIT}) 2>/dev/null; "
                 f"systemctl is-active -q {PATRONI_UNIT} || "
                 f"{{ sudo systemctl reset-failed {PATRONI_UNIT}; sudo systemctl start {PATRONI_UNIT}; }}",
                 observed=lambda: not rest_alive(member))


def pg_ctl(facts: Facts, node: str, action: str) -> str:
    return (f"sudo -u postgres {facts.bin_dir(node)}/pg_ctl {action} -D {facts.data_dir(node)}"
            + (" -m fast" if action == "stop" else ""))


def stop_postgres(facts: Facts, node: str, is_up: Callable[[str], bool]) -> Fault:
    """PostgreSQL stopped behind Patroni's back; Patroni's next loop decides what happens."""
    name = facts.topo.node(node).name
    member = facts.topo.node(node).member
    return Fault(name, f"PostgreSQL on {node} stopped with pg_ctl (Patroni still running)",
                 lambda: pg_ctl(facts, name, "stop"),
                 "true  # nothing to undo: Patroni starts PostgreSQL again",
                 observed=lambda: not is_up(member))


HELD_POSTMASTER = "/tmp/lab-held-postmaster"   # written by the postgres user: the held postmaster's pid
REAL_POSTGRES = "postgres.lab-real"               # the real binary, beside the stand-in while a start is held


def _held_start_script(bin_dir: str) -> str:
    """A stand-in for ``postgres`` that stops itself (SIGSTOP) the first time it is started as a postmaster
    (``-D``), before it does anything; every other call (``--version``, ``--describe-config``) runs the
    real binary. Deterministic, unlike freezing a postmaster that may already accept connections."""
    real, here = f"{bin_dir}/{REAL_POSTGRES}", f"{bin_dir}/postgres"
    return "\n".join([
        "#!/bin/sh",
        "# patroni-lab, primary-pg-stop: the next postmaster start is held; the drill's undo puts the real",
        "# binary back and ends this start, which never began",
        f'case " $* " in *" -D "*) if [ ! -e {HELD_POSTMASTER} ]; then echo $$ > {HELD_POSTMASTER}; kill -STOP $$; fi;; esac',
        f'if [ -x {real} ]; then exec {real} "$@"; fi',
        f'exec {here} "$@"', ""])


HELD_BIN = "/run/lab-held-postgres-bin"         # which bin directory holds the stand-in (root's)
# Put the real ``postgres`` back, then end a held start (it never began). Not SIGCONT: Patroni looks for
# its postmaster through postmaster.pid, which a held start never wrote, so a stop Patroni asked for
# meanwhile never reached it, and let go it would come up as a primary after the failover (seen: writes
# acknowledged after the fork). Harmless when nothing is held; the repair of any drill runs it too.
RELEASE_HELD_START = "sudo sh -c " + shlex.quote(
    f"b=$(cat {HELD_BIN} 2>/dev/null); "
    f"if [ -n \"$b\" ] && [ -e \"$b/{REAL_POSTGRES}\" ]; then mv -f \"$b/{REAL_POSTGRES}\" \"$b/postgres\"; fi; "
    f"if [ -e {HELD_POSTMASTER} ]; then kill -KILL $(cat {HELD_POSTMASTER}) 2>/dev/null; fi; "
    f"rm -f {HELD_POSTMASTER} {HELD_BIN}") + "; true"


def slow_start_postgres(facts: Facts, node: str, is_up: Callable[[str], bool]) -> Fault:
    """PostgreSQL stopped behind Patroni's back, and the start Patroni makes next held up: the postmaster
    it launches stops itself before it starts (a stand-in for the binary, one start only): a start that
    takes as long as the drill wants (a long crash recovery, a slow disk). The undo puts the binary back
    and ends the held start, as Patroni's own stop of a start it gave up on would."""
    name = facts.topo.node(node).name
    member = facts.topo.node(node).member

    def command() -> str:
        bin_dir = facts.bin_dir(name)
        real, here = f"{bin_dir}/{REAL_POSTGRES}", f"{bin_dir}/postgres"
        script = base64.b64encode(_held_start_script(bin_dir).encode()).decode()
        install = (f"rm -f {HELD_POSTMASTER}; echo {bin_dir} > {HELD_BIN}; [ -e {real} ] || cp -p {here} {real}; "
                   f"echo {script} | base64 -d > {here}.lab-new && chmod 755 {here}.lab-new && "
                   f"mv -f {here}.lab-new {here}")
        # the stand-in first, then the stop: Patroni's next start (within a loop_wait) finds it in place
        return f"sudo sh -c {shlex.quote(install)} && {pg_ctl(facts, name, 'stop')}"

    return Fault(name, f"PostgreSQL on {node} stopped, and its next start held up (postmaster frozen at start)",
                 command, RELEASE_HELD_START,
                 observed=lambda: not is_up(member))


def promote_postgres(facts: Facts, node: str, in_recovery: Callable[[str], bool | None]) -> Fault:
    """A replica's PostgreSQL promoted by hand: a primary Patroni did not choose."""
    name = facts.topo.node(node).name
    member = facts.topo.node(node).member
    return Fault(name, f"PostgreSQL on {node} promoted by hand, without the leader key",
                 lambda: pg_ctl(facts, name, "promote"),
                 "true  # nothing to undo: Patroni demotes it",
                 observed=lambda: in_recovery(member) is False)


def _etcd_rules(topo: Topology) -> list[str]:
    port = topo.ports.etcd_client
    return [f"OUTPUT -d {n.address} -p tcp --dport {port} -j DROP" for n in topo.etcd_nodes]


IPTABLES_READY = ("command -v iptables >/dev/null || { sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                  "iptables >/dev/null 2>&1 || { sudo apt-get update -q >/dev/null && sudo DEBIAN_FRONTEND="
                  "noninteractive apt-get install -y -q iptables >/dev/null; }; }")


def ensure_iptables(facts: Facts, node: str) -> bool:
    """iptables is the partition tool; Debian's minimal nodes may lack it (installed from the apt mirror)."""
    return facts.shell.run(node, IPTABLES_READY, timeout=300).ok


def cut_from_etcd(facts: Facts, node: str) -> Fault:
    """Drop everything the node sends to etcd's client port: a partition from the DCS only."""
    name = facts.topo.node(node).name
    rules = _etcd_rules(facts.topo)
    inject = " && ".join(f"sudo iptables -I {r}" for r in rules)
    undo = "; ".join(f"while sudo iptables -D {r} 2>/dev/null; do :; done" for r in rules)
    check = " && ".join(f"sudo iptables -C {r}" for r in rules)
    return Fault(name, f"{node} cut off from etcd (iptables DROP to etcd's client port)", inject, undo,
                 observed=lambda: facts.shell.run(name, check).ok,
                 prepare=lambda: ensure_iptables(facts, name))


def block_port(facts: Facts, node: str, port: int) -> Fault:
    """Something else listening on PostgreSQL's port: PostgreSQL cannot start there."""
    name = facts.topo.node(node).name
    unit = "lab-drill-port-blocker"
    cmd = (f"sudo systemd-run --unit={unit} python3 -c "
           + shlex.quote("import socket,time; s=socket.socket(); s.bind(('0.0.0.0', %d)); s.listen(); time.sleep(86400)" % port))
    return Fault(name, f"port {port} on {node} taken by another program", cmd,
                 f"sudo systemctl stop {unit}",
                 observed=lambda: facts.unit_state(name, unit) == "active")


def fault_undo_commands(topo: Topology) -> dict[str, list[str]]:
    """Per node, commands that take back every fault a drill can leave (rules, blockers, a frozen
    Patroni, a held start), starting no service."""
    rules = _etcd_rules(topo)
    out: dict[str, list[str]] = {}
    for n in topo.nodes:
        cmds = [f"command -v iptables >/dev/null && while sudo iptables -D {r} 2>/dev/null; do :; done; true"
                for r in rules]
        cmds.append("sudo systemctl stop lab-drill-port-blocker 2>/dev/null; true")
        if n.has("postgres"):
            cmds.append(f"sudo kill -CONT $(systemctl show -p MainPID --value {PATRONI_UNIT}) 2>/dev/null; true")
            cmds.append(RELEASE_HELD_START)
        out[n.name] = cmds
    return out


def undo_all_commands(topo: Topology) -> dict[str, list[str]]:
    """Per node, commands that return it to the baseline whatever a drill did (used by repair):
    every fault taken back, then etcd and Patroni started where they are not running."""
    out = fault_undo_commands(topo)
    for n in topo.nodes:
        if n.etcd:
            out[n.name].append(f"sudo systemctl start {ETCD_UNIT}")
        if n.has("postgres"):
            out[n.name].append(f"systemctl is-active -q {PATRONI_UNIT} || {{ sudo systemctl reset-failed {PATRONI_UNIT}; "
                               f"sudo systemctl start {PATRONI_UNIT}; }}")
    return out


# --- operations ---------------------------------------------------------------------

def switchover(node: str, scope: str, leader: str, candidate: str, observed: Callable[[], bool],
               leader_flag: str = "--leader") -> Operation:
    return Operation(node, f"switchover: {leader} hands the primary to {candidate}",
                     ctl.switchover(scope, leader, candidate, leader_flag), observed=observed)


def failover(node: str, scope: str, candidate: str, observed: Callable[[], bool]) -> Operation:
    return Operation(node, f"manual failover to {candidate}", ctl.failover(scope, candidate), observed=observed)


def edit_config_pg(node: str, scope: str, what: str, observed: Callable[[], bool], **params: object) -> Operation:
    """``patronictl edit-config -p``; the drill puts the old value back itself (see its restore)."""
    return Operation(node, what, ctl.edit_config_pg(scope, **params), observed=observed)


def pause(node: str, scope: str, observed: Callable[[], bool]) -> Operation:
    """Maintenance mode; its undo is ``resume``."""
    return Operation(node, "cluster paused (maintenance mode)", ctl.pause(scope), ctl.resume(scope),
                     observed=observed)


def reinit(node: str, scope: str, member: str, observed: Callable[[], bool]) -> Operation:
    return Operation(node, f"{member} reinitialised", ctl.reinit(scope, member), observed=observed)
