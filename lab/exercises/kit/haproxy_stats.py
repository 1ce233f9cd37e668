"""haproxy's stats page read as data (article §7.4): which backend server is UP or DOWN.

``GET /;csv`` on the stats port returns one CSV line per proxy/server; the
lab's server names carry the member's address, so a row maps back to a node.
"""
from __future__ import annotations

import csv
import io

from labcore import remote
from labcore.topology import Topology


def parse(text: str) -> dict[tuple[str, str], str]:
    """(proxy, server) -> status (UP, DOWN, "UP 1/3", MAINT, no check ...) for every server row."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError("not haproxy stats CSV (expected a '# pxname,svname,...' header)")
    lines[0] = lines[0][2:]
    out: dict[tuple[str, str], str] = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        if row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        out[(row["pxname"], row["svname"])] = row.get("status", "")
    return out


def servers_up(stats: dict[tuple[str, str], str], proxy: str,
               servers: dict[str, tuple[str, ...]]) -> dict[str, bool]:
    """key -> is its server UP in ``proxy``. Each key lists the names its server may carry:
    the lab names servers after the member (``pg1``), the article after the address
    (``postgresql_192.168.234.201_5432``); both are matched, an address only as a whole token."""
    out: dict[str, bool] = {}
    for key, names in servers.items():
        rows = [st for (px, sv), st in stats.items() if px == proxy and any(_names(sv, n) for n in names)]
        out[key] = bool(rows) and rows[0].split()[0] == "UP"
    return out


def _names(server: str, name: str) -> bool:
    # "postgresql_192.168.234.201_5432" must not match .20 or .2011
    return server == name or any(part == name for part in server.replace(":", "_").split("_"))


def read(topo: Topology) -> dict[tuple[str, str], str]:
    """The stats page, through haproxy's own VIP, parsed (raises when it does not answer)."""
    status, body = remote.http(topo, topo.vips.haproxy, topo.ports.haproxy_stats, "/;csv")
    if status != 200 or not isinstance(body, str):
        raise RuntimeError(f"stats page answered {status}")
    return parse(body)


def backends(topo: Topology, proxy: str) -> dict[str, bool]:
    """member -> is its server UP in ``proxy`` (server named after the member or its address)."""
    servers = {n.member: (n.member, n.address) for n in topo.postgres_nodes}
    return servers_up(read(topo), proxy, servers)
