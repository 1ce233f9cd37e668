"""The names a node's VM has in libvirt, one formula for every path that makes or touches one: the
Vagrantfile (through lab.providers.libvirt), the Pulumi program, and the drills that power a VM off
or cut its link from the host."""
from __future__ import annotations

import ipaddress

from labcore.topology import Topology


def mac_for(address: str) -> str:
    """A stable MAC per node (QEMU's 52:54:00 prefix + the address's last 3 octets)."""
    o = ipaddress.IPv4Address(address).packed
    return "52:54:00:%02x:%02x:%02x" % (o[1], o[2], o[3])


def domain_prefix(topo: Topology) -> str:
    """What every domain of the lab starts with (vagrant-libvirt's ``default_prefix``)."""
    return f"{topo.name}_"


def domain_name(topo: Topology, node: str) -> str:
    """The libvirt domain of ``node`` (a name or a member)."""
    return domain_prefix(topo) + topo.node(node).name
