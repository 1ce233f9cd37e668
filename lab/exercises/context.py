"""The run context: what a drill sees while it runs. It talks (story, commands, notes, measures),
reads roles now, checks bounded expectations, runs actions (faults and operations) and keeps every
undo (faults still in effect, configuration changes) for the restore."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lab.exercises.console import Console, TerminalConsole
from lab.exercises.i18n import resolve_lang, t
from lab.exercises.kit.actions import Action, Operation
from lab.exercises.kit.facts import Facts
from lab.exercises.kit.probe import Probe
from lab.exercises.kit.shell import Output, Shell, SshShell, ssh_hint
from lab.exercises.model import ExpectationFailed, Result, Check
from labcore import poll
from labcore.topology import Topology

GUIDED_WAIT = 900.0          # how long a guided drill waits for the trainee to act


@dataclass
class _Restore:
    label: str
    undo: Callable[[], None]


class Lab:
    """What a drill sees while it runs: roles, faults, expectations, config changes."""

    def __init__(self, topo: Topology, *, auto: bool, console: Console | None = None, scale: float = 1.0,
                 clock: poll.Clock | None = None, shell: Shell | None = None, probe: Probe | None = None,
                 watch_probe: Probe | None = None, results_dir: Path | None = None,
                 writer_paths: list[tuple[str, str, int]] | None = None, lang: str | None = None) -> None:
        self.topo = topo
        self.lang = resolve_lang(lang)       # what the trainee reads; results stay in English
        self.auto = auto
        self.console = console or TerminalConsole(interactive=not auto)
        self.scale = scale
        self.clock = clock or poll.SYSTEM
        self.shell = shell or SshShell(topo)
        self.probe = probe or Probe(topo, self.shell)
        self.watch_probe = watch_probe
        self.facts = Facts(topo, self.shell)
        self.results_dir = results_dir
        self.writer_paths = writer_paths if writer_paths is not None else [
            ("vip", topo.vips.read_write, topo.ports.postgres),
            ("haproxy", topo.vips.haproxy, topo.ports.haproxy_primary),
        ]
        self.result: Result | None = None
        self.t_fault: float | None = None
        self.marks: dict[str, float] = {}
        self._undos: list[Action] = []         # actions still in effect that have an undo
        self._restores: list[_Restore] = []     # configuration changes, put back in restore

    # --- talking ---------------------------------------------------------------------

    def tr(self, key: str, default: str | None = None, **fields: Any) -> str:
        """A runner phrase in the trainee's language."""
        return t(key, self.lang, default, **fields)

    def say(self, text: str) -> None:
        self.console.show(text)

    def step(self, title: str, text: str = "") -> None:
        """A step of the story; guided mode waits for Enter before going on."""
        self.say(f"\n== {title}" + (f"\n{indent(text)}" if text else ""))
        if not self.auto:
            self.console.pause("   " + self.tr("enter"))

    def command(self, node: str, command: str, why: str = "") -> None:
        """Show the command a trainee would type, and where."""
        self.say("   " + self.tr("on_node", node=node, hint=ssh_hint(node)) + f"\n   $ {command}"
                 + (f"\n   ({why})" if why else ""))

    def note(self, text: str) -> None:
        self.say("   " + self.tr("note", text=text))
        if self.result:
            self.result.notes.append(text)

    def measure(self, key: str, value: Any) -> None:
        self.say("   " + self.tr("measured", what=key, value=value))
        if self.result:
            self.result.metrics[key] = value

    def mark(self, name: str) -> float:
        t = self.clock.monotonic()
        self.marks[name] = t
        return t

    def since_fault(self) -> float:
        """Seconds since the drill's first fault took effect."""
        return round(self.clock.monotonic() - (self.t_fault or self.marks.get("start", 0.0)), 2)

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

    def timing(self) -> dict[str, int]:
        """ttl, loop_wait, retry_timeout as Patroni has them now (bounds derive from these)."""
        cfg = self.probe.dynamic_config()
        return {k: int(cfg.get(k) or d) for k, d in (("ttl", 30), ("loop_wait", 10), ("retry_timeout", 10))}

    def node_of(self, member: str) -> str:
        return self.topo.node(member).name

    # --- bounded expectations ----------------------------------------------------------------

    def bound(self, seconds: float) -> float:
        return seconds * self.scale

    def expect(self, cond: Callable[[], Any], description: str, within: float, every: float = 1.0,
               shown: str | None = None) -> float:
        """``description`` must come true within ``within`` seconds (scaled). Returns the seconds it took.
        ``shown``: the description in the trainee's language, when it differs from the recorded one."""
        bound = self.bound(within)
        self.say("   " + self.tr("expect_within", what=shown or description, bound=bound))
        ok, elapsed, last = poll.until(cond, bound, every, self.clock)
        return self._record("expect", description, ok, bound, elapsed, last, shown)

    def hold(self, cond: Callable[[], Any], description: str, for_: float, every: float = 1.0) -> float:
        """``description`` must stay true for ``for_`` seconds (scaled)."""
        bound = self.bound(for_)
        self.say("   " + self.tr("expect_for", what=description, bound=bound))
        ok, elapsed, last = poll.holds(cond, bound, every, self.clock)
        return self._record("hold", description, ok, bound, elapsed, last)

    def _record(self, kind: str, description: str, ok: bool, bound: float, elapsed: float, last: str,
                shown: str | None = None) -> float:
        elapsed = round(elapsed, 2)
        if self.result is not None:
            self.result.checks.append(Check(kind, description, ok, bound, elapsed, last))
        what = shown or description
        if ok:
            self.say("   " + self.tr("ok_after" if kind == "expect" else "ok_held", what=what, elapsed=elapsed))
            return elapsed
        self.say("   " + self.tr("failed", what=what, elapsed=elapsed, last=last or "false"))
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
        self.say("\n" + self.tr("fault", what=fault.what))
        return self._act(fault, observe_within)

    def perform(self, operation: Action, observe_within: float = 30) -> float:
        """An operation a person makes on purpose (switchover, edit-config, ...), run like a fault:
        shown, typed (or run in auto mode), observed. Only an operation with an undo is undone."""
        self.say("\n" + self.tr("operation", what=operation.what))
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
            self.expect(action.observed, f"the {kind} is in effect on {action.node}", within=observe_within,
                        every=0.5, shown=self.tr(f"{kind}_in_effect", node=action.node))
        else:
            self.say("   " + self.tr("type_it"))
            ok, _, _ = poll.until(self._trainee_or_go(action, command), GUIDED_WAIT, 0.5, self.clock)
            if not ok:
                raise ExpectationFailed(f"the {kind} was not done within {GUIDED_WAIT:g} s")
            self.say("   " + self.tr(f"{kind}_seen"))
            t = self.clock.monotonic()
        if self.t_fault is None:
            self.t_fault = t
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
        self.say("\n" + self.tr("undo", what=action.what))
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
