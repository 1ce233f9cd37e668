"""SQL on the servers: psql as a node's shell types it, and writes or connections through an address."""
from __future__ import annotations

import shlex

from lab.exercises.api.context import Lab
from lab.exercises.kit import sql


def psql(lab: Lab, node: str, *statements: str) -> str:
    """``psql`` as postgres over the local socket (peer auth), one -c per statement."""
    bin_dir = lab.facts.bin_dir(node)
    return f"sudo -u postgres {bin_dir}/psql -XAt " + " ".join(f"-c {shlex.quote(s)}" for s in statements)


def vip_commit(lab: Lab) -> tuple[bool, str]:
    """One write through the read-write VIP, as an application would."""
    return lab.probe.can_commit(address=lab.topo.vips.read_write)


def writable_through(lab: Lab, address: str, port: int | None = None) -> bool:
    """A connection to address:port lands on a server out of recovery."""
    got = sql.whoami(lab.topo, address, port)
    return got is not None and got[1] is False
