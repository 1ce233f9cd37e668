"""Step 3, article §3: etcd, the DCS Patroni keeps its leader lock in.

One member on node4 as the article; ``etcd.members`` in the topology lists
three for the production layout the article recommends. debian12 serves the v3
API that Patroni 4's ``etcd3:`` section uses; el7 serves v2 for ``etcd:``.

In the secure profile authentication is switched on (once, on the first member:
it is cluster-wide): a root user, and a ``patroni`` user whose role may read and
write only the cluster's namespace. Listening only on the lab's addresses was
the alternative; it is what the article already does, and on a shared network
anyone on the subnet could still take the leader key.
"""
from __future__ import annotations

from typing import Callable

from labcore.topology import Node, Topology
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
    url = f"http://{ctx.node.address}:{ctx.topo.ports.etcd_client}/health"
    # An up-to-date file says nothing about the running daemon (the package may have started
    # it with its defaults): check that it serves where Patroni will look.
    serving = Command(f"etcd answers on {url}", (f"systemctl restart {p.etcd_service}",),
                      f"curl -sf --max-time 3 {url}")
    service = Service(p.etcd_service, restart_on=(conf.key,))
    serving.settled_by = (service.key,)
    out = [*ctx.packages("etcd"), conf, service, serving]
    if ctx.creds.etcd and ctx.node == ctx.topo.etcd_nodes[0]:
        out.append(_auth(ctx))
    return out


def etcdctl(ctx: Context, api: str) -> str:
    return f"ETCDCTL_API={api[-1]} etcdctl --endpoints=http://127.0.0.1:{ctx.topo.ports.etcd_client}"


def _auth(ctx: Context) -> Command:
    """Users root and patroni, a role limited to the namespace, then auth on. Passwords travel in
    environment variables and on stdin (shell builtins), never on a command line others can list."""
    root, patroni = ctx.creds.etcd_root, ctx.creds.etcd
    prefix = ctx.topo.cluster.namespace
    env = (f"ROOT_PW={root['password']} PATRONI_PW={patroni['password']}")
    if ctx.platform.dcs == "etcd3":
        ctl = etcdctl(ctx, "v3")
        cmds = (
            f"export {env}",
            f"{ctl} user get {root['username']} >/dev/null 2>&1 || "
            f"printf '%s\\n' \"$ROOT_PW\" | {ctl} user add {root['username']} --interactive=false",
            f"{ctl} role get patroni >/dev/null 2>&1 || {ctl} role add patroni",
            f"{ctl} role grant-permission patroni readwrite --prefix=true {prefix}",
            f"{ctl} user get {patroni['username']} >/dev/null 2>&1 || "
            f"printf '%s\\n' \"$PATRONI_PW\" | {ctl} user add {patroni['username']} --interactive=false",
            f"{ctl} user grant-role {patroni['username']} patroni",
            f"{ctl} auth enable",
        )
        # Done when Patroni's user reads its namespace and an anonymous read is refused.
        unless = (f"export {env}; ETCDCTL_USER={patroni['username']}:$PATRONI_PW {ctl} get --limit=1 {prefix} "
                  f"&& ! {ctl} get --limit=1 /")
    else:
        # v2 (el7): users as user:password (etcdctl v2 splits at the colon), guest loses its rights.
        ctl = etcdctl(ctx, "v2")
        cmds = (
            f"export {env}",
            f"{ctl} user get {root['username']} >/dev/null 2>&1 || {ctl} user add {root['username']}:$ROOT_PW",
            f"{ctl} role get patroni >/dev/null 2>&1 || {ctl} role add patroni",
            f"{ctl} role grant patroni -path '{prefix}*' -readwrite",
            f"{ctl} user get {patroni['username']} >/dev/null 2>&1 || "
            f"{ctl} user add {patroni['username']}:$PATRONI_PW",
            f"{ctl} user grant {patroni['username']} -roles patroni",
            f"{ctl} auth enable",
            f"{ctl} -u {root['username']}:$ROOT_PW role revoke guest -path '/*' -readwrite",
        )
        unless = (f"export {env}; {ctl} -u {patroni['username']}:$PATRONI_PW ls {prefix} "
                  f"&& ! {ctl} ls /")
    return Command("etcd authentication on (users root and patroni)", cmds, unless)


def settle(topo: Topology, wave: Wave, report: Callable[[str], None]) -> None:
    for n in wave.nodes:
        waits.http_ok(topo, n.address, topo.ports.etcd_client, "/health", f"etcd on {n.name} healthy")
