"""`invoke dashboard`: the live page of the lab, or of every seat of a workshop room.

It serves lab/dashboard's page and starts one sampler per seat (the drills' watch, between runs);
while a drill or an exam runs in a seat the page follows that run's own events instead.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from invoke import Exit, task

from lab.dashboard import feed, server
from labcore import state as lab_state
from labcore.topology import ROOT


def _sampler(seat: feed.Seat) -> subprocess.Popen:
    env = dict(os.environ, LAB_DIR=str(seat.lab_dir))
    topo = seat.lab_dir / "topology.yml"
    if seat.key != "lab" and topo.exists():
        env["LAB_TOPOLOGY"] = str(topo)
    log = (seat.lab_dir / "dashboard-sampler.log").open("w")
    return subprocess.Popen([sys.executable, "-m", "lab.dashboard.sampler"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


@task(help={"bind": "address to serve on (default 127.0.0.1; 0.0.0.0 for the room's LAN)",
            "port": "TCP port (default 8765)",
            "room": "a workshop room's folder: one card per seat (default: this lab only)",
            "watch": "sample the lab between runs (default on; --no-watch only follows runs)"})
def dashboard(c, bind="127.0.0.1", port=8765, room="", watch=True):
    """A live web page: members, VIPs, haproxy, writes and the running drill, for this lab or every seat."""
    seats = feed.seats(Path(room).resolve() if room else None, lab_state.lab_dir())
    if room and seats[0].key == "lab":
        raise Exit(f"error: --room {room}: no seat folders (seat1, seat2, ...) there", code=2)
    try:
        httpd = server.serve(seats, bind, int(port))
    except OSError as e:
        raise Exit(f"error: cannot serve on {bind}:{port}: {e.strerror}; choose another with --port", code=2) from None
    samplers = [_sampler(s) for s in seats] if watch else []
    print(f"dashboard of {len(seats)} {'seat' if len(seats) == 1 else 'seats'}: http://{bind}:{port}/ "
          f"(Chinese: http://{bind}:{port}/?lang=zh; a trainee's view: ?view=trainee); Ctrl-C stops it")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.shutdown()
        for p in samplers:
            p.terminate()
        for p in samplers:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


TASKS = [dashboard]
