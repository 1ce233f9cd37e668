"""The exam's health gate: the drills' baseline (lab.exercises.run.health) plus what a fault can leave
behind that the baseline does not see yet. A replica cut from etcd still looks streaming until its
member key expires (ttl); haproxy stopped on one node looks healthy once its VIP has moved. So
``--done`` also asks each node for the lab's own leftovers: a service of the lab not running, a
DROP rule towards etcd."""
from __future__ import annotations

from lab.exercises.run import health
from lab.exercises.run.health import Finding
from lab.exercises.kit.patroni_config import ETCD_UNIT, PATRONI_UNIT
from lab.exercises.kit.probe import Probe
from lab.exercises.kit.shell import Shell
from labcore.topology import Topology

HAPROXY_UNIT = "haproxy"


def _etcd_drop_rules(topo: Topology) -> str:
    return (f"sudo iptables -S OUTPUT 2>/dev/null | grep -e '--dport {topo.ports.etcd_client}' "
            "| grep -c -e '-j DROP' || true")


def leftovers(topo: Topology, shell: Shell) -> list[Finding]:
    """Per node: the lab's services running where they belong, no DROP rule towards etcd."""
    out: list[Finding] = []
    for n in topo.nodes:
        units = ([PATRONI_UNIT] if n.has("postgres") else []) + ([ETCD_UNIT] if n.etcd else []) \
            + ([HAPROXY_UNIT] if n.has("haproxy") else [])
        for unit in units:
            state = shell.run(n.name, f"systemctl is-active {unit}", timeout=10).stdout.strip() or "unknown"
            out.append(Finding(f"{unit} running on {n.name}", state == "active", f"systemctl is-active: {state}"))
        count = shell.run(n.name, _etcd_drop_rules(topo), timeout=10).stdout.strip()
        rules = int(count) if count.isdigit() else 0
        out.append(Finding(f"{n.name} reaches etcd", rules == 0,
                           f"{rules} iptables DROP rule(s) towards etcd's port" if rules else "no DROP rule"))
    return out


def findings(topo: Topology, probe: Probe, shell: Shell) -> list[Finding]:
    return health.findings(probe) + leftovers(topo, shell)


def still_off(found: list[Finding]) -> str:
    """What is not at the baseline, one line per finding."""
    return "\n".join(f"  [!!] {f.check}: {f.detail}" for f in found if not f.ok)
