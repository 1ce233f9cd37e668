"""``$LAB_DIR/ssh_config``: the one way people, Fabric and tests reach the nodes.

``ssh -F .lab/ssh_config node1`` (or ``pg1``, the member name). HostName is
always the node's topology address, so every connection passes through the
lab's own network and the safety guard's reasoning holds.
"""
from __future__ import annotations

from pathlib import Path

from lab.providers.base import Machines
from labcore.state import lab_dir
from labcore.topology import Topology


def path() -> Path:
    return lab_dir() / "ssh_config"


def render(topo: Topology, machines: Machines) -> str:
    """The ssh_config text: one block per node, aliased by node and member name."""
    blocks = [f"# Written by `invoke up` from {topo.path.name}; regenerated on every run.\n"]
    for n in topo.nodes:
        h = machines.hosts[n.name]
        aliases = n.name if n.member == n.name else f"{n.name} {n.member}"
        blocks.append(
            f"Host {aliases}\n"
            f"  HostName {n.address}\n"
            f"  User {h.user}\n"
            f"  Port {h.port}\n"
            f"  IdentityFile {h.key}\n"
            "  IdentitiesOnly yes\n"
            # Nodes are rebuilt with fresh host keys: remembering them only breaks the next run.
            "  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n"
            "  LogLevel ERROR\n"
            "  ConnectTimeout 10\n"
            "  ServerAliveInterval 15\n")
    return "\n".join(blocks)


def write(topo: Topology, machines: Machines) -> Path:
    p = path()
    p.write_text(render(topo, machines))
    p.chmod(0o644)
    return p


def remove() -> None:
    path().unlink(missing_ok=True)
