"""SQL handed to lab.exercises.kit.sql: with parameters the driver reads every '%' as a placeholder.
A literal '%' (LIKE '%.history') once made a query fail on every member, and a failed query reads as
"no answer". The kit sends text without parameters as it is; the SQL it runs keeps no bare '%' either."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNERS = {"query", "scalar"}                 # lab.exercises.kit.sql's functions that run text
BAD_PERCENT = re.compile(r"%(?![s%])")


def sql_literals() -> list[tuple[str, str]]:
    out = []
    for path in sorted((ROOT / "lab").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in RUNNERS:
                continue
            for arg in node.args:
                for const in ast.walk(arg):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str):
                        out.append((f"{path.relative_to(ROOT)}:{node.lineno}", const.value))
    return out


def test_sql_run_through_the_kit_has_no_bare_percent():
    found = sql_literals()
    assert any("pg_ls_waldir" in text for _, text in found)      # the scan sees the kit's queries
    bad = [f"{where}: {text!r}" for where, text in found if BAD_PERCENT.search(text)]
    assert not bad, "a bare '%' in SQL run with parameters:\n" + "\n".join(bad)


def test_the_scan_would_catch_the_old_history_query():
    assert BAD_PERCENT.search("SELECT max(name) FROM pg_ls_waldir() WHERE name LIKE '%.history'")


def test_a_query_without_parameters_is_sent_as_it_is(monkeypatch):
    from contextlib import contextmanager
    from types import SimpleNamespace

    from lab.exercises.kit import sql
    from test_provision_support import topology

    seen = []

    class Cursor:
        description = None
        def __enter__(self): return self
        def __exit__(self, *a): return None
        def execute(self, text, params): seen.append(params)

    @contextmanager
    def connection(*a, **k):
        yield SimpleNamespace(cursor=Cursor)
    monkeypatch.setattr(sql, "connection", connection)
    assert sql.query(topology(), "node1", "SELECT 1 WHERE 'a' LIKE '%'") == []
    assert sql.query(topology(), "node1", "SELECT %s", (1,)) == []
    assert seen == [None, (1,)]
