"""Helpers of the VM tier (a module of its own name: tests/live has a conftest too)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from labcore import state as lab_state
from labcore import topology

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).with_name("invoke"))


@dataclass
class Run:
    args: list[str]
    rc: int
    output: str
    seconds: float
    log: Path

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def invoke(*args: str, timeout: int = 900) -> Run:
    """Run an invoke task as a user would; its output is kept in $LAB_DIR/test-vm-<task>.log."""
    log = lab_state.lab_dir() / f"test-vm-{'-'.join(a.strip('-') for a in args[:2])}.log"
    t0 = time.monotonic()
    try:
        p = subprocess.run([INVOKE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, COLUMNS="200"))
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        rc, out = -1, (out.decode(errors="replace") if isinstance(out, bytes) else out) + f"\n(timed out after {timeout} s)"
    log.write_text(out)
    return Run(list(args), rc, out, round(time.monotonic() - t0, 1), log)


@dataclass
class VmLab:
    topo: topology.Topology
    up: Run
    image_seconds: float
    reprovision: Run | None = None        # a second `invoke provision` when `up`'s provisioning failed
    times: dict[str, float] = field(default_factory=dict)


def docker_lab_up(topo: topology.Topology) -> bool:
    r = subprocess.run(["docker", "network", "inspect", topo.name], capture_output=True, text=True)
    return r.returncode == 0


