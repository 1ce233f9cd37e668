"""The client's view of a VIP at layer 2 (article §7.2): which MAC its ARP entry holds.

Reads the control host's neighbour table only (``ip neigh``); no packet is
sent, so it needs no guard. A drill first connects to the VIP (guarded),
which creates the entry, then watches it follow the VIP to the new primary.
"""
from __future__ import annotations

import json
import subprocess
from typing import Callable

Runner = Callable[..., subprocess.CompletedProcess]


def neighbour_mac(address: str, *, run: Runner = subprocess.run) -> str | None:
    """The MAC the host's neighbour table holds for ``address``, or None (absent/failed)."""
    try:
        done = run(["ip", "-j", "neigh", "show", address], capture_output=True, text=True, timeout=5)
        entries = json.loads(done.stdout or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    for e in entries:
        if e.get("dst") == address and e.get("lladdr") and "FAILED" not in e.get("state", []):
            return str(e["lladdr"]).lower()
    return None
