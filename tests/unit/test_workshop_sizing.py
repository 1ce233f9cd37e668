"""scripts/workshop-sizing.py's arithmetic: the seats a host holds, and the CPU it reads for a process."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from labcore import poll

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("workshop_sizing", ROOT / "scripts" / "workshop-sizing.py")
sizing = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sizing)


def test_the_smaller_of_memory_and_cpu_decides():
    assert sizing.capacity(64, 16, 457.4, 0.198) == {"by_memory": 138, "by_cpu": 60, "seats": 60}
    assert sizing.capacity(8, 32, 457.4, 0.198) == {"by_memory": 13, "by_cpu": 121, "seats": 13}
    assert sizing.capacity(1, 2, 457.4, 0.198)["seats"] == 0          # the host's own reserve first


def test_cpu_time_of_a_process_is_read_from_proc():
    before = sizing.cpu_seconds([], [os.getpid()])

    def burnt_a_tick() -> bool:      # /proc counts in clock ticks (10 ms): burn until one more shows
        sum(i * i for i in range(300_000))
        return sizing.cpu_seconds([], [os.getpid()]) > before
    assert poll.poll(burnt_a_tick, within=30, every=0).ok
    assert sizing.cpu_seconds(["no-such-container"], [999_999_999]) == 0.0
