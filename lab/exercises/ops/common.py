"""Steps several §6-§8 drills share: a switchover, psql as a trainee types it, node facts."""
from __future__ import annotations

import shlex

from lab.exercises import faults as F
from lab.exercises.engine import ExpectationFailed, Lab
from lab.exercises.ops import ctl, sql


def scope(lab: Lab) -> str:
    return lab.topo.cluster["scope"]


def psql(lab: Lab, node: str, *statements: str) -> str:
    """``psql`` as postgres over the local socket (peer auth), one -c per statement."""
    bin_dir = lab.facts.bin_dir(node)
    return f"sudo -u postgres {bin_dir}/psql -XAt " + " ".join(f"-c {shlex.quote(s)}" for s in statements)


def writable_leader(lab: Lab, member: str):
    """Condition: ``member`` holds the leader key and its PostgreSQL is out of recovery."""
    return lambda: lab.probe.leader() == member and lab.probe.in_recovery(member) is False


def pick_candidate(lab: Lab, exclude: tuple[str, ...] = ()) -> str:
    """A streaming replica to hand the primary to (the first in topology order)."""
    for m in lab.replicas():
        if m not in exclude and lab.probe.streaming(m):
            return m
    raise ExpectationFailed("no streaming replica to switch over to")


def switchover(lab: Lab, candidate: str | None = None, *, within: float = 60) -> tuple[str, str, float]:
    """``patronictl switchover`` from the current leader to ``candidate`` (chosen now if None).
    Returns (old leader, new leader, seconds from the command to a writable new leader)."""
    old = lab.leader()
    new = candidate or pick_candidate(lab)
    fault = F.Fault(lab.node_of(old), f"switchover: {old} hands the primary to {new}",
                    ctl.switchover(scope(lab), old, new),
                    "true  # nothing to undo: the cluster carries on with the new leader",
                    observed=writable_leader(lab, new))
    lab.mark("switchover")
    try:
        lab.inject(fault, observe_within=within)
    except ExpectationFailed as e:
        raise ExpectationFailed(f"switchover: {new} is not the writable leader ({e})") from None
    took = lab.since("switchover")
    return old, new, took


def history_length(lab: Lab, member: str) -> int:
    """Lines in ``patronictl history`` (the DCS's history key), read on ``member``'s node."""
    out = lab.run_on(lab.node_of(member), ctl.history(scope(lab)))
    return len(ctl.parse_history(out.stdout))


def iface_of(lab: Lab, node: str) -> str:
    """The node's interface on the lab network (the one holding its own address)."""
    addr = lab.topo.node(node).address
    out = lab.run_on(node, f"ip -o -4 addr show to {addr}/32")
    return out.stdout.split()[1]


def mac_of(lab: Lab, node: str) -> str:
    return lab.run_on(node, f"cat /sys/class/net/{iface_of(lab, node)}/address").stdout.strip().lower()


def writable_through(lab: Lab, address: str, port: int | None = None) -> bool:
    """A connection to address:port lands on a server out of recovery."""
    got = sql.whoami(lab.topo, address, port)
    return got is not None and got[1] is False


def on_control_host(lab: Lab, command: str, why: str = "") -> None:
    """Show a command typed on the control host (where the lab's CLI runs), not on a node."""
    lab.say(f"   on the control host:\n   $ {command}" + (f"\n   ({why})" if why else ""))


def haproxy_reaches(lab: Lab, member: str, within: float = 40) -> float:
    """Wait until haproxy's write port (through its VIP) lands on ``member`` writable; returns the seconds."""
    vip, port = lab.topo.vips["haproxy"], lab.topo.ports["haproxy_primary"]
    address = lab.topo.node(member).address
    return lab.expect(lambda: sql.whoami(lab.topo, vip, port) == (address, False),
                      f"haproxy :{port} on {vip} lands on {member} (after fall/rise checks)", within=within, every=0.5)


def node_epoch(lab: Lab, node: str) -> float:
    """The node's clock now (seconds since the epoch), to read its logs from this moment on."""
    out = lab.run_on(node, "date +%s.%N")
    return float(out.stdout.strip())
