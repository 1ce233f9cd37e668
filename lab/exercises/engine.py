"""The drill engine: a drill is a readable script run against the live lab.

A drill tells its story (which article section, what will happen and why),
injects a fault (and knows its undo), states expectations ("X becomes Y within
N seconds", checked by bounded polls, never fixed sleeps), and restores the
lab to the healthy baseline. Roles ("the current leader") are probed at run
time. One multiplier stretches every bound for slow providers.

While a drill runs, a writer inserts numbered rows through each read-write
path and a watch samples every node for a second primary; the result carries
RTO per path, acknowledged writes lost, and the split-brain verdict.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import yaml

from lab.exercises import faults as F
from lab.exercises import health
from lab.exercises.console import Console, TerminalConsole
from lab.exercises.monitor import SplitBrainWatch
from lab.exercises.probe import Probe
from lab.exercises.shell import Output, Shell, SshShell, ssh_hint
from lab.exercises.writer import Writer, ids_present
from lab.topology import Topology

SCALE_ENV = "LAB_TIMEOUT_SCALE"
GUIDED_WAIT = 900.0          # how long a guided drill waits for the trainee to act


class DrillError(ValueError):
    """Bad input for the drill runner (unknown drill, bad multiplier); the message is one line."""


class ExpectationFailed(AssertionError):
    """An expectation that did not come true within its bound."""


# --- time ---------------------------------------------------------------------------

class Clock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def timeout_scale(configured: Any = None) -> float:
    """The one multiplier for every bound: $LAB_TIMEOUT_SCALE, else the configured value, else 1."""
    raw = os.environ.get(SCALE_ENV) or configured
    if raw in (None, ""):
        return 1.0
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise DrillError(f"timeout scale {raw!r} is not a number (e.g. 1, 1.5, 3)") from None
    if not 0 < value <= 20:
        raise DrillError(f"timeout scale {value} must be above 0 and at most 20")
    return value


def poll_until(cond: Callable[[], Any], within: float, every: float, clock: Clock) -> tuple[bool, float, str]:
    """Call ``cond`` until it is truthy or ``within`` seconds have passed.
    Returns (ok, elapsed seconds, last error or value). An exception counts as "not yet"."""
    start = clock.monotonic()
    last = ""
    while True:
        began = clock.monotonic()
        try:
            value = cond()
            if value:
                return True, began - start, ""
            last = repr(value)
        except Exception as e:  # a probe that cannot answer yet is "not yet", not a crash
            last = f"{type(e).__name__}: {e}"
        elapsed = clock.monotonic() - start
        if elapsed >= within:
            return False, elapsed, last
        clock.sleep(min(every, max(0.0, within - elapsed)))


def poll_holds(cond: Callable[[], Any], duration: float, every: float, clock: Clock) -> tuple[bool, float, str]:
    """Check that ``cond`` stays truthy for ``duration`` seconds; stop at the first falsy answer."""
    start = clock.monotonic()
    while True:
        try:
            value = cond()
            last = "" if value else repr(value)
        except Exception as e:
            value, last = False, f"{type(e).__name__}: {e}"
        elapsed = clock.monotonic() - start
        if not value:
            return False, elapsed, last
        if elapsed >= duration:
            return True, elapsed, ""
        clock.sleep(min(every, max(0.0, duration - elapsed)))


# --- drills -------------------------------------------------------------------------

class Drill:
    """Subclass, fill in the text, write ``run`` (and ``restore`` if undoing faults is not enough)."""
    name: str = ""
    section: str = ""            # the article section it verifies, e.g. "§5 table, row 2"
    summary: str = ""            # one line for `invoke exercise --list`
    story: str = ""              # what will happen and why (shown first)
    expected: str = ""           # the expected result, in words (docs)
    differs: str = ""            # where Patroni 4 differs from the article (Patroni 1.6.5)
    commands: list[str] = []     # what a trainee types, for the docs ("where: command")
    split_brain: bool | None = False   # False: must not happen; True: the article says it happens; None: not judged
    lossless: bool = False       # every acknowledged write must survive
    writes: bool = True          # run the writer during the drill

    def run(self, lab: "Lab") -> None:
        raise NotImplementedError

    def restore(self, lab: "Lab") -> None:
        """Extra restore after all faults and config changes were undone (default: nothing)."""


DRILLS: dict[str, type[Drill]] = {}


def drill(cls: type[Drill]) -> type[Drill]:
    """Class decorator: register a drill under its name."""
    if not cls.name or not cls.summary or not cls.section:
        raise TypeError(f"{cls.__name__}: a drill needs name, section and summary")
    if cls.name in DRILLS and DRILLS[cls.name] is not cls:
        raise TypeError(f"drill name {cls.name!r} used twice")
    DRILLS[cls.name] = cls
    return cls


def lookup(names: list[str]) -> list[type[Drill]]:
    """Drills by name ("all" = every drill, in registry order); unknown names -> DrillError, one line."""
    if names == ["all"]:
        return list(DRILLS.values())
    unknown = [n for n in names if n not in DRILLS]
    if unknown:
        raise DrillError(f"unknown drill {', '.join(unknown)} (known: {', '.join(DRILLS)}, all)")
    return [DRILLS[n] for n in names]


# --- results ------------------------------------------------------------------------

@dataclass
class Check:
    kind: str                   # expect | hold
    description: str
    ok: bool
    bound: float                # seconds, already scaled
    elapsed: float
    detail: str = ""

    @property
    def kept_bound(self) -> bool:
        """An expectation came true within its bound (one poll of slack); a hold stayed true
        for its whole period."""
        if not self.ok:
            return False
        return self.elapsed <= self.bound + 1 if self.kind == "expect" else self.elapsed >= self.bound


@dataclass
class Result:
    drill: str
    section: str
    verdict: str = "pass"       # pass | fail | error
    reason: str = ""
    mode: str = "auto"
    scale: float = 1.0
    started: str = ""
    duration_s: float = 0.0
    checks: list[Check] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    rto_s: dict[str, float | None] = field(default_factory=dict)
    writes: dict[str, Any] = field(default_factory=dict)
    split_brain: dict[str, Any] = field(default_factory=dict)
    gate_before: list[dict] = field(default_factory=list)
    gate_after: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def fail(self, reason: str, verdict: str = "fail") -> None:
        if self.verdict == "pass":
            self.verdict, self.reason = verdict, reason
        else:
            self.notes.append(f"also: {reason}")


# --- the run context -----------------------------------------------------------------

@dataclass
class _ConfigChange:
    label: str
    undo: Callable[[], None]


class Lab:
    """What a drill sees while it runs: roles, faults, expectations, config changes."""

    def __init__(self, topo: Topology, *, auto: bool, console: Console | None = None, scale: float = 1.0,
                 clock: Clock | None = None, shell: Shell | None = None, probe: Probe | None = None,
                 watch_probe: Probe | None = None, results_dir: Path | None = None,
                 writer_paths: list[tuple[str, str, int]] | None = None) -> None:
        self.topo = topo
        self.auto = auto
        self.console = console or TerminalConsole(interactive=not auto)
        self.scale = scale
        self.clock = clock or Clock()
        self.shell = shell or SshShell(topo)
        self.probe = probe or Probe(topo, self.shell)
        self.watch_probe = watch_probe
        self.facts = F.Facts(topo, self.shell)
        self.results_dir = results_dir
        self.writer_paths = writer_paths if writer_paths is not None else [
            ("vip", topo.vips["read_write"], topo.ports["postgres"]),
            ("haproxy", topo.vips["haproxy"], topo.ports["haproxy_primary"]),
        ]
        self.result: Result | None = None
        self.t_fault: float | None = None
        self.marks: dict[str, float] = {}
        self._faults: list[F.Fault] = []
        self._changes: list[_ConfigChange] = []

    # --- talking ---------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.console.show(text)

    def step(self, title: str, text: str = "") -> None:
        """A step of the story; guided mode waits for Enter before going on."""
        self.say(f"\n== {title}" + (f"\n{_indent(text)}" if text else ""))
        if not self.auto:
            self.console.pause("   [Enter] to go on")

    def command(self, node: str, command: str, why: str = "") -> None:
        """Show the command a trainee would type, and where."""
        self.say(f"   on {node}:  {ssh_hint(node)}\n   $ {command}" + (f"\n   ({why})" if why else ""))

    def note(self, text: str) -> None:
        self.say(f"   note: {text}")
        if self.result:
            self.result.notes.append(text)

    def measure(self, key: str, value: Any) -> None:
        self.say(f"   measured {key}: {value}")
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

    def expect(self, cond: Callable[[], Any], description: str, within: float, every: float = 1.0) -> float:
        """``description`` must come true within ``within`` seconds (scaled). Returns the seconds it took."""
        bound = self.bound(within)
        self.say(f"   expect: {description} (within {bound:g} s) ...")
        ok, elapsed, last = poll_until(cond, bound, every, self.clock)
        return self._record("expect", description, ok, bound, elapsed, last)

    def hold(self, cond: Callable[[], Any], description: str, for_: float, every: float = 1.0) -> float:
        """``description`` must stay true for ``for_`` seconds (scaled)."""
        bound = self.bound(for_)
        self.say(f"   expect: {description} (for {bound:g} s) ...")
        ok, elapsed, last = poll_holds(cond, bound, every, self.clock)
        return self._record("hold", description, ok, bound, elapsed, last)

    def _record(self, kind: str, description: str, ok: bool, bound: float, elapsed: float, last: str) -> float:
        elapsed = round(elapsed, 2)
        if self.result is not None:
            self.result.checks.append(Check(kind, description, ok, bound, elapsed, last))
        if ok:
            self.say(f"   ok: {description} ({'after' if kind == 'expect' else 'held'} {elapsed:g} s)")
            return elapsed
        self.say(f"   FAILED: {description} (after {elapsed:g} s; last seen: {last or 'false'})")
        raise ExpectationFailed(f"{description}: not true within {bound:g} s")

    # --- faults ----------------------------------------------------------------------------

    def run_on(self, node: str, command: str, timeout: float = 120) -> Output:
        out = self.shell.run(node, command, timeout=timeout)
        if not out.ok:
            raise ExpectationFailed(f"on {node}: `{command}` failed (rc {out.rc}): "
                                    f"{(out.stderr or out.stdout).strip().splitlines()[-1:] or ''}")
        return out

    def inject(self, fault: F.Fault, observe_within: float = 30) -> float:
        """Break it: auto runs the command; guided shows it and waits for the trainee (or 'go').
        Returns the moment the fault was seen in effect; the first fault is the drill's t=0."""
        self.say(f"\n!! fault: {fault.what}")
        self.command(fault.node, fault.command)
        self._faults.append(fault)
        if self.auto:
            t = self.clock.monotonic()      # t=0 is when the command is issued, as for a person
            self.run_on(fault.node, fault.command)
            self.expect(fault.observed, f"the fault is in effect on {fault.node}", within=observe_within, every=0.5)
        else:
            self.say("   Type it on the node now; the drill is watching. "
                     "(Or type 'go' and Enter here, and the drill runs it for you.)")
            ok, _, _ = poll_until(self._trainee_or_go(fault), GUIDED_WAIT, 0.5, self.clock)
            if not ok:
                raise ExpectationFailed(f"the fault was not injected within {GUIDED_WAIT:g} s")
            self.say("   seen: the fault is in effect")
            t = self.clock.monotonic()
        if self.t_fault is None:
            self.t_fault = t
        return t

    def _trainee_or_go(self, fault: F.Fault) -> Callable[[], bool]:
        def check() -> bool:
            line = self.console.poll()
            if line is not None and line.strip().lower() in ("go", "g"):
                self.run_on(fault.node, fault.command)
            return bool(fault.observed())
        return check

    def undo(self, fault: F.Fault | None = None) -> None:
        """Undo one fault (the last one by default); guided mode shows the command first."""
        if not self._faults:
            return
        fault = fault or self._faults[-1]
        self._faults.remove(fault)
        self.say(f"\n<< undo: {fault.what}")
        self.command(fault.node, fault.undo)
        if not self.auto:
            self.console.pause("   [Enter] and the drill runs it (running it yourself first is fine too)")
        self.run_on(fault.node, fault.undo)

    # --- configuration changes (always undone in restore) -------------------------------------

    def set_config(self, **changes: Any) -> None:
        """Change Patroni's dynamic configuration (``patronictl edit-config -s``), remembered for restore."""
        current = self.probe.dynamic_config()
        previous = {k: current.get(k) for k in changes}
        sets = " ".join(f"-s '{k}={_yaml_scalar(v)}'" for k, v in changes.items())
        self.say(f"\n~~ config: {', '.join(f'{k}={v}' for k, v in changes.items())}")
        self.command(self.node_of(self.topo.postgres_nodes[0].member),
                     f"patronictl -c {F.PATRONI_CONFIG} edit-config {sets} --force")
        self.probe.patch_config(changes)
        self._changes.append(_ConfigChange(f"config {previous}", lambda: self.probe.patch_config(previous)))

    def set_local(self, member: str, updates: dict[str, Any], why: str = "") -> None:
        """Change one node's local Patroni configuration (dotted keys) and reload Patroni; undone in
        restore. With a configuration directory the change is one extra fragment, merged last; with
        the article's single file, the file is edited and its original text put back. A marker tag
        proves the reload happened (GET /patroni shows tags)."""
        node = self.node_of(member)
        marker = f"{int(time.time() * 1000)}"
        shown = ", ".join(f"{k}: {v}" for k, v in updates.items())
        self.say(f"\n~~ Patroni's local configuration on {node}: {shown}")
        if self.facts.config_is_directory(node):
            path = f"{F.PATRONI_CONFIG}/{F.DRILL_FRAGMENT}"
            fragment: dict = {}
            for dotted, value in updates.items():
                _set_path(fragment, dotted, value)
            _set_path(fragment, "tags.lab_drill", marker)
            self.command(node, f"sudoedit {path}   # {shown}", why)
            self.command(node, f"sudo systemctl reload {F.PATRONI_UNIT}")
            self._write_file(node, path, yaml.safe_dump(fragment, sort_keys=False))
            self._reloaded(member, marker)
            self._changes.append(_ConfigChange(f"{path} on {node}", lambda: self._remove_fragment(member, path)))
            return
        path = f"{F.PATRONI_CONFIG}.yml"
        original = self.run_on(node, f"sudo cat {path}").stdout
        data = yaml.safe_load(original) or {}
        for dotted, value in updates.items():
            _set_path(data, dotted, value)
        _set_path(data, "tags.lab_drill", marker)
        self.command(node, f"sudoedit {path}   # set {shown}", why)
        self.command(node, f"sudo systemctl reload {F.PATRONI_UNIT}")
        self._write_file(node, path, yaml.safe_dump(data, sort_keys=False))
        self._reloaded(member, marker)

        def put_back() -> None:
            self._write_file(node, path, original)
            self._reloaded(member, None)
        self._changes.append(_ConfigChange(f"{path} on {node}", put_back))

    def _write_file(self, node: str, path: str, text: str) -> None:
        eof = "LAB_DRILL_EOF"
        self.run_on(node, f"sudo tee {path} >/dev/null <<'{eof}'\n{text.rstrip()}\n{eof}\n"
                          f"sudo chown postgres:postgres {path} && sudo chmod 600 {path}")
        self.facts.forget(node)

    def _remove_fragment(self, member: str, path: str) -> None:
        node = self.node_of(member)
        self.command(node, f"sudo rm {path} && sudo systemctl reload {F.PATRONI_UNIT}")
        self.run_on(node, f"sudo rm -f {path}")
        self.facts.forget(node)
        self._reloaded(member, None)

    def _reloaded(self, member: str, marker: str | None) -> None:
        node = self.node_of(member)
        if self.facts.unit_state(node, F.PATRONI_UNIT) != "active":
            return   # a stopped Patroni reads the file when it starts
        # A SIGHUP that reaches a Patroni still starting up (e.g. just started by an undo) kills it:
        # reload only once its REST API answers, which comes after its signal handlers.
        self.expect(lambda: self.probe.rest_alive(member), f"Patroni on {member} is up", within=60)
        self.run_on(node, f"sudo systemctl reload {F.PATRONI_UNIT}")
        self.expect(lambda: (self.probe.member_state(member).get("tags") or {}).get("lab_drill") == marker,
                    f"Patroni on {member} has reloaded its configuration", within=30)

    def undo_everything(self) -> list[str]:
        """Undo every fault still in effect and every config change, newest first; returns errors."""
        errors = []
        while self._faults:
            f = self._faults[-1]
            try:
                self.undo(f)
            except Exception as e:
                self._faults.remove(f) if f in self._faults else None
                errors.append(f"undo {f.what}: {e}")
        while self._changes:
            c = self._changes.pop()
            try:
                c.undo()
            except Exception as e:
                errors.append(f"restore {c.label}: {e}")
        return errors

    # --- the gate ----------------------------------------------------------------------------

    def gate(self, within: float) -> tuple[bool, list[health.Finding]]:
        found: list[health.Finding] = []

        def check() -> bool:
            nonlocal found
            found = health.findings(self.probe)
            return health.healthy(found)
        ok, _, _ = poll_until(check, self.bound(within), 2.0, self.clock)
        return ok, found

    def revive_patroni(self) -> list[str]:
        """Start Patroni where it is not running after the faults were undone: a fencing watchdog
        may have killed it (that is its job); the drill notes it, the baseline needs it back."""
        revived = []
        for n in self.topo.postgres_nodes:
            if self.facts.unit_state(n.name, F.PATRONI_UNIT) != "active":
                self.note(f"Patroni on {n.name} was not running after the undo "
                          f"({self.fencer_state(n.name) or 'no fencing record'}); starting it")
                self.shell.run(n.name, f"sudo systemctl reset-failed {F.PATRONI_UNIT}; "
                                       f"sudo systemctl start {F.PATRONI_UNIT}")
                revived.append(n.member)
        return revived

    def fenced_during_drill(self, node: str) -> bool:
        """The fencing watchdog fired on ``node`` after this drill started (its state file says when)."""
        state = self.fencer_state(node)
        if not state.startswith("fired") or not self.result:
            return False
        when = state.split()[-1]
        try:
            fired = datetime.fromisoformat(when.replace("Z", "+00:00"))
            return fired >= datetime.fromisoformat(self.result.started)
        except ValueError:
            return False

    def fencer_state(self, node: str) -> str:
        """What the containers' fencing watchdog service last did on ``node`` ('' where there is none)."""
        wd = self.facts.patroni_config(node).get("watchdog") or {}
        if wd.get("driver") != "testing" or not wd.get("device"):
            return ""
        out = self.shell.run(node, f"sudo cat $(dirname {wd['device']})/state 2>/dev/null")
        return out.stdout.strip() if out.ok else ""

    def repair(self) -> None:
        """Last resort when restore did not reach the baseline: undo anything a drill may leave,
        then reinitialise members that do not stream."""
        for node, cmds in F.undo_all_commands(self.topo).items():
            for cmd in cmds:
                self.shell.run(node, cmd)
        ok, _, _ = poll_until(self.probe.leader, self.bound(90), 2.0, self.clock)
        for n in self.topo.postgres_nodes:
            if n.member != self.probe.leader():
                if not poll_until(lambda m=n.member: self.probe.streaming(m), self.bound(60), 2.0, self.clock)[0]:
                    self.note(f"repair: reinitialising {n.member} from the leader")
                    self.probe.rest(n.member, "/reinitialize", method="POST", body={"force": True}, timeout=10)


# --- running ------------------------------------------------------------------------------------

def _indent(text: str) -> str:
    return "\n".join("   " + line if line.strip() else "" for line in text.strip("\n").splitlines())


def _yaml_scalar(v: Any) -> str:
    return "null" if v is None else yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("\n...")


def _set_path(data: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        data = data.setdefault(k, {}) if isinstance(data.get(k), dict) or k not in data else data[k]
    data[keys[-1]] = value


def _findings(found: list[health.Finding]) -> list[dict]:
    return [asdict(f) for f in found]


def _pg_connector(lab: Lab) -> Callable[[str, int], Any]:
    from lab import remote

    def connect(address: str, port: int):
        return remote.pg_connect(lab.topo, address, port, timeout=2,
                                 options="-c statement_timeout=3000", tcp_user_timeout=3000,
                                 keepalives=1, keepalives_idle=2, keepalives_interval=1, keepalives_count=2)
    return connect


def run_drill(cls: type[Drill], lab: Lab, *, writer: Writer | None = None,
              watch: SplitBrainWatch | None = None) -> Result:
    """Run one drill: gate, story, fault, expectations, restore, gate; always returns a Result."""
    d = cls()
    res = Result(cls.name, cls.section, mode="auto" if lab.auto else "guided", scale=lab.scale,
                 started=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    lab.result, lab.t_fault, lab.marks = res, None, {}
    start = lab.clock.monotonic()
    lab.say(f"\n#### {cls.name} — {cls.section}\n{_indent(cls.summary)}")
    lab.step("The story", cls.story + (f"\n\nPatroni 4 vs the article: {cls.differs}" if cls.differs else ""))

    ok, found = lab.gate(within=90)
    res.gate_before = _findings(found)
    if not ok:
        res.fail("the lab is not at its healthy baseline before the drill; nothing was touched:\n"
                 + health.describe(found))
        return _finish(lab, res, start)

    connect = _pg_connector(lab)
    if cls.writes and writer is None:
        writer = Writer(lab.writer_paths, connect, clock=lab.clock.monotonic)
    if watch is None:
        wp = lab.watch_probe or Probe(lab.topo, SshShell(lab.topo))
        watch = SplitBrainWatch(wp.primaries, wp.vip_holders, clock=lab.clock.monotonic)
    try:
        if cls.writes and writer is not None:
            try:
                c = connect(*lab.writer_paths[0][1:])
                writer.prepare(c)
                c.close()
            except Exception as e:
                raise ExpectationFailed(f"cannot prepare the writer's table through the VIP: {e}") from None
            writer.start()
        watch.start()
        lab.mark("start")
        d.run(lab)
    except ExpectationFailed as e:
        res.fail(str(e))
    except Exception as e:
        res.fail(f"{type(e).__name__}: {e}", verdict="error")
    finally:
        lab.step("Restore", "Undo the fault and any configuration change, then wait for the healthy baseline.")
        for err in lab.undo_everything():
            res.fail(err)
        lab.revive_patroni()
        try:
            d.restore(lab)
        except Exception as e:
            res.fail(f"restore: {e}")
        ok, found = lab.gate(within=180)
        if not ok:
            lab.note("baseline not reached after restore; repairing:\n" + health.describe(found))
            lab.repair()
            ok, found = lab.gate(within=180)
        res.gate_after = _findings(found)
        if writer is not None and ok:
            # haproxy's health checks lag the cluster by a few intervals: let every path come back
            if not poll_until(writer.all_paths_writing, lab.bound(60), 1.0, lab.clock)[0]:
                res.fail("a read-write path did not accept writes again after the restore")
        watch.stop()
        if writer is not None:
            writer.stop()
        if not ok:
            res.fail("the drill could not restore the healthy baseline:\n" + health.describe(found))

    t0 = lab.t_fault if lab.t_fault is not None else lab.marks.get("start", start)
    res.split_brain = watch.summary(since=lab.marks.get("start", start))
    _judge_split_brain(cls, res)
    if writer is not None:
        _account_writes(lab, writer, res, t0)
        if cls.lossless and res.writes.get("lost") not in (0, None):
            res.fail(f"{res.writes['lost']} acknowledged write(s) lost in a drill that must lose none")
    return _finish(lab, res, start)


def _judge_split_brain(cls: type[Drill], res: Result) -> None:
    seen = res.split_brain.get("double_primary", False)
    if cls.split_brain is False and seen:
        res.fail(f"split brain: {', '.join(res.split_brain['double_primary_nodes'])} were primary at once")
    elif cls.split_brain is True and not seen:
        res.notes.append("the double primary the article warns of was not observed this time")


def _account_writes(lab: Lab, writer: Writer, res: Result, t0: float) -> None:
    for name, log in writer.logs.items():
        res.rto_s[name] = log.rto(t0)
    acked = writer.acknowledged()
    res.writes = {"attempted": sum(len(l.attempts) for l in writer.logs.values()),
                  "acknowledged": len(acked),
                  "sync_cancelled": sum(len(l.sync_cancelled) for l in writer.logs.values()),
                  "outages_s": {n: [(round(a - t0, 1), None if b is None else round(b - t0, 1))
                                    for a, b in l.outages(t0)] for n, l in writer.logs.items()},
                  "lost": None}
    try:
        leader = lab.leader()
        conn = _pg_connector(lab)(lab.topo.node(leader).address, lab.topo.ports["postgres"])
        present = ids_present(conn, acked)
        conn.close()
        missing = writer.missing(present)
        res.writes.update(lost=len(missing), lost_ids=missing[:50], counted_on=leader)
    except Exception as e:
        res.notes.append(f"lost writes not counted: {e}")
    lab.say(f"   writes: {res.writes['acknowledged']} acknowledged, lost {res.writes['lost']}; "
            f"RTO {', '.join(f'{k} {v} s' for k, v in res.rto_s.items())}")


def _finish(lab: Lab, res: Result, start: float) -> Result:
    res.duration_s = round(lab.clock.monotonic() - start, 1)
    sb = res.split_brain
    lab.say(f"\n>>> {res.drill}: {res.verdict.upper()}" + (f" — {res.reason}" if res.reason else "")
            + (f"\n    split brain seen: {sb.get('double_primary')} (max primaries at once "
               f"{sb.get('max_primaries_at_once')}); duration {res.duration_s} s" if sb else ""))
    if lab.results_dir is not None:
        save_result(res, lab.results_dir)
    return res


def save_result(res: Result, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / f"{res.drill}.json"
    p.write_text(json.dumps(asdict(res), indent=2, default=str) + "\n")
    return p


def run_many(classes: list[type[Drill]], make_lab: Callable[[], Lab]) -> list[Result]:
    results = []
    for cls in classes:
        results.append(run_drill(cls, make_lab()))
    return results
