"""The dashboard's own watch of one lab between runs: the drills' watch, writing the same samples.

One process per seat (``python -m lab.dashboard.sampler``, started by ``invoke dashboard`` with the
seat's LAB_DIR and LAB_TOPOLOGY, since the ssh configuration is per lab). It samples while no drill
or exam runs in the seat and stands aside while one does: that run's own watch is then the source,
and two watches would only double the load on the nodes.
"""
from __future__ import annotations

import shutil
import signal
import sys
import threading

from lab.dashboard import feed
from labcore import state as lab_state

CHECK_EVERY = 1.0           # seconds between looks at whether a run has started or ended
# A page between runs needs no drill's twice a second: a slower watch leaves the host's cores to the
# seats that run drills (a room of seats shares them).
IDLE_INTERVAL_S = 2.0


def _watch(lab_dir):
    """The drills' watch on this lab, recording into ``<lab_dir>/dashboard/events.jsonl`` (a fresh file)."""
    from lab.exercises import Lab
    from lab.exercises.observe.evidence import DrillRecorder
    from lab.exercises.run.runner import lab_watch
    from labcore.topology import load

    folder = lab_dir / feed.IDLE_FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    recorder = DrillRecorder(folder)
    watch = lab_watch(Lab(load(), auto=True, recorder=recorder))
    watch.interval = IDLE_INTERVAL_S
    return watch, recorder


def main() -> int:
    lab_dir = lab_state.lab_dir(create=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    watch = recorder = None
    try:
        while not stop.is_set():
            busy = feed.current(lab_dir).kind in ("drill", "exam")
            if busy and watch:
                watch.stop()
                recorder.close()
                watch = recorder = None
            elif not busy and watch is None and lab_state.load().phase == "provisioned":
                watch, recorder = _watch(lab_dir)
                watch.start()
            stop.wait(CHECK_EVERY)
    except KeyboardInterrupt:
        pass
    finally:
        if watch:
            watch.stop()
            recorder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
