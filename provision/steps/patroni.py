"""Step 5, article §4: Patroni on the PostgreSQL nodes.

node1 starts first and bootstraps the cluster; once it leads, the others start
and join as replicas (article §4's order). Configuration lives in a directory,
one fragment per step, so later steps (watchdog, VIP callback, cascading) add
their part without rewriting this one.
"""
from __future__ import annotations

import posixpath

from typing import Callable

from labcore.topology import Node, Topology
from provision import waits, wheelhouse
from provision.context import LIBEXEC, PATRONI_CONF_DIR, PATRONI_DROPINS, PATRONI_UNIT, WHEELHOUSE_REMOTE, Context
from provision.engine import Command, Directory, File, Resource, Service, Wave
from provision.platforms import Platform

NAME = "patroni"
SECTION = "4"
TITLE = "Patroni members (node1 first, then the replicas)"

CONFIG = f"{PATRONI_CONF_DIR}/10-cluster.yml"


def nodes(topo: Topology) -> list[Node]:
    # The standby node gets Patroni installed here, in parallel with the replicas; the
    # standby step only configures and starts it.
    return topo.postgres_nodes + ([topo.standby_node] if topo.standby_node else [])


def waves(topo: Topology, selected: list[Node]) -> list[Wave]:
    """Install everywhere at once, then start node1 alone, then the others (article §4's order)."""
    first = [n for n in selected if n == topo.postgres_nodes[0]]
    rest = [n for n in selected if n not in first and n.has("postgres")]
    out = [Wave(selected, "install")]
    return out + [Wave(w, "start") for w in (first, rest) if w]


def install_commands(p: Platform) -> tuple[str, ...]:
    """Unpack the uploaded wheelhouse and install Patroni from it (also run by the preinstalled image)."""
    return (f"rm -rf {WHEELHOUSE_REMOTE}", f"mkdir -p {WHEELHOUSE_REMOTE}",
            f"tar -xf {wheelhouse.REMOTE_TARBALL} -C {WHEELHOUSE_REMOTE}",
            f"rm -f {wheelhouse.REMOTE_TARBALL}", *p.patroni_install)


def install(ctx: Context) -> list[Resource]:
    """Patroni itself, its unit and the postgres user's environment (shared with the standby step)."""
    p = ctx.platform
    version = p.patroni_version
    if p.uses_wheelhouse:
        # The venv's metadata folder names the version: no Python started (`pip show` alone takes
        # 1.5 min of CPU in a VM under QEMU's TCG emulation).
        venv = posixpath.dirname(p.patroni_bin)
        installed = (f"ls -d {venv}/lib/python3*/site-packages/patroni-{version}.dist-info "
                     ">/dev/null 2>&1")
    else:
        installed = f"{p.patroni_pip} show patroni 2>/dev/null | grep -qx 'Version: {version}'"
    if p.uses_wheelhouse:
        setup = Command(f"install Patroni {version} from the wheelhouse", install_commands(p), installed,
                        upload=(str(wheelhouse.tarball(p.python, p.patroni_spec)), wheelhouse.REMOTE_TARBALL))
    else:
        setup = Command(f"install Patroni {version} with pip", p.patroni_install, installed)
    out: list[Resource] = [*ctx.packages("patroni", "vip"), setup]
    if p.patroni_bin != "/usr/local/bin":
        for tool in ("patroni", "patronictl"):
            target = f"{p.patroni_bin}/{tool}"
            out.append(Command(f"{tool} on PATH", (f"ln -sfn {target} /usr/local/bin/{tool}",),
                               f"[ \"$(readlink /usr/local/bin/{tool})\" = {target} ]"))
    unit = File(PATRONI_UNIT, ctx.render("patroni.service.j2"), after=("systemctl daemon-reload",))
    out += [
        Directory(PATRONI_CONF_DIR, "postgres", "postgres", "700"),
        Directory(LIBEXEC, "root", "root", "755"),
        unit,
        File(f"{PATRONI_DROPINS}/capabilities.conf",
             ctx.render("patroni-caps.conf.j2") if p.vip_privilege == "capabilities" else None,
             after=("systemctl daemon-reload",)),
        File("/etc/profile.d/patroni.sh", ctx.render("patroni-profile.sh.j2")),
        File(f"{p.pg_home}/.bash_profile", ctx.render("postgres-profile.j2"), "postgres", "postgres", "644"),
        File("/etc/sudoers.d/postgres", ctx.render("postgres.sudoers.j2"), mode="440",
             after=("visudo -cf /etc/sudoers.d/postgres",)),
    ]
    return out


def resources(ctx: Context, part: str | None = None) -> list[Resource]:
    """``part`` = install | start (one wave each); None = the whole step (for plans and tests)."""
    if part == "install" or not ctx.node.has("postgres"):
        return install(ctx)
    config = File(CONFIG, ctx.render("patroni.yml.j2", standby=False), "postgres", "postgres", "600")
    # A changed configuration is reloaded, never restarted: a restart of the leader is a failover.
    started = [config, Service("patroni", reload_on=(config.key,))]
    return started if part == "start" else [*install(ctx), *started]


def settle(topo: Topology, wave: Wave, report: Callable[[str], None]) -> None:
    if wave.part != "start":
        return
    members = topo.postgres_nodes
    if wave.nodes[0] == members[0]:
        leader = waits.leader_of(topo, members)
        report(f"  cluster {topo.cluster.scope}: {leader} leads")
    else:
        # Running is enough to go on: a new replica streams only once the leader's next loop has
        # made its slot (up to loop_wait), and nothing in the next steps needs it to. That wait
        # runs in `confirm`, after the last step.
        waits.running(topo, wave.nodes)
        report(f"  cluster {topo.cluster.scope}: {', '.join(n.member for n in wave.nodes)} run "
               "(streaming is confirmed after the last step)")


def confirm(topo: Topology, changed: list[Node], report: Callable[[str], None]) -> None:
    members = [n for n in topo.postgres_nodes if n in changed]
    if members:
        waits.streaming(topo, members)
        report(f"  cluster {topo.cluster.scope}: {', '.join(n.member for n in members)} lead or stream")
