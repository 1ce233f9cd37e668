"""What a step knows about the node it works on: topology, platform and facts read from the node."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from labcore.credentials import Credentials, build as build_credentials
from labcore.topology import Node, Topology
from provision.engine import Command, Packages, Resource
from provision.platforms import Platform

LIBEXEC = "/usr/local/libexec/patroni-lab"
VIP_CALLBACK = f"{LIBEXEC}/vip-callback"     # the script Patroni calls on a role change (section 7.2)
PATRONI_CONF_DIR = "/etc/patroni"       # one fragment per step; Patroni merges a directory's *.yml in order
PATRONI_UNIT = "/etc/systemd/system/patroni.service"
PATRONI_DROPINS = "/etc/systemd/system/patroni.service.d"
WHEELHOUSE_REMOTE = "/var/cache/patroni-lab/wheelhouse"
WATCHDOG_FIFO_DIR = "/run/patroni-watchdog"
FENCER_UNIT = "patroni-watchdog"        # the containers' watchdog: a reader that fences when pings stop


@dataclass(frozen=True)
class NodeFacts:
    """Read from the node once per run, never assumed (interface names differ per provider)."""
    iface: str
    container: bool


@dataclass(frozen=True)
class Context:
    topo: Topology
    node: Node
    platform: Platform
    facts: NodeFacts
    credentials: Credentials | None = None   # None: the article's, from the topology

    @property
    def creds(self) -> Credentials:
        """Passwords and trusted networks of the profile being provisioned."""
        return self.credentials or build_credentials(self.topo, "article")

    # --- derived values every template may need ---
    @property
    def time_server(self) -> Node:
        """The node serving time to the lab: the first etcd member (node4 in the article's layout)."""
        return self.topo.etcd_nodes[0]

    @property
    def first_member(self) -> Node:
        """The member that bootstraps the cluster (node1 in article §4)."""
        return self.topo.postgres_nodes[0]

    @property
    def watchdog_kind(self) -> str:
        """'fencer' where no watchdog device can exist (containers), else 'device' (softdog/i6300esb)."""
        return "fencer" if self.facts.container else "device"

    @property
    def watchdog_timeout(self) -> int:
        """The timeout Patroni asks of its watchdog: ttl minus safety_margin (article §5.1: 30 - 5)."""
        return 30 - 5

    def render(self, template: str, **extra: Any) -> str:
        values: dict[str, Any] = dict(topo=self.topo, node=self.node, platform=self.platform,
                                      facts=self.facts, ctx=self, creds=self.creds, libexec=LIBEXEC,
                                      patroni_conf_dir=PATRONI_CONF_DIR)
        values.update(extra)
        return _env().get_template(template).render(**values)

    # --- resource helpers shared by steps ---
    def packages(self, *groups: str) -> list[Resource]:
        """The platform's repository set-up (guarded) followed by the packages of ``groups``."""
        names: list[str] = []
        for g in groups:
            names += [n for n in self.platform.packages[g] if n not in names]
        out: list[Resource] = [Command(what, (cmd,), unless) for what, cmd, unless in self.platform.repo_setup]
        out.append(Packages(tuple(names), self.platform.package_fact, self.platform.install))
        return out


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("provision", "templates"),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


NODE_FACTS_SCRIPT = """\
ip -o -4 addr show to {address} | awk '{{print $2; exit}}'
if systemd-detect-virt -c -q; then echo container; else echo machine; fi
"""


def parse_node_facts(output: str, node: Node) -> NodeFacts:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if len(lines) < 2 or lines[0] in ("container", "machine"):
        raise RuntimeError(f"{node.name}: no interface holds {node.address}; is the node on the lab network?")
    return NodeFacts(iface=lines[0], container=lines[1] == "container")
