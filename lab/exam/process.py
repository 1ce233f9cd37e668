"""The exam's background process, known by its pid: started detached from the command that starts
the exam (the exam outlives it), stopped by the command that ends it. Stopping waits until the
process is gone, so no exam leaves a process behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from labcore import poll

ROOT = Path(__file__).resolve().parents[2]


def start(args: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    """``python -m <args>`` in its own session (Ctrl-C in the trainee's shell does not reach it),
    output to ``log``; returns its pid."""
    env = dict(os.environ if env is None else env)
    # the checkout's packages, from whatever folder the command was typed in (the working directory
    # stays: LAB_DIR and LAB_TOPOLOGY may be relative to it)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with open(log, "ab") as out:
        p = subprocess.Popen([sys.executable, "-m", *args], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             start_new_session=True, close_fds=True, env=env)
    return p.pid


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (a unit test's), else nothing."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is gone for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def stop(pid: int | None, within: float = 60.0) -> bool:
    """SIGTERM, wait up to ``within`` seconds for it to finish its records, then SIGKILL.
    True when it ended by itself."""
    if not alive(pid):
        return True
    assert pid is not None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    ok, _, _ = poll.until(lambda: not alive(pid), within, 0.2)
    if ok:
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    poll.until(lambda: not alive(pid), 10, 0.2)
    return False
