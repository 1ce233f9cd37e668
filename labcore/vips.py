"""Who holds a VIP, read from the nodes' own addresses (``ip -o -4 addr show`` on each node)."""
from __future__ import annotations

from labcore.topology import Topology

ADDRESSES_COMMAND = "ip -o -4 addr show"


def addresses(ip_output: str) -> set[str]:
    """The IPv4 addresses in the output of ``ip -o -4 addr show`` (the token after each ``inet``)."""
    out = set()
    for line in ip_output.splitlines():
        tokens = line.split()
        out.update(tok.split("/")[0] for prev, tok in zip(tokens, tokens[1:]) if prev == "inet")
    return out


def holders(topo: Topology, outputs: dict[str, str | None]) -> dict[str, list[str]]:
    """VIP role -> nodes holding it, from each node's ``ip -o -4 addr show`` (None: the node did not answer)."""
    held: dict[str, list[str]] = {role: [] for role in topo.vips}
    for node, text in outputs.items():
        if text is None:
            continue
        mine = addresses(text)
        for role, vip in topo.vips.items():
            if vip in mine:
                held[role].append(node)
    return held
