"""Tier 2, the package index: PyPI really serves the nodes' build of a compiled wheel that the
control host's own Python cannot use (the unit tier checks what pip is asked, with a stand-in).

Needs the network, not the lab: it runs before the lab is brought up."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from provision import wheelhouse

pytestmark = pytest.mark.live


def test_a_wheel_compiled_for_another_python_is_swapped_for_the_nodes_build(tmp_path):
    """A control host on Python 3.12 (Ubuntu 24.04) still serves Debian 12's 3.11 nodes."""
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--implementation", "cp", "--python-version", "3.12",
                        "--platform", f"manylinux2014_{platform.machine()}", "-d", str(tmp_path),
                        "psycopg2-binary==2.9.10"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"PyPI not reachable: {r.stderr.strip().splitlines()[-1:]}")
    assert wheelhouse.retarget(tmp_path, "3.11") == ["psycopg2_binary"]
    names = [w.name for w in tmp_path.glob("*.whl")]
    assert len(names) == 1 and "-cp311-cp311-manylinux" in names[0], names
