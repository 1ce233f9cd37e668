"""Tier 2: Ctrl-C during `invoke up`'s provisioning, then `invoke up` again, ends with the same cluster.

Runs from whatever phase the lab is in (absent, created after test_90, or
provisioned): `invoke up` is started in its own process group, and once its
output shows the first step after Patroni's (the cluster exists then), the
whole group gets SIGINT, as a terminal's Ctrl-C sends it. The interrupted
command must say so in one line naming itself and the next command, exit 130
and leave the machines (phase created); the next `invoke up` must end
provisioned with the cluster it had: the same system identifier on every
member, the same members, one leader.
"""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labcore import exitcodes, remote, topology
from labcore import state as lab_state
from labcore.poll import wait_for

pytestmark = pytest.mark.live
ROOT = topology.ROOT
INVOKE = str(Path(sys.executable).with_name("invoke"))
UP_TIMEOUT = int(os.environ.get("LAB_UP_TIMEOUT", "1500"))


def step_after_patroni() -> str:
    from provision.steps import ORDER
    names = [m.NAME for m in ORDER]
    return names[names.index("patroni") + 1]


def interrupt_up_at(step: str, timeout: float) -> tuple[int, str]:
    """Start `invoke up`, SIGINT its process group when ``step`` starts; its exit code and output."""
    # A job started in the background of a non-interactive shell inherits SIGINT ignored, and Python
    # then keeps it ignored: give `invoke up` the default disposition a terminal's Ctrl-C meets.
    proc = subprocess.Popen([INVOKE, "up"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, env=dict(os.environ, COLUMNS="200"),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout
    # A reader thread, not select() + readline(): readline buffers several lines while select() watches
    # the pipe, so a line already read could wait there until `invoke up` had finished.
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    out: list[str] = []
    started = re.compile(rf"step \d+/\d+ {re.escape(step)}\b")
    deadline = time.monotonic() + timeout
    sent = running = False
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                break
            out.append(line)
            if not sent and started.search(line):
                running = proc.poll() is None
                if running:
                    os.killpg(proc.pid, signal.SIGINT)
                sent = True
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = "".join(out)
    assert sent, f"`invoke up` never showed step {step} (exit {proc.returncode}):\n{text[-3000:]}"
    assert running, f"the test saw step {step} only after `invoke up` had ended: no Ctrl-C was tested"
    return rc, text


def cluster_identity(topo: topology.Topology) -> tuple[set[str], set[str], set[str]]:
    """(system identifiers, member names, leaders) of the main cluster, from Patroni's REST API."""
    ids, names, leaders = set(), set(), set()
    for n in topo.postgres_nodes:
        status, body = remote.http(topo, n.address, topo.ports["patroni"], "/patroni")
        if status in (200, 503) and isinstance(body, dict):
            if body.get("database_system_identifier"):
                ids.add(str(body["database_system_identifier"]))
            names.add(n.member)
            if body.get("role") in ("master", "primary"):
                leaders.add(n.member)
    return ids, names, leaders


def settled_identity(topo: topology.Topology, within: float = 120) -> tuple[set[str], set[str], set[str]]:
    """Bounded poll until every postgres member reports one system identifier and one leader leads."""
    def settled():
        try:
            ids, names, leaders = found = cluster_identity(topo)
        except Exception:            # a member restarting: look again
            return None
        return found if len(ids) == 1 and len(names) == len(topo.postgres_nodes) and len(leaders) == 1 else None
    return wait_for("one system identifier on every member and one leader", settled, within, every=2)


@pytest.fixture(scope="module")
def interrupted(lab_cli):
    topo = topology.load()
    rc, output = interrupt_up_at(step_after_patroni(), UP_TIMEOUT)
    (lab_state.lab_dir() / "test-up-interrupted.log").write_text(output)
    yield topo, rc, output
    if os.environ.get("LAB_KEEP") != "1":
        lab_cli("down")


def test_ctrl_c_during_provisioning_says_so_and_exits_130(interrupted):
    _, rc, output = interrupted
    last = [line for line in output.splitlines() if line.strip()][-1]
    assert rc == exitcodes.INTERRUPTED, output[-3000:]
    assert last.startswith("interrupted during `invoke up`: the machines are kept, not provisioned"), last
    assert "run `invoke up` to finish" in last
    assert "Traceback" not in output


def test_the_interrupted_lab_is_kept_and_not_called_provisioned(interrupted):
    assert lab_state.load().phase == "created"


def test_a_second_up_ends_provisioned_with_the_same_cluster(interrupted, lab_cli):
    topo, _, _ = interrupted
    before = settled_identity(topo)
    run = lab_cli("up", timeout=UP_TIMEOUT)
    assert run.rc == 0, run.tail()
    assert lab_state.load().phase == "provisioned"
    after = settled_identity(topo)
    assert after[0] == before[0], f"system identifier changed: {before[0]} -> {after[0]}"
    assert after[1] == before[1]
    assert len(after[2]) == 1
