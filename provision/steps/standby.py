"""Step 11, article §8.2: a one-member standby cluster on node4, fed through the rw VIP.

The main cluster keeps a permanent physical slot for it, so that whichever
member is primary retains the WAL the standby still needs.
"""
from __future__ import annotations

from typing import Callable

from labcore.topology import Node, Topology
from provision import waits
from provision.context import PATRONI_CONF_DIR, Context
from provision.engine import Command, File, Resource, Service, Wave
from provision.steps import patroni

NAME = "standby"
SECTION = "8.2"
TITLE = "standby cluster on node4 with a permanent slot in the main cluster"

CONFIG = f"{PATRONI_CONF_DIR}/10-cluster.yml"


def nodes(topo: Topology) -> list[Node]:
    if not topo.standby_node:
        return []
    return [topo.postgres_nodes[0], topo.standby_node]


def waves(topo: Topology, selected: list[Node]) -> list[Wave]:
    return [Wave([n]) for n in selected]      # the slot first, then the member that uses it


def _slot(ctx: Context) -> list[Resource]:
    slot = ctx.topo.cluster.standby_slot
    api = ctx.topo.ports.patroni
    has_slot = (f"curl -s --max-time 3 http://127.0.0.1:{api}/config | python3 -c "
                f"'import json,sys; sys.exit(0 if \"{slot}\" in (json.load(sys.stdin).get(\"slots\") or {{}}) else 1)'")
    return [Command(f"permanent slot {slot} in cluster {ctx.topo.cluster.scope}",
                    (f"patronictl -c {PATRONI_CONF_DIR} edit-config --force -s slots.{slot}.type=physical",),
                    has_slot)]


def resources(ctx: Context) -> list[Resource]:
    if not ctx.node.has("standby"):
        return _slot(ctx)
    config = File(CONFIG, ctx.render("patroni.yml.j2", standby=True), "postgres", "postgres", "600")
    return [*patroni.install(ctx), config, Service("patroni", reload_on=(config.key,))]


def settle(topo: Topology, wave: Wave, report: Callable[[str], None]) -> None:
    node = wave.nodes[0]
    if node.has("standby"):
        waits.http_ok(topo, node.address, topo.ports.patroni, "/standby-leader",
                      f"{node.member} to lead the standby cluster {topo.cluster.standby_scope}", 240)
        report(f"  cluster {topo.cluster.standby_scope}: {node.member} is the standby leader")
