"""`invoke status --watch`: the cluster view redrawn every second until Ctrl-C (as
`patronictl list -W` does): members with role, timeline and lag, VIP holders, haproxy backends,
etcd health. Sections are read concurrently, so one slow node does not stall the others."""
from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Callable

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from lab.status import Section

Collect = Callable[[], list[Section]]


def concurrent_sections(topo, st) -> Collect:
    """Every status section except the machines' (an ssh round per node each second is too slow
    for a redraw), each read in its own thread."""
    from lab import status

    def collect() -> list[Section]:
        with ThreadPoolExecutor(max_workers=len(status.SECTIONS)) as pool:
            found = list(pool.map(lambda fn: _safe(fn, topo, st), status.SECTIONS))
        return [s for s in found if s]
    return collect


def _safe(fn, topo, st) -> Section | None:
    try:
        return fn(topo, st)
    except Exception as e:                 # a section that cannot be read says so in its place
        return Section(fn.__name__, ["error"], [[f"{type(e).__name__}: {e}"]])


def frame(sections: list[Section], took: float, interval: float) -> Group:
    head = Text(f"{datetime.now().strftime('%H:%M:%S')}  every {interval:g}s (read in {took:.2f}s)"
                "  Ctrl-C to stop", style="dim")
    return Group(head, *(section_table(sec) for sec in sections))


def section_table(sec: Section) -> Table:
    """One status section as a table: the same drawing for `invoke status` and `--watch`."""
    table = Table(title=sec.title, title_justify="left")
    for col in sec.columns:
        table.add_column(col)
    for row in sec.rows:
        table.add_row(*row)
    return table


def watch(collect: Collect, console: Console, interval: float = 1.0, frames: int | None = None,
          stop: threading.Event | None = None) -> int:
    """Redraw until Ctrl-C (or ``frames`` frames, or ``stop``); returns the frames drawn.
    In a terminal the view is redrawn in place; elsewhere each frame is printed after the last."""
    from rich.live import Live

    stop = stop or threading.Event()
    drawn = 0
    live = Live(console=console, auto_refresh=False, transient=False) if console.is_terminal else None
    try:
        if live:
            live.start()
        for drawn in itertools.count(1):
            began = time.monotonic()
            view = frame(collect(), time.monotonic() - began, interval)
            if live:
                live.update(view, refresh=True)
            else:
                console.print(view)
            if (frames and drawn >= frames) or stop.wait(max(0.0, interval - (time.monotonic() - began))):
                break
    except KeyboardInterrupt:
        pass
    finally:
        if live:
            live.stop()
    return drawn
