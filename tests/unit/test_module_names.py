"""Every ``alias.NAME`` read from one of the project's own modules names something that module has.

A drill's repair path runs rarely (only when the lab misbehaves), so a misspelt or moved module
attribute there is found only by the live run that needed it. This reads every source file, resolves
the aliases that stand for project modules (``from lab.exercises.kit import actions as F``,
``import labcore.poll as poll``) and checks each attribute read on them.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("lab", "labcore", "provision")


def _module(name: str) -> ModuleType | None:
    if not name.split(".")[0] in PROJECT:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def module_aliases(tree: ast.AST) -> dict[str, ModuleType]:
    """Names bound at module level to one of the project's modules."""
    out: dict[str, ModuleType] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname and (m := _module(a.name)):
                    out[a.asname] = m
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                if m := _module(f"{node.module}.{a.name}"):
                    out[a.asname or a.name] = m
    return out


def missing_attributes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    aliases = module_aliases(tree)
    # a name also assigned in the file (a parameter, a loop variable) is not the module everywhere
    rebound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    rebound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
                for a in n.args + n.kwonlyargs + n.posonlyargs}
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.value.id not in rebound
                and not hasattr(aliases[node.value.id], node.attr)):
            out.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{node.lineno}: "
                       f"{node.value.id}.{node.attr} ({aliases[node.value.id].__name__} has no {node.attr})")
    return out


def test_every_attribute_read_on_a_project_module_exists():
    files = [p for top in PROJECT for p in sorted((ROOT / top).rglob("*.py"))] + [ROOT / "tasks.py"]
    assert [m for f in files for m in missing_attributes(f)] == []


def test_a_name_the_module_does_not_have_is_caught(tmp_path):
    src = tmp_path / "drill.py"
    src.write_text("from lab.exercises.kit import actions as F\n"
                   "from lab.exercises.kit import ctl\n"
                   "def f():\n    return F.PATRONI_CONFIG, ctl.reinit\n")
    found = missing_attributes(src)
    assert len(found) == 1 and "F.PATRONI_CONFIG" in found[0]
