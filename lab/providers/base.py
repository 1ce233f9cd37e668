"""What every provider offers: create machines, say how to reach them, destroy them.

Providers never provision; provisioning never knows which provider built a
node. The only thing they share is :class:`Machines`, written to
``.lab/ssh_config`` by :mod:`lab.sshconfig`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from labcore.topology import Topology

Report = Callable[[str], None]


class ProviderError(RuntimeError):
    """The provider cannot do what was asked; the message says what to install or fix."""


@dataclass
class SshHost:
    hostname: str            # always the topology address, checked by the guard
    user: str
    key: str                 # path of the private key
    port: int = 22


@dataclass
class Machines:
    interface: str                           # host-side interface of the lab network
    platform: str                            # debian12 | el7 | ... (provisioning's platform table)
    hosts: dict[str, SshHost] = field(default_factory=dict)   # node name -> how to reach it
    timeout_scale: float | None = None       # slow machines (VMs under TCG): every later wait is stretched


class Provider(Protocol):
    name: str

    def preflight(self, topo: Topology) -> None:
        """Check the host has what this provider needs; raise ProviderError, touching nothing."""

    def create(self, topo: Topology, report: Report) -> Machines:
        """Create (or reuse) the machines; return how to reach them."""

    def destroy(self, topo: Topology, report: Report) -> None:
        """Remove everything this provider created for the lab, and nothing else."""

    # Optional hooks: a provider that subclasses Provider inherits these defaults.

    def expected_interface(self, topo: Topology) -> str | None:
        """The lab network's host interface if it is known before creating anything (the guard checks
        routes against it). Default: not known until the machines exist."""
        return None

    def machine_states(self, topo: Topology) -> dict[str, str]:
        """node name -> running / exited / not created ..., asked without traffic to the nodes
        (`invoke status`). Default: nothing known ("?")."""
        return {}
