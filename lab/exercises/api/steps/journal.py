"""The nodes' clocks and Patroni's journal: read a node's log from a moment on."""
from __future__ import annotations

from lab.exercises.api.context import Lab
from lab.exercises.kit.patroni_config import PATRONI_UNIT


def node_epoch(lab: Lab, node: str) -> float:
    """The node's clock now (seconds since the epoch), to read its logs from this moment on."""
    out = lab.run_on(node, "date +%s.%N")
    return float(out.stdout.strip())


def journal_mentions(lab: Lab, member: str, words: str, since_epoch: float) -> bool:
    """Patroni's journal on ``member``'s node mentions ``words`` since ``since_epoch`` (the node's clock)."""
    out = lab.shell.run(lab.node_of(member), f"sudo journalctl -u {PATRONI_UNIT} --since @{int(since_epoch)} "
                                             f"--no-pager | grep -ci {words!r}")
    return out.ok and out.stdout.strip() not in ("", "0")
