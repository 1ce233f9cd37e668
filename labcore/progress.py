"""How `invoke up` and `invoke provision` tell a person what they are doing.

The lifecycle and the provisioning engine call one reporter object: ``report("a line")`` as
always, plus ``step(n, total, ...)`` when a step starts, ``node_done(line)`` as soon as one node
has finished it, ``step_done()`` at its end and ``waiting(what)`` around long waits.

- :class:`Reporter` writes plain lines (CI, log files: one line per event, as before).
- :class:`TerminalReporter` does the same above a live status line at the bottom of the
  terminal: a spinner, the current step as ``n/11``, what it waits for and the seconds elapsed.

Both keep each step's duration and print the run's timing table at the end.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

Clock = Callable[[], float]


class Reporter:
    """Plain lines, each prefixed with the seconds since the command started."""

    def __init__(self, console: Console, clock: Clock = time.monotonic) -> None:
        self.console = console
        self.clock = clock
        self.started = clock()
        self.steps: list[tuple[str, float]] = []      # (label, seconds) of every finished step
        self.current: str = ""                        # "step 5/11 patroni"
        self.activity: str = ""                       # what it waits for right now
        self._step_started = self.started

    # the one-argument call every lifecycle function already makes
    def __call__(self, message: str) -> None:
        self.line(message)

    def line(self, message: str) -> None:
        # soft_wrap: a log line stays one line however long (no wrapping at 80 columns)
        self.console.print(f"[dim]{self.clock() - self.started:6.1f}s[/] {message}", soft_wrap=True,
                           highlight=False)

    def step(self, number: int, total: int, name: str, title: str) -> None:
        self.stage(f"step {number}/{total} {name}", title)

    def stage(self, label: str, title: str) -> None:
        """A part of the run timed like a step: a numbered step, or e.g. the checks after the last one."""
        self.current = label
        self.activity = ""
        self._step_started = self.clock()
        self.line(f"{label} ({title})")

    def node_done(self, line: str) -> None:
        self.line(line)

    def step_done(self) -> None:
        seconds = self.clock() - self._step_started
        self.steps.append((self.current.split(" ", 2)[-1] if self.current else "step", seconds))
        self.line(f"  ({seconds:.1f}s)")
        self.current, self.activity = "", ""

    @contextmanager
    def waiting(self, what: str) -> Iterator[None]:
        """Around a long wait: the terminal shows what is awaited and for how long."""
        before, self.activity = self.activity, what
        try:
            yield
        finally:
            self.activity = before

    def __enter__(self) -> "Reporter":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def timing_rows(self, phases: dict[str, float]) -> list[tuple[str, str]]:
        rows = []
        if "machines" in phases:
            rows.append(("machines (create + ssh)", f"{phases['machines']:.1f}"))
        rows += [(f"  {label}", f"{seconds:.1f}") for label, seconds in self.steps]
        if "provision" in phases:
            rows.append(("provisioning", f"{phases['provision']:.1f}"))
        rows.append(("total", f"{self.clock() - self.started:.1f}"))
        return rows

    def summary(self, phases: dict[str, float]) -> None:
        """The run's timing table (seconds), after everything else."""
        rows = self.timing_rows(phases)
        self.console.print("timings (s):", highlight=False)
        width = max(len(r[0]) for r in rows)
        for label, seconds in rows:
            self.console.print(f"  {label:<{width}} {seconds:>7}", highlight=False)


class _StatusLine:
    """The bottom line, re-rendered on every refresh so the elapsed seconds keep counting."""

    def __init__(self, reporter: "TerminalReporter") -> None:
        self.r = reporter
        self.spinner = Spinner("dots", style="cyan")

    def __rich__(self) -> Table:
        r = self.r
        what = " · ".join(filter(None, [r.current or r.phase, r.activity or r.last]))
        elapsed = r.clock() - (r._step_started if r.current else r.started)
        grid = Table.grid(padding=(0, 1))
        grid.add_row(self.spinner, Text(what, overflow="ellipsis", no_wrap=True),
                     Text(f"{elapsed:5.0f}s", style="bold"))
        return grid


class TerminalReporter(Reporter):
    """Plain lines scroll above a live status line (spinner, step n/11, activity, elapsed)."""

    def __init__(self, console: Console, clock: Clock = time.monotonic) -> None:
        super().__init__(console, clock)
        from rich.live import Live

        self.phase = "machines"
        self.last = ""
        self.live = Live(_StatusLine(self), console=console, refresh_per_second=8, transient=True)

    def line(self, message: str) -> None:
        self.last = message.strip()
        super().line(message)

    def __enter__(self) -> "TerminalReporter":
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()


def for_console(console: Console) -> Reporter:
    """The live reporter in a terminal, plain lines anywhere else."""
    return TerminalReporter(console) if console.is_terminal else Reporter(console)


def of(report: Callable[[str], None]) -> Reporter:
    """A reporter for code that was handed a plain ``report(line)`` callable (tests, scripts)."""
    if isinstance(report, Reporter):
        return report
    return _Forwarding(report)


class _Forwarding(Reporter):
    def __init__(self, report: Callable[[str], None]) -> None:
        super().__init__(Console(quiet=True))
        self.forward = report

    def line(self, message: str) -> None:
        self.forward(message)
