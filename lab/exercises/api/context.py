"""The run context: what a drill sees while it runs. It talks (story, commands, notes, measures),
reads roles now, checks bounded expectations, runs actions (faults and operations) and keeps every
undo (faults still in effect, configuration changes) for the restore.

Everything it sees goes to the drill's evidence as it happens (lab.exercises.observe.evidence): marks
(fault, undo, ...), notes, each check with its bound, start and end. A member's state is asked as
an outcome (primary, replica, stopped, fenced, unreachable), and a claim about members is checked
as exactly those outcomes (``expect_outcomes``)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

from lab.exercises.api.console import Console, TerminalConsole
from lab.i18n import current, t
from lab.i18n.phrases import measure_label, phrase, said
from lab.exercises.kit.actions import Action, Operation
from lab.exercises.kit.facts import Facts
from lab.exercises.kit.outcomes import MemberState, Outcome, lab_member_probe
from lab.exercises.kit.probe import Probe
from lab.exercises.kit.shell import HOST, Output, Shell, SshShell, ssh_hint
from lab.exercises.api.model import ExpectationFailed, Result, Check
from lab.exercises.api.timing import Timing
from lab.exercises.observe.verdict import Bound, OutcomeCheck, Verdict, judge_members
from labcore import poll
from labcore.topology import Topology

GUIDED_WAIT = 900.0          # how long a guided drill waits for the trainee to act


@dataclass
class _Restore:
    label: str
    undo: Callable[[], None]


class Lab:
    """What a drill sees while it runs: roles, faults, expectations, config changes."""

    def __init__(self, topo: Topology, *, auto: bool, console: Console | None = None,
                 clock: poll.Clock | None = None, shell: Shell | None = None, probe: Probe | None = None,
                 watch_probe: Probe | None = None, results_dir: Path | None = None,
                 writer_paths: list[tuple] | None = None, recorder: Any = None,
                 outcome_probe: Callable[[str], MemberState] | None = None) -> None:
        self.topo = topo
        self.auto = auto
        self.console = console or TerminalConsole(interactive=not auto)
        self.clock = clock or poll.SYSTEM
        self.shell = shell or SshShell(topo)
        self.probe = probe or Probe(topo, self.shell)
        self.watch_probe = watch_probe
        self.facts = Facts(topo, self.shell)
        self.results_dir = results_dir
        self.writer_paths = writer_paths if writer_paths is not None else [
            ("vip", topo.vips.read_write, topo.ports.postgres),
            ("haproxy", topo.vips.haproxy, topo.ports.haproxy_primary),
            ("vip-per-txn", topo.vips.read_write, topo.ports.postgres, False),
        ]
        self.recorder = recorder                # lab.exercises.observe.evidence.DrillRecorder (None: nothing kept)
        self._outcome_probe = outcome_probe
        self.result: Result | None = None
        self.t_start: float = self.clock.monotonic()
        self.t_fault: float | None = None
        self.last_met: float | None = None      # when the last expectation was seen met (monotonic)
        self.marks: dict[str, float] = {}
        self._undos: list[Action] = []         # actions still in effect that have an undo
        self._restores: list[_Restore] = []     # configuration changes, put back in restore

    @property
    def scale(self) -> float:
        """The command's time multiplier (labcore.poll: --scale, else $LAB_TIMEOUT_SCALE, else
        invoke.yaml), which every bound is stretched by and the result records."""
        return poll.timeout_scale()

    # --- talking ---------------------------------------------------------------------

    @property
    def lang(self) -> str:
        """The language the trainee reads (lab.i18n: the command's); results stay in English."""
        return current()

    def tr(self, key: str, default: str | None = None, **fields: Any) -> str:
        """A runner phrase in the trainee's language."""
        return t(key, default=default, **fields)

    def said(self, text: str) -> str:
        """What a drill says (English in the code and in the result files), in the trainee's language."""
        return said(text)

    def say(self, text: str) -> None:
        self.console.show(text)

    def step(self, title: str, text: str = "") -> None:
        """A step of the story; guided mode waits for Enter before going on."""
        title, text = self.said(title), self.said(text)
        self.say(f"\n== {title}" + (f"\n{indent(text)}" if text else ""))
        if not self.auto:
            self.console.pause("   " + self.tr("enter"))

    def command(self, node: str, command: str, why: str = "") -> None:
        """Show the command a trainee would type, and where."""
        where = self.tr("on_control_host") if node == HOST else self.tr("on_node", node=node, hint=ssh_hint(node))
        self.say("   " + where + f"\n   $ {command}"
                 + (f"\n   ({self.said(why)})" if why else ""))

    def note(self, text: str) -> None:
        self.say("   " + self.tr("note", text=self.said(text)))
        if self.result:
            self.result.notes.append(text)
        if self.recorder:
            self.recorder.note(text)

    def measure(self, key: str, value: Any) -> None:
        self.say("   " + self.tr("measured", what=measure_label(key), value=value))
        if self.result:
            self.result.metrics[key] = value

    def within_bound(self, key: str, seen_s: float, bound_s: float, derived: str) -> bool:
        """A time the article bounds, measured from the fault: kept in the result's ``bounds`` and the
        metrics; beyond the (scaled) bound the drill fails, naming the bound and where it comes from."""
        bound = round(self.bound(bound_s), 2)
        ok = seen_s <= bound
        self.measure(key, seen_s)
        if self.result is not None:
            self.result.bounds[key] = Bound(seen_s, bound, derived, ok)
            if not ok:
                self.result.fail(f"{key} = {seen_s:g} s, beyond the article's bound of {bound:g} s ({derived})")
        return ok

    def mark(self, name: str, label: str = "", node: str | None = None, at: float | None = None) -> float:
        """A named moment of the drill (kept for ``since`` and written to the evidence)."""
        t = self.clock.monotonic() if at is None else at
        self.marks[name] = t
        if self.recorder:
            self.recorder.mark(name, label, node, at=t)
        return t

    def since_fault(self) -> float:
        """Seconds since the drill's first fault took effect (since its start before any fault)."""
        return round(self.clock.monotonic() - (self.t_fault if self.t_fault is not None else self.t_start), 2)

    def fault_to_last_met(self) -> float:
        """Seconds from the first fault to the moment the last expectation was seen met: the start of
        the look that found it true, not the end of that look (asking an unreachable node for its
        outcome can take a minute of ssh timeouts, none of which is the fault's)."""
        origin = self.t_fault if self.t_fault is not None else self.t_start
        return round((self.last_met if self.last_met is not None else self.clock.monotonic()) - origin, 2)

    def since_t(self, t: float) -> float:
        """Seconds since the monotonic instant ``t`` (e.g. what ``inject`` returned)."""
        return round(self.clock.monotonic() - t, 2)

    def since(self, name: str) -> float:
        return round(self.clock.monotonic() - self.marks[name], 2)

    # --- roles, probed now ---------------------------------------------------------------

    def leader(self) -> str:
        lead = self.probe.leader()
        if not lead:
            raise ExpectationFailed("the cluster has no leader right now")
        return lead

    def replicas(self) -> list[str]:
        return self.probe.replicas()

    def timing(self) -> Timing:
        """ttl, loop_wait, retry_timeout as Patroni has them now (bounds derive from these)."""
        return Timing.of(self.probe.dynamic_config())

    def node_of(self, member: str) -> str:
        return self.topo.node(member).name

    # --- member outcomes: primary | replica | stopped | fenced | unreachable ----------------------

    def outcome(self, member: str) -> MemberState:
        """What ``member`` is right now, with its evidence (lab.exercises.kit.outcomes)."""
        return self._outcomes()(member)

    def outcomes(self, members: Iterable[str] | None = None) -> dict[str, MemberState]:
        names = list(members) if members is not None else [n.member for n in self.topo.postgres_nodes]
        probe = self._outcomes()
        return {m: probe(m) for m in names}

    def _outcomes(self) -> Callable[[str], MemberState]:
        if self._outcome_probe is None:
            since = datetime.fromisoformat(self.result.started) if self.result and self.result.started else None
            self._outcome_probe = lab_member_probe(self.topo, self.facts, self.shell, since=since)
        return self._outcome_probe

    def expect_outcomes(self, claims: dict[str, Outcome | Iterable[Outcome]], description: str, within: float, *,
                        explained: dict[Outcome, str] | None = None, every: float = 1.0) -> dict[str, MemberState]:
        """The article's claim about members, checked as exactly these outcomes: poll until every member
        is in its claimed outcome, or in an ``explained`` one (a known deviation, e.g. fenced by the
        lab's watchdog instead of demoted, with the reason); then judge. A claim met is a pass; met
        through an explained deviation, the drill ``differs`` (reason and evidence kept); otherwise the
        check fails. Returns what was seen."""
        wanted = {m: [o] if isinstance(o, Outcome) else list(o) for m, o in claims.items()}
        settle = set(explained or {})
        seen: dict[str, MemberState] = {}

        def settled() -> bool:
            seen.clear()
            seen.update(self.outcomes(wanted))
            return all(seen[m].outcome in wanted[m] or seen[m].outcome in settle for m in wanted)
        bound = self.bound(within)
        self.say("   " + self.tr("expect_within", what=self.said(description), bound=bound))
        start = self.clock.monotonic()
        ok, elapsed, last = poll.until(settled, bound, every, self.clock)
        verdict, members, reason = judge_members(wanted, seen, explained)
        if ok:
            self.last_met = start + elapsed
        shown = ", ".join(f"{m} {st.outcome}" for m, st in seen.items())
        if self.result is not None:
            self.result.outcomes.append(OutcomeCheck(description, verdict, bound, round(start - self.t_start, 3),
                                                     round(start - self.t_start + elapsed, 3), members, reason))
            if verdict == Verdict.DIFFERS:
                self.result.differs(reason, [f"{m}: {mv.evidence}" for m, mv in members.items()
                                             if mv.explained and mv.evidence])
        try:
            detail = [phrase(f"seen: {shown}"), *([reason] if reason else []),
                      *([phrase(f"last error: {last}")] if not ok and last else [])]
            self._record("expect", description, verdict != Verdict.FAIL, bound, start, elapsed, "; ".join(detail))
        except ExpectationFailed:
            raise ExpectationFailed(f"{description}: {reason or last}") from None
        return dict(seen)

    # --- bounded expectations ----------------------------------------------------------------

    def bound(self, seconds: float) -> float:
        return poll.scaled(seconds)

    def expect(self, cond: Callable[[], Any], description: str, within: float, every: float = 1.0,
               shown: str | None = None) -> float:
        """``description`` must come true within ``within`` seconds (scaled). Returns the seconds it took.
        ``shown``: the description in the trainee's language, when it differs from the recorded one."""
        bound = self.bound(within)
        self.say("   " + self.tr("expect_within", what=shown or self.said(description), bound=bound))
        start = self.clock.monotonic()
        ok, elapsed, last = poll.until(cond, bound, every, self.clock)
        return self._record("expect", description, ok, bound, start, elapsed, last, shown)

    def hold(self, cond: Callable[[], Any], description: str, for_: float, every: float = 1.0) -> float:
        """``description`` must stay true for ``for_`` seconds (scaled)."""
        bound = self.bound(for_)
        self.say("   " + self.tr("expect_for", what=self.said(description), bound=bound))
        start = self.clock.monotonic()
        ok, elapsed, last = poll.holds(cond, bound, every, self.clock)
        return self._record("hold", description, ok, bound, start, elapsed, last)

    def _record(self, kind: str, description: str, ok: bool, bound: float, start: float, elapsed: float,
                last: str, shown: str | None = None) -> float:
        """Keep the check (start and end from the drill's start mark; the runner re-bases them on the
        fault) and write it to the evidence."""
        elapsed = round(elapsed, 2)
        if ok and kind == "expect":
            self.last_met = start + elapsed
        if self.result is not None:
            self.result.checks.append(Check(kind, description, ok, bound, round(start - self.t_start, 3),
                                            round(start - self.t_start + elapsed, 3), last))
        if self.recorder:
            self.recorder.check(kind, description, bound, start, start + elapsed, ok, last)
        what = shown or self.said(description)
        if ok:
            self.say("   " + self.tr("ok_after" if kind == "expect" else "ok_held", what=what, elapsed=elapsed))
            return elapsed
        self.say("   " + self.tr("failed", what=what, elapsed=elapsed, last=self.said(last or "false")))
        raise ExpectationFailed(f"{description}: not true within {bound:g} s")

    # --- faults ----------------------------------------------------------------------------

    def run_on(self, node: str, command: str, timeout: float = 120) -> Output:
        out = self.shell.run(node, command, timeout=timeout)
        if not out.ok:
            raise ExpectationFailed(f"on {node}: `{command}` failed (rc {out.rc}): "
                                    f"{(out.stderr or out.stdout).strip().splitlines()[-1:] or ''}")
        return out

    def inject(self, fault: Action, observe_within: float = 30) -> float:
        """Break it: auto runs the command; guided shows it and waits for the trainee (or 'go').
        Returns the moment the fault was seen in effect; the first action is the drill's t=0."""
        self.say("\n" + self.tr("fault", what=self.said(fault.what)))
        return self._act(fault, observe_within)

    def perform(self, operation: Action, observe_within: float = 30) -> float:
        """An operation a person makes on purpose (switchover, edit-config, ...), run like a fault:
        shown, typed (or run in auto mode), observed. Only an operation with an undo is undone."""
        self.say("\n" + self.tr("operation", what=self.said(operation.what)))
        return self._act(operation, observe_within)

    def _act(self, action: Action, observe_within: float) -> float:
        kind = "operation" if isinstance(action, Operation) else "fault"
        if action.prepare is not None:
            action.prepare()
        command = action.text()
        self.command(action.node, command)
        if action.undo:
            self._undos.append(action)
        if self.auto:
            t = self.clock.monotonic()      # t=0 is when the command is issued, as for a person
            self.run_on(action.node, command)
            in_effect = phrase(f"the operation is in effect on {action.node}" if kind == "operation"
                               else f"the fault is in effect on {action.node}")
            self.expect(action.observed, in_effect, within=observe_within,
                        every=0.5, shown=self.tr(f"{kind}_in_effect", node=action.node))
        else:
            self.say("   " + self.tr("type_it"))
            ok, _, _ = poll.until(self._trainee_or_go(action, command), GUIDED_WAIT, 0.5, self.clock)
            if not ok:
                raise ExpectationFailed(f"the operation was not done within {GUIDED_WAIT:g} s" if kind == "operation"
                                        else f"the fault was not done within {GUIDED_WAIT:g} s")
            self.say("   " + self.tr(f"{kind}_seen"))
            t = self.clock.monotonic()
        if self.t_fault is None:
            self.t_fault = t
        self.mark("fault", f"{kind}: {action.what}", action.node, at=t)
        return t

    def _trainee_or_go(self, action: Action, command: str) -> Callable[[], bool]:
        def check() -> bool:
            line = self.console.poll()
            if line is not None and line.strip().lower() in ("go", "g"):
                self.run_on(action.node, command)
            return bool(action.observed())
        return check

    def undo(self, action: Action | None = None) -> None:
        """Undo one action (the last one still in effect by default); guided mode shows the command first."""
        if not self._undos:
            return
        action = action or self._undos[-1]
        self._undos.remove(action)
        self.mark("undo", action.what, action.node)
        self.say("\n" + self.tr("undo", what=self.said(action.what)))
        self.command(action.node, action.undo)
        if not self.auto:
            self.console.pause("   " + self.tr("undo_enter"))
        self.run_on(action.node, action.undo)

    def on_restore(self, label: str, undo: Callable[[], None]) -> None:
        """Remember how to put a change back; restore runs these newest first, after the undos."""
        self._restores.append(_Restore(label, undo))

    def undo_everything(self) -> list[str]:
        """Undo every action still in effect and every configuration change, newest first; returns errors."""
        errors = []
        while self._undos:
            a = self._undos[-1]
            try:
                self.undo(a)
            except Exception as e:
                self._undos.remove(a) if a in self._undos else None
                errors.append(f"undo {a.what}: {e}")
        while self._restores:
            c = self._restores.pop()
            try:
                c.undo()
            except Exception as e:
                errors.append(f"restore {c.label}: {e}")
        return errors


def indent(text: str) -> str:
    return "\n".join("   " + line if line.strip() else "" for line in text.strip("\n").splitlines())
