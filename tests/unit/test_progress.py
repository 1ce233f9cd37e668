"""`invoke up`'s progress: step n/11, each node's line as soon as that node is done, a live status
line in a terminal, the timing table at the end; plain lines elsewhere."""
from __future__ import annotations

import io
import threading
from types import SimpleNamespace

import pytest
from rich.console import Console

import provision
import provision.steps
from labcore import progress, remote
from provision.step import one_wave
from test_provision_support import topology


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def plain(width: int = 200) -> tuple[progress.Reporter, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    return progress.Reporter(Console(file=out, width=width, force_terminal=False), clock), out, clock


def test_plain_lines_count_steps_and_end_with_the_timing_table():
    r, out, clock = plain()
    clock.now += 2
    r.step(5, 11, "patroni", "article §4: Patroni")
    clock.now += 30.25
    r.node_done("  node1: changed: start patroni")
    r.step_done()
    r.summary({"machines": 15.0, "provision": 32.3})
    lines = out.getvalue().splitlines()
    assert lines[0] == "   2.0s step 5/11 patroni (article §4: Patroni)"
    assert lines[1] == "  32.2s   node1: changed: start patroni" and lines[2] == "  32.2s   (30.2s)"
    assert lines[3:] == ["timings (s):", "  machines (create + ssh)    15.0", "    patroni                  30.2",
                         "  provisioning               32.3", "  total                      32.2"]


def test_a_long_line_stays_one_line_in_a_log():
    r, out, _ = plain(width=40)
    r("machines ready; ssh: ssh -F /a/very/long/path/to/the/lab/ssh_config node1")
    assert len(out.getvalue().splitlines()) == 1


def test_the_terminal_shows_step_activity_and_elapsed_seconds_live():
    out, clock = io.StringIO(), Clock()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    r = progress.for_console(console)
    assert isinstance(r, progress.TerminalReporter)
    r.clock, r.started, r._step_started = clock, clock.now, clock.now
    with r:
        r.step(5, 11, "patroni", "article §4")
        with r.waiting("patroni: waiting for the nodes to settle"):
            clock.now += 12
            r.live.refresh()
            screen = out.getvalue()
    assert "step 5/11 patroni · patroni: waiting for the nodes to settle" in screen and "12s" in screen
    assert progress.for_console(Console(file=io.StringIO(), force_terminal=False)).__class__ is progress.Reporter


class SlowSecondNode:
    """A provisioning step on node1 and node2 where node2 finishes only after node1's line was
    shown: with lines printed per wave, node2 would wait for its own end and time out."""
    NAME, SECTION, TITLE = "fake", "4", "a step for the test"
    waves = staticmethod(one_wave)
    settle = None

    def __init__(self) -> None:
        self.node1_reported = threading.Event()
        self.node2_saw_node1_first: bool | None = None

    def nodes(self, topo):
        return topo.nodes[:2]

    def resources(self, ctx):
        if ctx.node.name == "node2":
            self.node2_saw_node1_first = self.node1_reported.wait(timeout=5)
        return []


def test_each_node_line_comes_as_soon_as_that_node_is_done(monkeypatch):
    step = SlowSecondNode()
    monkeypatch.setattr(provision.steps, "ORDER", [step])
    monkeypatch.setattr(provision.steps, "STEPS", {step.NAME: step})
    conn = SimpleNamespace(run=lambda *a, **k: SimpleNamespace(stdout="eth0\ncontainer\n", exited=0, stderr=""))
    monkeypatch.setattr(remote, "connect", lambda topo, node: conn)
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        if line.startswith("  node1:"):
            step.node1_reported.set()

    provision.run(topology(), report=report, platform="debian12")
    assert step.node2_saw_node1_first is True
    assert lines[0] == "step 1/1 fake (article §4: a step for the test)"
    assert [line.split(":")[0].strip() for line in lines[1:3]] == ["node1", "node2"]


class Changing:
    """A step whose resources change node2 only, with a ``confirm`` hook that records its call."""
    waves = staticmethod(one_wave)
    settle = None

    def __init__(self, name: str, confirm_log: list | None) -> None:
        self.NAME, self.SECTION, self.TITLE = name, "4", f"step {name}"
        self.confirm = None if confirm_log is None else (
            lambda topo, changed, report: confirm_log.append((self.NAME, [n.name for n in changed])))

    def nodes(self, topo):
        return topo.nodes[:2]

    def resources(self, ctx):
        return [SimpleNamespace(key=f"{self.NAME}-{ctx.node.name}", node=ctx.node.name,
                                noop=lambda: "already so")]


def test_a_steps_confirm_runs_once_after_the_last_step_with_the_nodes_it_changed(monkeypatch):
    from provision import engine

    confirmed: list = []
    first, second = Changing("first", confirmed), Changing("second", None)
    monkeypatch.setattr(provision.steps, "ORDER", [first, second])
    monkeypatch.setattr(provision.steps, "STEPS", {"first": first, "second": second})
    conn = SimpleNamespace(run=lambda *a, **k: SimpleNamespace(stdout="eth0\ncontainer\n", exited=0, stderr=""))
    monkeypatch.setattr(remote, "connect", lambda topo, node: conn)
    monkeypatch.setattr(engine, "gather", lambda conn, resources: [])
    monkeypatch.setattr(engine, "plan", lambda resources, facts: [
        SimpleNamespace(key=r.key, what=f"change {r.key}") for r in resources if r.node == "node2"])
    monkeypatch.setattr(engine, "apply", lambda conn, node, changes: None)
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        if line.startswith("confirm"):
            confirmed.append("stage shown")

    provision.run(topology(), report=report, platform="debian12")
    # after step 2, not after step 1; only the node the step changed
    assert confirmed == ["stage shown", ("first", ["node2"])]
    assert lines.index(next(x for x in lines if x.startswith("confirm"))) > lines.index("step 2/2 second (article §4: step second)")
