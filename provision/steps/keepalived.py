"""Step 8, article §7.3: the read-only VIP held by keepalived on a replica."""
from __future__ import annotations

from labcore.topology import Node, Topology
from provision.context import Context
from provision.engine import File, Resource, Service

NAME = "keepalived"
SECTION = "7.3"
TITLE = "read-only VIP by keepalived tracking Patroni's REST API"


def nodes(topo: Topology) -> list[Node]:
    return topo.postgres_nodes


def vrid(address: str) -> int:
    """VRRP router id: the VIP's last octet (unique per VIP, as the article numbers them)."""
    return int(address.rsplit(".", 1)[1])


def main_config(ctx: Context) -> File:
    return File(f"{ctx.platform.keepalived_dir}/keepalived.conf", ctx.render("keepalived.conf.j2"))


def resources(ctx: Context) -> list[Resource]:
    main = main_config(ctx)
    ro = File(f"{ctx.platform.keepalived_dir}/conf.d/read-only-vip.conf",
              ctx.render("keepalived-ro.conf.j2", vrid=vrid(ctx.topo.vips.read_only)))
    return [*ctx.packages("keepalived"), main, ro, Service("keepalived", restart_on=(main.key, ro.key))]
