"""Getting the lab back to its healthy baseline around a drill: the gate (poll the health findings),
revive (start a Patroni a fencing watchdog stopped) and repair (the last resort when restore did not
reach the baseline)."""
from __future__ import annotations

from lab.exercises.run import dynamic_config, health

from lab.exercises.api import steps
from lab.exercises.api.context import Lab
from lab.exercises.kit.actions import undo_all_commands
from labcore import poll


def findings(lab: Lab) -> list[health.Finding]:
    """The health findings once: the probe's, and Patroni's dynamic configuration as provisioned."""
    return [*health.findings(lab.probe), dynamic_config.check(lab)[0]]


def gate(lab: Lab, within: float) -> tuple[bool, list[health.Finding]]:
    """Poll the health findings until the baseline holds or ``within`` seconds (scaled) have passed."""
    found: list[health.Finding] = []

    def check() -> bool:
        nonlocal found
        found = findings(lab)
        return health.healthy(found)
    ok, _, _ = poll.until(check, lab.bound(within), 2.0, lab.clock)
    return ok, found


def repair(lab: Lab) -> None:
    """Last resort when restore did not reach the baseline: undo anything a drill may leave,
    reinitialise members that do not stream or carry a timeline past the leader's, put Patroni's
    dynamic configuration back as provisioned and restart what that leaves pending."""
    for node, cmds in undo_all_commands(lab.topo).items():
        for cmd in cmds:
            lab.shell.run(node, cmd)
    poll.until(lab.probe.leader, lab.bound(90), 2.0, lab.clock)
    leader = lab.probe.leader()
    replicas = [n.member for n in lab.topo.postgres_nodes if n.member != leader]
    # Only a history known to be ahead is a reason to rebuild; an unreadable one is judged by streaming.
    forked = {m: tl for m, tl in (lab.probe.forked_replicas(leader, replicas) if leader else {}).items()
              if None not in tl}
    for m in replicas:
        if m in forked:
            lab.note(f"repair: reinitialising {m}: it holds timeline {forked[m][0]}'s history, "
                     f"the leader is on timeline {forked[m][1]}")
            lab.probe.rest(m, "/reinitialize", method="POST", body={"force": True}, timeout=10)
        elif not poll.until(lambda m=m: lab.probe.streaming(m), lab.bound(60), 2.0, lab.clock)[0]:
            lab.note(f"repair: reinitialising {m} from the leader")
            lab.probe.rest(m, "/reinitialize", method="POST", body={"force": True}, timeout=10)
    _configuration_back(lab)


PENDING_SEEN_WITHIN = 10.0     # beyond loop_wait: each member flags pending restart at its next HA loop


def _configuration_back(lab: Lab) -> None:
    """A drill killed before its restore leaves its dynamic configuration (retry_timeout, synchronous
    mode, failsafe_mode, max_connections) in the DCS; patch it back. A PostgreSQL parameter that only
    changes at server start leaves the members pending restart: restart them, the primary first."""
    drifted, patch = dynamic_config.check(lab)
    if patch:
        lab.probe.patch_config(patch)
        lab.note(f"repair: put Patroni's dynamic configuration back as provisioned (PATCH /config): {drifted.detail}")
    members = steps.members(lab)

    def any_pending() -> bool:
        return any(lab.probe.member_state(m).get("pending_restart") for m in members)
    if "postgresql" in patch:
        poll.until(any_pending, lab.bound(lab.timing().loop_wait + PENDING_SEEN_WITHIN), 1.0, lab.clock)
    if any_pending():
        lab.note("repair: restarting the members pending restart (the primary first)")
        poll.until(lambda: steps.restart_pending(lab), lab.bound(180), 10.0, lab.clock)
