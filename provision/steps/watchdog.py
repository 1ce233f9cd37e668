"""Step 6, article §5.1: a watchdog for the leader.

On machines with a watchdog device: softdog (or the VM's i6300esb), handed to
postgres, as the article. In containers there is no device: Patroni's
``testing`` driver writes to a FIFO read by the lab's fencing service, which
kills Patroni and the postmaster when keepalives stop. The fencer starts before
Patroni (unit ordering) and opens its FIFO read-write, so Patroni's open never
blocks waiting for a reader.
"""
from __future__ import annotations

from labcore.topology import Node, Topology
from provision.context import LIBEXEC, PATRONI_CONF_DIR, PATRONI_DROPINS, WATCHDOG_FIFO_DIR, Context
from provision.engine import Command, File, Resource, Service

NAME = "watchdog"
SECTION = "5.1"
TITLE = "watchdog (softdog, or the fencing service in containers)"

FIFO = f"{WATCHDOG_FIFO_DIR}/watchdog"
CONFIG = f"{PATRONI_CONF_DIR}/20-watchdog.yml"


def nodes(topo: Topology) -> list[Node]:
    return topo.postgres_nodes


def _fencer(ctx: Context) -> list[Resource]:
    script = File(f"{LIBEXEC}/watchdog-fencer", ctx.render("watchdog-fencer.sh.j2"), mode="755")
    unit = File("/etc/systemd/system/patroni-watchdog.service",
                ctx.render("patroni-watchdog.service.j2", fifo=FIFO), after=("systemctl daemon-reload",))
    return [*ctx.packages("watchdog"), script, unit,
            Service("patroni-watchdog", restart_on=(script.key, unit.key))]


def _device(ctx: Context) -> list[Resource]:
    t = ctx.platform.tools
    return [
        File("/etc/modules-load.d/softdog.conf", "# Managed by patroni-lab (article §5.1)\nsoftdog\n"),
        Command("a watchdog device exists", (f"{t['modprobe']} softdog",), "[ -c /dev/watchdog ]"),
        Command("postgres owns /dev/watchdog", (f"{t['chown']} postgres /dev/watchdog",),
                "[ \"$(stat -c %U /dev/watchdog)\" = postgres ]"),
    ]


def resources(ctx: Context) -> list[Resource]:
    kind = _fencer if ctx.watchdog_kind == "fencer" else _device
    dropin = File(f"{PATRONI_DROPINS}/watchdog.conf", ctx.render("patroni-watchdog-dropin.conf.j2"),
                  after=("systemctl daemon-reload",))
    config = File(CONFIG, ctx.render("patroni-watchdog.yml.j2", fifo=FIFO), "postgres", "postgres", "600")
    # A reload is enough: a leader's Patroni swaps to the new watchdog at its next keepalive.
    return [*kind(ctx), dropin, config, Service("patroni", reload_on=(config.key,))]
