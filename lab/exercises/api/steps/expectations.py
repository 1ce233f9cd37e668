"""Expectations several drills share: bounded waits on the cluster, each asserted (``lab.expect`` /
``lab.hold``) and, where the article gives a bound, kept with its derivation."""
from __future__ import annotations

from lab.exercises.api.context import Lab
from lab.exercises.api.steps.conditions import members, streams, writable_leader
from lab.exercises.api.steps.operations import revive_patroni
from lab.exercises.api.timing import Timing
from lab.exercises.kit import sql
from lab.exercises.kit.outcomes import MemberState, Outcome
from lab.i18n.phrases import phrase


def new_primary_within(lab: Lab, old: str, bound: float, derived: str, *, since: float | None = None,
                       key: str = "new_leader_after_fault_s", how: str = "a replica is the writable leader") -> str:
    """A member other than ``old`` becomes the writable leader within ``bound`` seconds of the fault
    (or of ``since``, a monotonic instant) — the article's bound, asserted and kept with its derivation.
    Returns the new leader."""
    start = lab.t_fault if since is None else since
    lab.expect(writable_leader(lab, other_than=old), how, within=bound)
    lab.within_bound(key, lab.since_t(start if start is not None else lab.t_start), bound, derived)
    return lab.leader()


def leader_unchanged(lab: Lab, leader: str, seconds: float) -> float:
    """``leader`` stays the leader and writable for ``seconds`` (no failover happens)."""
    return lab.hold(writable_leader(lab, leader), f"{leader} stays the leader and writable", for_=seconds, every=2)


def rejoined(lab: Lab, member: str, within: float, how: str = "rejoins as a replica", every: float = 1.0) -> float:
    """``member`` streams again within ``within`` seconds; returns the seconds it took."""
    return lab.expect(streams(lab, member), f"{member} {how}", within=within, every=every)


def undo_then_rejoined(lab: Lab, member: str, *, within: float, measure: str,
                       how: str = "rejoins as a replica", revive: bool = False) -> float:
    """The common ending: undo the last fault, (start a Patroni a watchdog fenced,) expect ``member``
    to stream again and measure how long that took under ``measure``."""
    lab.undo()
    if revive:
        revive_patroni(lab)
    took = rejoined(lab, member, within, how)
    lab.measure(measure, took)
    return took


def haproxy_reaches(lab: Lab, member: str, within: float = 40) -> float:
    """Wait until haproxy's write port (through its VIP) lands on ``member`` writable; returns the seconds."""
    vip, port = lab.topo.vips.haproxy, lab.topo.ports.haproxy_primary
    address = lab.topo.node(member).address
    return lab.expect(lambda: sql.whoami(lab.topo, vip, port) == (address, False),
                      f"haproxy :{port} on {vip} lands on {member} (after fall/rise checks)", within=within, every=0.5)


FENCED_INSTEAD_OF_DEMOTED = phrase(
    "the lab arms a watchdog (§5.1): the leader's loop waited on the unreachable etcd for most of the watchdog "
    "timeout (ttl - safety_margin), so the watchdog fenced the node before its demotion was done (on a VM: a "
    "reboot); the article's table describes Patroni without a watchdog")


def expect_everyone_read_only(lab: Lab, t: Timing) -> dict[str, MemberState]:
    """§5.3 and the table's row 10: every member a read-only replica within retry_timeout + loop_wait
    (+ 25 s margin). A leader fenced by the lab's watchdog instead is a deviation, reported as such
    (the drill differs, with the fencer's record as evidence); stopped or unreachable fails."""
    bound = t.retry_timeout + t.loop_wait + 25
    seen = lab.expect_outcomes({m: Outcome.REPLICA for m in members(lab)}, "every member is a read-only replica",
                               within=bound, explained={Outcome.FENCED: FENCED_INSTEAD_OF_DEMOTED})
    lab.within_bound("all_read_only_after_s", lab.since_fault(), bound, "retry_timeout + loop_wait + 25")
    lab.measure("outcomes", {m: str(s.outcome) for m, s in seen.items()})
    return seen
