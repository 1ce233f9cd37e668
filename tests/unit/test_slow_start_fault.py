"""The held PostgreSQL start of primary-pg-stop (article §5 row 6), checked without machines: the
stand-in for ``postgres`` really stops the first postmaster start and nothing else, and the release
puts the real binary back and ends the held start (let go, it would come up as a second primary)."""
from __future__ import annotations

import os
import subprocess

import pytest

from lab.exercises.kit import actions as F
from labcore import poll
from labcore.topology import load


class _Facts:
    def __init__(self) -> None:
        self.topo = load()

    def data_dir(self, node: str) -> str:
        return "/pgsql/data"

    def bin_dir(self, node: str) -> str:
        return "/usr/lib/postgresql/15/bin"


def test_the_stand_in_goes_in_before_the_stop_and_the_undo_is_the_release():
    fault = F.slow_start_postgres(_Facts(), "pg1", lambda member: False)
    text = fault.text()
    install, _, stop = text.partition(" && sudo -u postgres ")
    assert stop.endswith("pg_ctl stop -D /pgsql/data -m fast")
    assert "postgres.lab-real" in install and "base64 -d" in install and F.HELD_BIN in install
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    assert fault.undo == F.RELEASE_HELD_START and fault.node == "node1"
    assert any(F.RELEASE_HELD_START == c for c in F.undo_all_commands(load())["node1"])   # repair too


def _state(pid: int) -> str:
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]


def test_the_first_postmaster_start_stops_itself_until_released(tmp_path, monkeypatch):
    held = tmp_path / "held"
    monkeypatch.setattr(F, "HELD_POSTMASTER", str(held))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / F.REAL_POSTGRES).write_text(f"#!/bin/sh\necho real \"$@\" >> {tmp_path}/out\n")
    (bin_dir / F.REAL_POSTGRES).chmod(0o755)
    (bin_dir / "postgres").write_text(F._held_start_script(str(bin_dir)))
    (bin_dir / "postgres").chmod(0o755)

    subprocess.run([str(bin_dir / "postgres"), "--version"], check=True, timeout=10)   # not a postmaster
    assert (tmp_path / "out").read_text() == "real --version\n" and not held.exists()

    start = subprocess.Popen([str(bin_dir / "postgres"), "-D", "/pgsql/data", "--port=5432"])
    try:
        poll.poll(lambda: held.exists() and bool(held.read_text().strip()), within=10, every=0.05)
        assert int(held.read_text()) == start.pid and _state(start.pid) == "T"      # stopped, before any work
        assert (tmp_path / "out").read_text() == "real --version\n"
        # the release, with this test's paths: real binary back first, then the held start ended
        os.replace(bin_dir / F.REAL_POSTGRES, bin_dir / "postgres")
        os.kill(start.pid, 9)
        assert start.wait(timeout=10) == -9
    finally:
        if start.poll() is None:
            start.kill()
    assert (tmp_path / "out").read_text() == "real --version\n"          # the held start never ran postgres
    assert not (bin_dir / F.REAL_POSTGRES).exists()
    assert "kill -KILL" in F.RELEASE_HELD_START and "-CONT" not in F.RELEASE_HELD_START


@pytest.mark.parametrize("args", [["--describe-config"], ["-C", "data_directory", "--config-file=x"]])
def test_calls_that_are_not_a_postmaster_start_are_never_held(tmp_path, monkeypatch, args):
    monkeypatch.setattr(F, "HELD_POSTMASTER", str(tmp_path / "held"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / F.REAL_POSTGRES).write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / F.REAL_POSTGRES).chmod(0o755)
    (bin_dir / "postgres").write_text(F._held_start_script(str(bin_dir)))
    (bin_dir / "postgres").chmod(0o755)
    assert subprocess.run([str(bin_dir / "postgres"), *args], timeout=10).returncode == 0
    assert not (tmp_path / "held").exists()
