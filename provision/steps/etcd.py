"""Step 3, article §3: etcd, the DCS Patroni keeps its leader lock in.

One member on node4 as the article; ``etcd.members`` in the topology lists
three for the production layout the article recommends. debian12 serves the v3
API that Patroni 4's ``etcd3:`` section uses; el7 serves v2 for ``etcd:``.
"""
from __future__ import annotations

from typing import Callable

from lab.topology import Node, Topology
from provision import waits
from provision.context import Context
from provision.engine import Command, File, Resource, Service, Wave

NAME = "etcd"
SECTION = "3"
TITLE = "etcd (the DCS)"


def nodes(topo: Topology) -> list[Node]:
    return topo.etcd_nodes


def resources(ctx: Context) -> list[Resource]:
    p = ctx.platform
    conf = File(p.etcd_conf, ctx.render("etcd.conf.j2"))
    url = f"http://{ctx.node.address}:{ctx.topo.ports['etcd_client']}/health"
    # An up-to-date file says nothing about the running daemon (the package may have started
    # it with its defaults): check that it serves where Patroni will look.
    serving = Command(f"etcd answers on {url}", (f"systemctl restart {p.etcd_service}",),
                      f"curl -sf --max-time 3 {url}")
    service = Service(p.etcd_service, restart_on=(conf.key,))
    serving.settled_by = (service.key,)
    return [*ctx.packages("etcd"), conf, service, serving]


def settle(topo: Topology, wave: Wave, report: Callable[[str], None]) -> None:
    for n in wave.nodes:
        waits.http_ok(topo, n.address, topo.ports["etcd_client"], "/health", f"etcd on {n.name} healthy")
