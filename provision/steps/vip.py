"""Step 7, article §7.2: the read-write VIP follows the primary through Patroni's callbacks."""
from __future__ import annotations

from labcore.topology import Node, Topology
from provision.context import PATRONI_CONF_DIR, VIP_CALLBACK, Context
from provision.engine import Command, File, Resource, Service

NAME = "vip"
SECTION = "7.2"
TITLE = "read-write VIP moved by the Patroni callback"

SCRIPT = VIP_CALLBACK
CONFIG = f"{PATRONI_CONF_DIR}/30-callbacks.yml"


def nodes(topo: Topology) -> list[Node]:
    return topo.postgres_nodes


def current_role(ctx: Context) -> str:
    """Shell: this member's role as its REST API reports it right now."""
    return (f"curl -s --max-time 3 http://127.0.0.1:{ctx.topo.ports.patroni}/patroni | "
            "python3 -c 'import json,sys; print(json.load(sys.stdin).get(\"role\", \"\"))'")


def resources(ctx: Context) -> list[Resource]:
    vip, dev = ctx.topo.vips.read_write, ctx.facts.iface
    script = File(SCRIPT, ctx.render("vip-callback.sh.j2"), mode="755")
    config = File(CONFIG, ctx.render("patroni-callbacks.yml.j2", script=SCRIPT), "postgres", "postgres", "600")
    role = f"role=$({current_role(ctx)})"
    holds = f"[ -n \"$(ip -o -4 addr show dev {dev} to {vip}/32)\" ]"
    is_primary = "{ [ \"$role\" = primary ] || [ \"$role\" = master ]; }"
    # Callbacks fire on the next event only; place the VIP now by the member's current role.
    place = Command(f"rw VIP {vip} matches this member's role",
                    (role, f"{SCRIPT} on_role_change \"$role\" {ctx.topo.cluster.scope}"),
                    f"{role}; [ -n \"$role\" ] && {{ {{ {is_primary} && {holds}; }} || {{ ! {is_primary} && ! {holds}; }}; }}")
    return [*ctx.packages("vip"), script, config, Service("patroni", reload_on=(config.key,)), place]
