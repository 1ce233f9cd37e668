"""`invoke status --check` and `invoke heal`: the drills' health gate and its repair, for people.

A trainer checks the lab between exercises (`status --check` exits non-zero with one line per
finding off the healthy baseline) and brings back a lab trainees broke (`heal` says what it
changed and exits non-zero when the baseline is still not reached). Both use the very gate and
repair the drills run around every drill (lab/exercises/run/health.py, recovery.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from invoke import Exit, task

HEAL_WITHIN = 180.0           # seconds the repaired lab gets to reach the baseline (the drills' bound)


class Finding(Protocol):
    check: str
    ok: bool
    detail: str


class Recovery(Protocol):
    """What heal needs of the gate: its findings now, a repair, a bounded wait for the baseline."""

    def findings(self) -> list[Finding]: ...

    def repair(self) -> list[str]:
        """Repair the lab; returns what it did, one line per action."""

    def wait_healthy(self, within: float) -> tuple[bool, list[Finding]]: ...


def off_baseline(found: list[Finding]) -> list[str]:
    """One line per finding off the healthy baseline (empty: healthy)."""
    return [f"{f.check}: {f.detail}" for f in found if not f.ok]


@dataclass
class Healing:
    before: list[Finding]
    after: list[Finding]
    actions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not off_baseline(self.after)

    def lines(self) -> list[str]:
        if not off_baseline(self.before):
            return [f"nothing to heal: the lab is at its healthy baseline ({len(self.before)} checks ok)"]
        out = [f"found: {line}" for line in off_baseline(self.before)]
        out += [f"did: {a}" for a in self.actions] or ["did: nothing beyond waiting (the lab recovered by itself)"]
        was = {f.check for f in self.before if not f.ok}
        out += [f"fixed: {f.check}: {f.detail}" for f in self.after if f.ok and f.check in was]
        out += [f"still: {line}" for line in off_baseline(self.after)]
        return out


def heal_lab(rec: Recovery, within: float = HEAL_WITHIN) -> Healing:
    """Repair only a lab that is off its baseline, then wait (bounded) for the baseline."""
    before = rec.findings()
    if not off_baseline(before):
        return Healing(before, before)
    actions = rec.repair()
    _, after = rec.wait_healthy(within)
    return Healing(before, after, actions)


class LabRecovery:
    """The drills' gate and repair on the live lab."""

    def __init__(self, topo) -> None:
        from lab.exercises import Lab

        self.lines: list[str] = []
        # its bounds stretch by the one multiplier (labcore.poll: $LAB_TIMEOUT_SCALE here)
        self.lab = Lab(topo, auto=True, console=_Recorder(self.lines.append))

    def findings(self) -> list[Finding]:
        from lab.exercises.run import recovery
        return recovery.findings(self.lab)

    def repair(self) -> list[str]:
        from lab.exercises.run import recovery
        from lab.exercises.api import steps

        steps.revive_patroni(self.lab)
        recovery.repair(self.lab)
        notes = [line.strip().removeprefix("note: ").removeprefix("repair: ") for line in self.lines
                 if line.strip().startswith("note:")]
        return notes or ["ran the drills' repair (drill firewall rules and port blockers removed, etcd and "
                         "Patroni started where stopped, frozen processes resumed); no member needed "
                         "reinitialising"]

    def wait_healthy(self, within: float) -> tuple[bool, list[Finding]]:
        from lab.exercises.run import recovery
        return recovery.gate(self.lab, within=within)


class _Recorder:
    """A console that keeps what the repair says instead of printing it."""
    interactive = False

    def __init__(self, keep: Callable[[str], None]) -> None:
        self.keep = keep

    def show(self, text: str) -> None:
        for line in text.splitlines():
            self.keep(line)

    def pause(self, prompt: str) -> None:
        return None

    def poll(self) -> str | None:
        return None


def provisioned_topology(action: str = "check the lab's health"):
    """The topology of a provisioned lab, or the command's one-line refusal (exit 2) naming ``action``."""
    from labcore import state as lab_state, topology

    try:
        topo = topology.load()
        lab_state.require("provisioned", action=action)
    except (topology.TopologyError, lab_state.LabStateError) as e:
        raise Exit(f"error: {e}", code=2) from None
    return topo


CONFIRM_WITHIN = 6.0          # a finding must still be there this long after it was first seen


def check(recovery_factory: Callable[[object], Recovery] = LabRecovery) -> None:
    """`invoke status --check`: exit 1 with one line per finding, 0 when healthy. A finding is
    read again for a few seconds before it is reported: on a loaded host one slow answer (a
    connect timeout) is not a lab off its baseline."""
    _, found = recovery_factory(provisioned_topology()).wait_healthy(CONFIRM_WITHIN)
    bad = off_baseline(found)
    if bad:
        raise Exit("\n".join(bad), code=1)
    print(f"healthy: {len(found)} checks at the baseline")


@task
def heal(c):
    """Bring the lab back to its healthy baseline (the drills' repair); say what changed."""
    healing = heal_lab(LabRecovery(provisioned_topology()))
    text = "\n".join(healing.lines())
    if not healing.ok:
        raise Exit(text + "\nheal: the baseline was not reached; `invoke rebuild` starts again from scratch",
                   code=1)
    print(text)


TASKS = [heal]
