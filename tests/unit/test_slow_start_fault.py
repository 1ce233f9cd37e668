"""The held PostgreSQL start of primary-pg-stop (article §5 row 6), checked without machines."""
from __future__ import annotations

import subprocess

from lab.exercises.kit import actions as F
from labcore.topology import load


class _Facts:
    def __init__(self) -> None:
        self.topo = load()

    def data_dir(self, node: str) -> str:
        return "/pgsql/data"

    def bin_dir(self, node: str) -> str:
        return "/usr/lib/postgresql/15/bin"


def test_the_stop_runs_in_the_foreground_and_only_the_catcher_is_left_behind():
    fault = F.slow_start_postgres(_Facts(), "pg1", lambda member: False)
    text = fault.text()
    stop, _, rest = text.partition(" && ")
    assert stop.endswith("pg_ctl stop -D /pgsql/data -m fast") and "&" not in stop
    # the catcher is backgrounded inside braces: `a && b &` would put pg_ctl stop in the background as well
    assert rest.startswith("{ sudo setsid nohup sh -c ") and rest.endswith("</dev/null & }")
    assert "kill -STOP $p" in rest and F.HELD_POSTMASTER in rest and "/pgsql/data/postmaster.pid" in rest
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    assert f"kill -CONT $(cat {F.HELD_POSTMASTER})" in fault.undo
    assert fault.node == "node1"
