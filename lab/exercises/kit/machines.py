"""Faults only a VM's host can make: the node's machine powered off hard, its network link cut, or
reset. Each is one virsh command typed on the control host (``HOST``), on the lab's own domain of the
node, and nothing else: the host sends no traffic anywhere. Containers have no machine to power
off; on them the drills that need one are not applicable (``is_vm``). The host's commands need root
or the libvirt group, as the lab's libvirt path does."""
from __future__ import annotations

import shlex
from typing import Callable

from labcore import state as lab_state
from labcore.topology import Topology
from labcore.vm import domain_name, mac_for
from lab.exercises.kit.actions import Fault
from lab.exercises.kit.facts import Facts
from lab.exercises.kit.shell import HOST, run_on_host

VM_PROVIDERS = ("libvirt",)
VIRSH = "virsh -c qemu:///system"


def provider() -> str | None:
    """The provider that made the lab's machines (from the lab's state)."""
    return lab_state.load().provider


def is_vm(name: str | None) -> bool:
    """Machines of this provider are VMs of this host, which it can power off, reset or unplug."""
    return name in VM_PROVIDERS


def _domain(topo: Topology, node: str) -> str:
    return shlex.quote(domain_name(topo, node))


def domain_state(topo: Topology, node: str) -> str:
    """libvirt's word for the node's domain: running, shut off, paused, ... ('' if virsh cannot say)."""
    return run_on_host(f"{VIRSH} domstate {_domain(topo, node)}").stdout.strip()


def link_state(topo: Topology, node: str) -> str:
    """up or down: the link of the node's NIC on the lab network, as libvirt has it."""
    out = run_on_host(f"{VIRSH} domif-getlink {_domain(topo, node)} {mac_for(topo.node(node).address)}").stdout
    return out.split()[-1] if out.split() else ""


def power_off(facts: Facts, node: str) -> Fault:
    """``virsh destroy``: the machine stops at once, as if its power cord were pulled (no shutdown,
    nothing written to disk that was not already); ``virsh start`` boots it again."""
    topo, dom = facts.topo, _domain(facts.topo, node)
    name = topo.node(node).name
    return Fault(HOST, f"the machine of {name} powered off hard (virsh destroy)",
                 f"{VIRSH} destroy {dom}", f"{VIRSH} start {dom}",
                 observed=lambda: domain_state(topo, name) == "shut off")


def link_down(facts: Facts, node: str) -> Fault:
    """``virsh domif-setlink ... down``: the node's one NIC loses its carrier; the machine runs on,
    cut off from etcd, the other members, the clients and the lab's own probes alike."""
    topo, dom = facts.topo, _domain(facts.topo, node)
    name, mac = topo.node(node).name, mac_for(topo.node(node).address)
    return Fault(HOST, f"the network link of {name}'s machine cut (virsh domif-setlink down)",
                 f"{VIRSH} domif-setlink {dom} {mac} down", f"{VIRSH} domif-setlink {dom} {mac} up",
                 observed=lambda: link_state(topo, name) == "down")


def reset(facts: Facts, node: str, gone: Callable[[], bool]) -> Fault:
    """``virsh reset``: the machine restarts at once, as the reset button (or a watchdog) does; it
    boots by itself. The undo only starts it should it be off; ``gone`` says from outside that the
    node stopped answering (its kernel is gone the moment the reset happens)."""
    topo, dom = facts.topo, _domain(facts.topo, node)
    name = topo.node(node).name
    return Fault(HOST, f"the machine of {name} reset (virsh reset)", f"{VIRSH} reset {dom}",
                 f"{VIRSH} domstate {dom} | grep -qx running || {VIRSH} start {dom}",
                 observed=gone)
