"""An `invoke ...` command line run as a user runs it: by the real program in a child
process, or by the same Invoke ``Program`` in this process (no interpreter start-up and
imports per command, which made the bad-input tests the slowest of the tier).

Both give exit code, stdout and stderr; test_bad_inputs.py checks on a sample of bad
inputs that the two agree. The in-process run follows the interpreter: ``sys.exit(str)``
prints the text and exits 1, an uncaught exception prints its traceback and exits 1.
"""
from __future__ import annotations

import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from labcore import poll, topology

INVOKE = str(Path(sys.executable).with_name("invoke"))


@dataclass(frozen=True)
class Said:
    code: int
    out: str
    err: str


def in_process(args: list[str], mp: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
               cwd: Path = topology.ROOT) -> Said:
    """``invoke *args`` by Invoke's Program here, with this process's environment."""
    from invoke import Program, __version__

    capfd.readouterr()
    mp.chdir(cwd)                          # Invoke finds tasks.py from the working directory
    mp.setattr(poll, "_option", None)      # the --scale an earlier command of this process chose
    program = Program(name="Invoke", binary="inv[oke]", binary_names=["invoke", "inv"], version=__version__)
    code = 0
    try:
        program.run(["invoke", *args], exit=True)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except Exception:                       # what the interpreter would print for the real program
        traceback.print_exc()
        code = 1
    out, err = capfd.readouterr()
    return Said(code, out, err)


def real(args: list[str], cwd: Path = topology.ROOT, timeout: float = 60) -> Said:
    """``invoke *args`` by the installed program, in a child process with this environment."""
    r = subprocess.run([INVOKE, *args], cwd=cwd, env=dict(os.environ), capture_output=True, text=True,
                       timeout=timeout)
    return Said(r.returncode, r.stdout, r.stderr)
