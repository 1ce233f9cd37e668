"""The nodes' interfaces on the lab network and their MAC addresses (what ARP tables hold)."""
from __future__ import annotations

from lab.exercises.api.context import Lab


def iface_of(lab: Lab, node: str) -> str:
    """The node's interface on the lab network (the one holding its own address)."""
    addr = lab.topo.node(node).address
    out = lab.run_on(node, f"ip -o -4 addr show to {addr}/32")
    return out.stdout.split()[1]


def mac_of(lab: Lab, node: str) -> str:
    return lab.run_on(node, f"cat /sys/class/net/{iface_of(lab, node)}/address").stdout.strip().lower()
