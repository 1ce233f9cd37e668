"""Faults come in pairs: the command that breaks something, and the command that undoes it.

Each command is the exact text a trainee types on the node (after
``ssh -F .lab/ssh_config <node>``); the engine runs the same text over ssh in
auto mode. ``observed`` tells, from outside, that the fault is in effect, so a
guided drill can wait for the trainee to do it by hand.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Callable

import yaml

from lab.exercises.shell import Shell
from lab.topology import Topology

PATRONI_UNIT = "patroni"
ETCD_UNIT = "etcd"
# The lab's Patroni reads a directory of fragments merged in name order (/etc/patroni/*.yml);
# the article's single /etc/patroni.yml is read too when that is what a node has.
PATRONI_CONFIG = "/etc/patroni"
DRILL_FRAGMENT = "90-lab-drill.yml"


@dataclass
class Fault:
    node: str                      # where the trainee types it (node name)
    what: str                      # one line: what breaks
    command: str                   # shell text, as typed on the node
    undo: str                      # shell text that brings it back
    observed: Callable[[], bool] = field(repr=False, default=lambda: True)


class Facts:
    """What a drill needs to know about a node, read from the node itself (cached per drill run)."""

    def __init__(self, topo: Topology, shell: Shell) -> None:
        self.topo = topo
        self.shell = shell
        self._config: dict[str, dict] = {}

    def patroni_config(self, node: str) -> dict:
        """Patroni's local configuration on the node, fragments merged as Patroni merges them."""
        name = self.topo.node(node).name
        if name not in self._config:
            # the directory is readable by postgres only: expand the glob under sudo
            script = (f"if [ -d {PATRONI_CONFIG} ]; then for f in {PATRONI_CONFIG}/*.yml; do echo ---; cat \"$f\"; "
                      f"done; else cat {PATRONI_CONFIG}.yml; fi")
            out = self.shell.run(name, f"sudo sh -c {shlex.quote(script)}")
            merged: dict = {}
            if out.ok:
                for doc in yaml.safe_load_all(out.stdout):
                    if isinstance(doc, dict):
                        deep_merge(merged, doc)
            self._config[name] = merged
        return self._config[name]

    def config_is_directory(self, node: str) -> bool:
        return self.shell.run(node, f"test -d {PATRONI_CONFIG}").ok

    def forget(self, node: str) -> None:
        self._config.pop(self.topo.node(node).name, None)

    def bin_dir(self, node: str) -> str:
        bin_dir = (self.patroni_config(node).get("postgresql") or {}).get("bin_dir")
        if bin_dir:
            return bin_dir.rstrip("/")
        out = self.shell.run(node, "ls -d /usr/lib/postgresql/*/bin /usr/pgsql-*/bin 2>/dev/null | tail -n1")
        return out.stdout.strip() or "/usr/lib/postgresql/15/bin"

    def data_dir(self, node: str) -> str:
        return (self.patroni_config(node).get("postgresql") or {}).get("data_dir") or self.topo.cluster["data_dir"]

    def unit_restart(self, node: str, unit: str = PATRONI_UNIT) -> str:
        """The unit's Restart= policy (the article's unit says no; Debian's package says on-failure)."""
        out = self.shell.run(node, f"systemctl show -p Restart --value {unit}")
        return out.stdout.strip() or "unknown"

    def unit_state(self, node: str, unit: str) -> str:
        return self.shell.run(node, f"systemctl is-active {unit}").stdout.strip() or "unknown"

    def has_command(self, node: str, cmd: str) -> bool:
        return self.shell.run(node, f"command -v {cmd} || test -x /usr/sbin/{cmd}").ok


def deep_merge(into: dict, other: dict) -> dict:
    for k, v in other.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            deep_merge(into[k], v)
        else:
            into[k] = v
    return into


# --- the faults -------------------------------------------------------------------

def stop_service(facts: Facts, node: str, unit: str, what: str) -> Fault:
    name = facts.topo.node(node).name
    return Fault(name, what, f"sudo systemctl stop {unit}", f"sudo systemctl start {unit}",
                 observed=lambda: facts.unit_state(name, unit) != "active")


def stop_patroni(facts: Facts, node: str) -> Fault:
    return stop_service(facts, node, PATRONI_UNIT, f"Patroni on {node} stopped cleanly")


def stop_etcd(facts: Facts, node: str) -> Fault:
    return stop_service(facts, node, ETCD_UNIT, f"etcd on {node} stopped")


def _patroni_pid_gone(facts: Facts, node: str, old_pid: str) -> Callable[[], bool]:
    def gone() -> bool:
        pid = facts.shell.run(node, f"systemctl show -p MainPID --value {PATRONI_UNIT}").stdout.strip()
        return pid != old_pid
    return gone


def kill_patroni(facts: Facts, node: str) -> Fault:
    """kill -9 of Patroni's main process: PostgreSQL keeps running, nobody tells it anything."""
    name = facts.topo.node(node).name
    pid = facts.shell.run(name, f"systemctl show -p MainPID --value {PATRONI_UNIT}").stdout.strip()
    return Fault(name, f"Patroni on {node} killed with kill -9 (PostgreSQL left running)",
                 f"sudo kill -9 $(systemctl show -p MainPID --value {PATRONI_UNIT})",
                 f"sudo systemctl reset-failed {PATRONI_UNIT}; sudo systemctl start {PATRONI_UNIT}",
                 observed=_patroni_pid_gone(facts, name, pid))


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
                 pg_ctl(facts, name, "stop"),
                 "true  # nothing to undo: Patroni starts PostgreSQL again",
                 observed=lambda: not is_up(member))


def promote_postgres(facts: Facts, node: str, in_recovery: Callable[[str], bool | None]) -> Fault:
    """A replica's PostgreSQL promoted by hand: a primary Patroni did not choose."""
    name = facts.topo.node(node).name
    member = facts.topo.node(node).member
    return Fault(name, f"PostgreSQL on {node} promoted by hand, without the leader key",
                 pg_ctl(facts, name, "promote"),
                 "true  # nothing to undo: Patroni demotes it",
                 observed=lambda: in_recovery(member) is False)


def _etcd_rules(topo: Topology) -> list[str]:
    port = topo.ports["etcd_client"]
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
    ensure_iptables(facts, name)
    rules = _etcd_rules(facts.topo)
    inject = " && ".join(f"sudo iptables -I {r}" for r in rules)
    undo = "; ".join(f"while sudo iptables -D {r} 2>/dev/null; do :; done" for r in rules)
    check = " && ".join(f"sudo iptables -C {r}" for r in rules)
    return Fault(name, f"{node} cut off from etcd (iptables DROP to etcd's client port)", inject, undo,
                 observed=lambda: facts.shell.run(name, check).ok)


def block_port(facts: Facts, node: str, port: int) -> Fault:
    """Something else listening on PostgreSQL's port: PostgreSQL cannot start there."""
    name = facts.topo.node(node).name
    unit = "lab-drill-port-blocker"
    cmd = (f"sudo systemd-run --unit={unit} python3 -c "
           + shlex.quote("import socket,time; s=socket.socket(); s.bind(('0.0.0.0', %d)); s.listen(); time.sleep(86400)" % port))
    return Fault(name, f"port {port} on {node} taken by another program", cmd,
                 f"sudo systemctl stop {unit}",
                 observed=lambda: facts.unit_state(name, unit) == "active")


def undo_all_commands(topo: Topology) -> dict[str, list[str]]:
    """Per node, commands that return it to the baseline whatever a drill did (used by repair)."""
    rules = _etcd_rules(topo)
    out: dict[str, list[str]] = {}
    for n in topo.nodes:
        cmds = [f"command -v iptables >/dev/null && while sudo iptables -D {r} 2>/dev/null; do :; done; true"
                for r in rules]
        cmds.append("sudo systemctl stop lab-drill-port-blocker 2>/dev/null; true")
        if n.etcd:
            cmds.append(f"sudo systemctl start {ETCD_UNIT}")
        if n.has("postgres"):
            cmds.append(f"sudo kill -CONT $(systemctl show -p MainPID --value {PATRONI_UNIT}) 2>/dev/null; true")
            cmds.append(f"systemctl is-active -q {PATRONI_UNIT} || {{ sudo systemctl reset-failed {PATRONI_UNIT}; "
                        f"sudo systemctl start {PATRONI_UNIT}; }}")
        out[n.name] = cmds
    return out
