"""Step 9, article §7.4: haproxy on the haproxy nodes, itself made highly available by keepalived.

Deviation: haproxy's keepalived VIP is ``vips.haproxy`` (.212), not the
article's .210, so that it and the callback's rw VIP both work at once.
"""
from __future__ import annotations

from labcore.topology import Node, Topology
from provision.context import Context
from provision.engine import Command, File, Resource, Service
from provision.steps.keepalived import main_config, vrid

NAME = "haproxy"
SECTION = "7.4"
TITLE = "haproxy (5000 primary, 6000 replicas, 7000 stats) with its own VIP"


def nodes(topo: Topology) -> list[Node]:
    return topo.haproxy_nodes


def resources(ctx: Context) -> list[Resource]:
    cfg = File(ctx.platform.haproxy_conf, ctx.render("haproxy.cfg.j2"))
    service = Service("haproxy", reload_on=(cfg.key,))
    port = ctx.topo.ports.haproxy_primary
    # The package starts haproxy with its own defaults: an up-to-date file is not proof enough.
    listening = Command(f"haproxy listens on :{port}", ("systemctl restart haproxy",),
                        f"ss -ltn 'sport = :{port}' | grep -q LISTEN", settled_by=(service.key,))
    main = main_config(ctx)
    ha = File(f"{ctx.platform.keepalived_dir}/conf.d/haproxy-vip.conf",
              ctx.render("keepalived-haproxy.conf.j2", vrid=vrid(ctx.topo.vips.haproxy)))
    return [*ctx.packages("haproxy", "keepalived"), cfg, service, listening,
            main, ha, Service("keepalived", restart_on=(main.key, ha.key))]
