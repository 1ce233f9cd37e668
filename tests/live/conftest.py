"""The live tier's lab: brought up once per session through the real CLI, torn down at the end.

The instance is whatever LAB_TOPOLOGY / LAB_DIR say (default: topology.yml and
.lab/). Leftovers of an earlier run are removed first. LAB_KEEP=1 keeps the lab
after the session (for looking around when a test failed).
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from labcore import state as lab_state
from labcore import topology

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).with_name("invoke"))
UP_TIMEOUT = int(os.environ.get("LAB_UP_TIMEOUT", "1500"))


@dataclass
class Run:
    args: list[str]
    rc: int
    output: str
    log: Path

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def invoke(*args: str, timeout: int = 600) -> Run:
    """Run an invoke task as a user would, keeping its output in $LAB_DIR/test-<task>.log."""
    log = lab_state.lab_dir() / f"test-{args[0]}.log"
    try:
        p = subprocess.run([INVOKE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, COLUMNS="200"))
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = -1, f"{e.stdout or ''}{e.stderr or ''}\n(timed out after {timeout} s)"
        out = out if isinstance(out, str) else out.decode(errors="replace")
    log.write_text(out)
    return Run(list(args), rc, out, log)


@pytest.fixture(scope="session")
def lab_up_run() -> Run:
    """`invoke down` (leftovers), then `invoke up`; the lab is removed when the session ends."""
    down = invoke("down")
    if down.rc != 0:
        pytest.fail(f"`invoke down` before the session failed:\n{down.tail()}")
    run = invoke("up", timeout=UP_TIMEOUT)
    yield run
    if os.environ.get("LAB_KEEP") != "1":
        invoke("down")


@pytest.fixture(scope="session")
def live_lab(lab_up_run: Run) -> topology.Topology:
    """The topology of a lab whose machines are up (provisioning may still have failed:
    test_10_machines says so, and cluster tests check the phase themselves)."""
    if not lab_state.load().is_up:
        pytest.fail(f"`invoke up` left no machines (exit {lab_up_run.rc}):\n{lab_up_run.tail()}")
    return topology.load()


@pytest.fixture(scope="session")
def lab_cli():
    """Run `invoke <task> ...` as a user would: ``lab_cli("status")`` -> Run(rc, output, log)."""
    return invoke


@pytest.fixture(scope="session")
def provisioned_lab(request) -> topology.Topology:
    """A provisioned lab: the session's (brought up by `invoke up`), or with LAB_REUSE=1 one that
    is already provisioned (re-running a few tests without rebuilding)."""
    if not (os.environ.get("LAB_REUSE") == "1" and lab_state.load().phase == "provisioned"):
        request.getfixturevalue("live_lab")
    if lab_state.load().phase != "provisioned":
        pytest.skip("the lab is not provisioned (run `invoke up`)")
    return topology.load()
