"""Step 1, article §2: one clock for the lab (chrony; the article uses ntpdate)."""
from __future__ import annotations

from labcore.topology import Node, Topology
from provision.context import Context
from provision.engine import File, Resource, Service

NAME = "time"
SECTION = "2"
TITLE = "time sync (chrony, served by the first etcd node)"


def nodes(topo: Topology) -> list[Node]:
    return list(topo.nodes)


def resources(ctx: Context) -> list[Resource]:
    p = ctx.platform
    unit = p.chrony_service
    conf = File(p.chrony_conf, ctx.render("chrony.conf.j2"))
    options = File(p.chrony_options_file, ctx.render("chrony-options.j2"))
    dropin = File(f"/etc/systemd/system/{unit}.service.d/patroni-lab-container.conf",
                  ctx.render("chrony-container.conf.j2") if ctx.facts.container else None,
                  after=("systemctl daemon-reload",))
    return [*ctx.packages("time"), conf, options, dropin,
            Service(unit, restart_on=(conf.key, options.key, dropin.key))]
