"""Step 10, article §8.1: cascading replication inside the cluster (tag ``replicatefrom``).

Off unless the topology's ``options.replicatefrom`` maps a member to its source
(e.g. ``{pg3: pg2}``); a drill may switch it on at run time the same way.
"""
from __future__ import annotations

from labcore.topology import Node, Topology
from provision.context import PATRONI_CONF_DIR, Context
from provision.engine import File, Resource, Service

NAME = "cascading"
SECTION = "8.1"
TITLE = "cascading replication tag (replicatefrom)"

CONFIG = f"{PATRONI_CONF_DIR}/40-replicatefrom.yml"


def nodes(topo: Topology) -> list[Node]:
    return topo.postgres_nodes


def resources(ctx: Context) -> list[Resource]:
    source = ctx.topo.options["replicatefrom"].get(ctx.node.member)
    content = ctx.render("patroni-replicatefrom.yml.j2", source=source) if source else None
    config = File(CONFIG, content, "postgres", "postgres", "600")
    return [config, Service("patroni", reload_on=(config.key,))]
