"""Step 2, article §2: firewall and SELinux.

Mode ``article`` turns them off as the article does; mode ``open-ports`` keeps
the firewall running and opens only the lab's ports (PostgreSQL, Patroni, etcd,
haproxy, NTP) and VRRP, and only to the lab's networks (its subnet, plus the
control host when it comes from outside it); ssh stays open. The secure
profile always uses ``open-ports``.
"""
from __future__ import annotations

from labcore.topology import Node, Topology
from provision.context import Context
from provision.engine import Command, File, Resource, Service

NAME = "firewall"
SECTION = "2"
TITLE = "firewall and SELinux"


def nodes(topo: Topology) -> list[Node]:
    return list(topo.nodes)


def tcp_ports(ctx: Context) -> list[int]:
    """The lab's own ports; ssh (22) is opened separately, to every source."""
    return sorted(ctx.topo.ports.values())


def mode(ctx: Context) -> str:
    return "open-ports" if ctx.creds.secure else ctx.topo.options["firewall"]


UDP_PORTS = [123]   # chrony between the nodes


def _selinux(ctx: Context) -> list[Resource]:
    if not ctx.platform.selinux:
        return []
    # Permissive in both modes: the article's callbacks and unpackaged Patroni have no SELinux policy.
    return [
        Command("SELinux permissive now", ("setenforce 0",), "[ \"$(getenforce)\" != Enforcing ]"),
        Command("SELinux permissive after boot",
                ("sed -i.bak 's/^SELINUX=enforcing/SELINUX=permissive/' /etc/selinux/config",),
                "! grep -q '^SELINUX=enforcing' /etc/selinux/config"),
    ]


def _disabled(ctx: Context) -> list[Resource]:
    svc = ctx.platform.firewall
    if svc == "nftables":
        # Debian's nftables unit flushes the WHOLE ruleset when stopped, including rules the
        # host's container runtime keeps in the node (its DNS redirection): disable it for the
        # next boot and remove only the lab's own table now.
        return [
            Command("nftables disabled at boot", ("systemctl disable nftables",),
                    "! systemctl is-enabled -q nftables"),
            Command("the lab's nftables table removed", ("nft delete table inet patroni_lab",),
                    "! nft list table inet patroni_lab"),
            Command("iptables rules flushed", ("iptables -F",), "! iptables -S | grep -q '^-A'"),
        ]
    return [
        Command(f"{svc} stopped and disabled", (f"systemctl disable --now {svc}",),
                f"! systemctl is-enabled -q {svc} && ! systemctl is-active -q {svc}"),
        Command("iptables rules flushed", ("iptables -F",), "! iptables -S | grep -q '^-A'"),
    ]


def _open_nftables(ctx: Context) -> list[Resource]:
    conf = File("/etc/nftables.conf", ctx.render("nftables.conf.j2", tcp_ports=tcp_ports(ctx),
                                                 udp_ports=UDP_PORTS, sources=ctx.creds.trusted), mode="755")
    return [*ctx.packages("firewall-open"), conf, Service("nftables", restart_on=(conf.key,))]


def _open_firewalld(ctx: Context) -> list[Resource]:
    # ssh is in firewalld's default zone already; the lab's ports get rich rules per source network.
    out: list[Resource] = [*ctx.packages("firewall-open"), Service("firewalld")]
    for net in ctx.creds.trusted:
        src = f'rule family=\"ipv4\" source address=\"{net}\"'
        rules = [(f"{p}/tcp from {net}", f'{src} port port=\"{p}\" protocol=\"tcp\" accept')
                 for p in tcp_ports(ctx)]
        rules += [(f"{p}/udp from {net}", f'{src} port port=\"{p}\" protocol=\"udp\" accept') for p in UDP_PORTS]
        rules.append((f"VRRP from {net}", f'{src} protocol value=\"vrrp\" accept'))
        for what, rule in rules:
            add, query = f"--add-rich-rule=\"{rule}\"", f"--query-rich-rule=\"{rule}\""
            out.append(Command(f"firewalld allows {what}", (f"firewall-cmd --permanent {add}", f"firewall-cmd {add}"),
                               f"firewall-cmd --permanent {query} && firewall-cmd {query}"))
    return out


def resources(ctx: Context) -> list[Resource]:
    if mode(ctx) == "article":
        return _selinux(ctx) + _disabled(ctx)
    opener = _open_firewalld if ctx.platform.firewall == "firewalld" else _open_nftables
    return _selinux(ctx) + opener(ctx)
