"""The layers of docs/architecture.md, checked on the source: each rule is a function of a source
tree, run on the project and, to show it can fail, on a small tree with one violation."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POLL_HELPER = Path("labcore/poll.py")
SCANNED = ("lab", "labcore", "provision", "tests", "tasks.py")


def sources(root: Path, *tops: str) -> list[Path]:
    out: list[Path] = []
    for top in tops:
        p = root / top
        out += [p] if p.is_file() else sorted(p.rglob("*.py")) if p.is_dir() else []
    return [p for p in out if ".venv" not in p.parts]


def module_of(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_statements(root: Path, path: Path):
    """(base module, [imported names] or None for ``import x``) of every import in ``path``, relative ones resolved."""
    package = module_of(root, path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            yield base, [a.name for a in node.names]


def imports(root: Path, path: Path) -> set[str]:
    """Every module ``path`` imports (``from a.b import c`` counts as a.b and a.b.c)."""
    found: set[str] = set()
    for base, names in _import_statements(root, path):
        found.add(base)
        found.update(f"{base}.{n}" for n in names or ())
    return found


def import_targets(root: Path, path: Path) -> set[str]:
    """The modules ``path`` imports, as the layers see them: ``from a import b`` is ``a.b`` when ``b`` is a
    module or package of the tree, else ``a`` (``b`` is a name defined in ``a``)."""
    found: set[str] = set()
    for base, names in _import_statements(root, path):
        if names is None:
            found.add(base)
        for n in names or ():
            sub = root.joinpath(*base.split("."), n)
            found.add(f"{base}.{n}" if sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file() else base)
    return found


def under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# --- the rules ------------------------------------------------------------------------------

# One rule per package: what its modules may import of the project (anything outside lab, labcore,
# provision and tasks is a library and free). A module belongs to the longest package named here;
# its own package is always allowed. docs/architecture.md's table says the same, checked below.
RULES: dict[str, tuple[str, ...]] = {
    "labcore": (),
    "provision": ("labcore",),
    "lab.providers": ("labcore", "provision"),
    "lab.clients": ("labcore",),
    "lab.i18n": ("labcore",),
    "lab.exercises.kit": ("labcore", "provision.context", "provision.platforms", "provision.wheelhouse"),
    "lab.exercises.observe": ("labcore", "lab.i18n", "lab.exercises.kit"),
    "lab.exercises.api": ("labcore", "lab.i18n", "lab.exercises.kit", "lab.exercises.observe"),
    "lab.exercises.drills": ("labcore", "lab.i18n", "lab.clients", "lab.exercises.kit", "lab.exercises.api"),
    "lab.exercises.run": ("labcore", "provision.context", "lab.i18n", "lab.exercises.kit",
                          "lab.exercises.observe", "lab.exercises.api", "lab.exercises.drills"),
    "lab.exercises": ("labcore", "lab.i18n", "lab.exercises.api", "lab.exercises.drills", "lab.exercises.run"),
    "lab.exam": ("labcore", "lab.i18n", "lab.exercises"),
    "lab.report": ("labcore", "lab.i18n", "lab.exercises", "lab.exam"),
    "lab.workshop": ("labcore", "lab.providers", "lab.exam"),
    "lab.dashboard": ("labcore", "lab.i18n", "lab.exercises"),
    "lab": ("labcore", "provision", "lab.providers", "lab.exercises.kit"),
    "lab.cli": ("labcore", "provision", "lab"),
    "tasks": ("lab.cli",),
}
PROJECT = ("lab", "labcore", "provision", "tasks")


def package_of(module: str, rules: dict[str, tuple[str, ...]] = RULES) -> str | None:
    matches = [p for p in rules if under(module, p)]
    return max(matches, key=len) if matches else None


def layer_violations(root: Path, rules: dict[str, tuple[str, ...]] = RULES) -> list[str]:
    """Every import of the project's own code that the importing module's package rule does not allow."""
    out = []
    for path in sources(root, "lab", "labcore", "provision", "tasks.py"):
        own = package_of(module_of(root, path), rules)
        if own is None:
            out.append(f"{path.relative_to(root)}: no rule names its package")
            continue
        for name in sorted(import_targets(root, path)):
            if not any(under(name, p) for p in PROJECT):
                continue
            # its own package, not the packages below it (each has a rule), or what the rule names, with all below
            if package_of(name, rules) != own and not any(under(name, a) for a in rules[own]):
                out.append(f"{path.relative_to(root)} imports {name} ({own} may import {', '.join(rules[own]) or 'nothing else'})")
    return out


# A drill is a scenario: shared things live in steps or the kit; the negative controls and the exam
# act on a drill from outside, and a drill that knew of them could behave differently under test.
def drills_importing_drills(root: Path) -> list[str]:
    """A drill module imports no other drill module (its package rule allows the package itself)."""
    out = []
    for path in sources(root, "lab/exercises/drills"):
        if path.name == "__init__.py":
            continue
        bad = sorted(n for n in imports(root, path) if under(n, "lab.exercises.drills"))
        out += [f"{path.relative_to(root)} imports {n}" for n in bad]
    return out


def poll_loops_outside_the_helper(root: Path) -> list[str]:
    """A ``while`` loop that sleeps is a poll: it belongs in labcore.poll, bounded and scalable."""
    out = []
    for path in sources(root, *SCANNED):
        if path.relative_to(root) == POLL_HELPER:
            continue
        for loop in (n for n in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(n, ast.While)):
            for call in (n for n in ast.walk(loop) if isinstance(n, ast.Call)):
                f = call.func
                if (isinstance(f, ast.Attribute) and f.attr == "sleep") or (isinstance(f, ast.Name) and f.id == "sleep"):
                    out.append(f"{path.relative_to(root)}:{loop.lineno}: while loop sleeps")
                    break
    return out


PAGE = ROOT / "docs/architecture.md"
_ROW = re.compile(r"^\|\s*`([a-z0-9_.]+)`[^|]*\|[^|]*\|([^|]*)\|\s*$", re.M)


def page_rules(text: str) -> dict[str, tuple[str, ...]]:
    """The table of docs/architecture.md: package (first cell, backticked) -> the backticked packages
    of its "may import" cell (the last one)."""
    return {m.group(1): tuple(re.findall(r"`([a-z0-9_.]+)`", m.group(2))) for m in _ROW.finditer(text)}


def page_disagreements(text: str, rules: dict[str, tuple[str, ...]] = RULES) -> list[str]:
    page = page_rules(text)
    out = [f"the page has no row for {p}" for p in rules if p not in page]
    out += [f"the page has a row for {p}, which no rule names" for p in page if p not in rules]
    for p in rules:
        if p in page and set(page[p]) != set(rules[p]):
            out.append(f"{p}: the page allows {sorted(page[p])}, the rule {sorted(rules[p])}")
    return out


CHECKS = [layer_violations, drills_importing_drills, poll_loops_outside_the_helper]


@pytest.mark.parametrize("rule", CHECKS, ids=lambda r: r.__name__)
def test_the_project_keeps_its_layers(rule):
    assert rule(ROOT) == []


def test_the_architecture_page_says_what_the_rules_enforce():
    assert page_disagreements(PAGE.read_text(encoding="utf-8")) == []


# --- each rule can fail ----------------------------------------------------------------------

def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_a_drill_importing_another_drill_is_caught(tmp_path):
    write(tmp_path, "lab/exercises/drills/primary.py", "def new_leader(): pass\n")
    write(tmp_path, "lab/exercises/drills/sync.py", "from lab.exercises.api import steps\n")
    assert drills_importing_drills(tmp_path) == []
    write(tmp_path, "lab/exercises/drills/sync.py", "from .primary import new_leader\n")
    assert drills_importing_drills(tmp_path) == ["lab/exercises/drills/sync.py imports lab.exercises.drills.primary",
                                                 "lab/exercises/drills/sync.py imports lab.exercises.drills.primary.new_leader"]


# Packages a violating module imports, tried in this order: the first one a rule does not allow.
CANDIDATES = ("lab.cli", "lab.exam", "lab.exercises.run", "lab.exercises.drills", "lab.report", "lab.workshop",
              "lab.exercises.api", "lab.providers", "provision", "lab.i18n", "labcore")


def forbidden_for(package: str) -> str | None:
    return next((c for c in CANDIDATES if c != package and not any(under(c, a) for a in RULES[package])), None)


def module_in(package: str) -> str:
    return "tasks.py" if package == "tasks" else package.replace(".", "/") + "/probe_module.py"


@pytest.mark.parametrize("package", [p for p in RULES if forbidden_for(p)])
def test_each_package_rule_catches_a_module_importing_what_it_may_not(tmp_path, package):
    allowed = RULES[package][0] if RULES[package] else package
    write(tmp_path, module_in(package), f"import {allowed}\n")
    assert layer_violations(tmp_path) == []
    bad = forbidden_for(package)
    write(tmp_path, module_in(package), f"import {allowed}\nimport {bad}\n")
    assert [v.split(" (")[0] for v in layer_violations(tmp_path)] == [f"{module_in(package)} imports {bad}"]


def test_only_the_cli_may_import_everything():
    assert [p for p in RULES if forbidden_for(p) is None] == ["lab.cli"]


def test_a_module_in_no_named_package_is_caught(tmp_path):
    write(tmp_path, "scratch/x.py", "")
    write(tmp_path, "labcore/x.py", "")
    assert layer_violations(tmp_path) == []           # scratch/ is not scanned: only the project's packages
    rules = {k: v for k, v in RULES.items() if k != "labcore"}
    assert layer_violations(tmp_path, rules) == ["labcore/x.py: no rule names its package"]


def test_from_a_package_import_a_name_is_judged_by_the_module_that_defines_it(tmp_path):
    write(tmp_path, "lab/exercises/__init__.py", "DRILLS = {}\n")
    write(tmp_path, "lab/exercises/run/__init__.py", "")
    write(tmp_path, "lab/exam/pool.py", "from lab.exercises import DRILLS\n")
    assert layer_violations(tmp_path) == []
    write(tmp_path, "lab/exercises/drills/etcd.py", "from lab.exercises import run\n")
    assert [v.split(" (")[0] for v in layer_violations(tmp_path)] == [
        "lab/exercises/drills/etcd.py imports lab.exercises.run"]


def test_a_page_that_disagrees_with_the_rules_is_caught():
    text = PAGE.read_text(encoding="utf-8")
    assert page_rules(text).keys() == RULES.keys()
    row = next(line for line in text.splitlines() if line.startswith("| `lab.exercises.drills`"))
    widened = text.replace(row, row.rstrip(" |") + ", `lab.exercises.run` |")
    assert page_disagreements(widened) == [
        "lab.exercises.drills: the page allows " + str(sorted((*RULES["lab.exercises.drills"], "lab.exercises.run")))
        + ", the rule " + str(sorted(RULES["lab.exercises.drills"]))]
    assert page_disagreements(text.replace(row + "\n", "")) == ["the page has no row for lab.exercises.drills"]


def test_a_poll_loop_outside_the_helper_is_caught(tmp_path):
    write(tmp_path, "labcore/poll.py", "import time\nwhile True:\n    time.sleep(1)\n")
    write(tmp_path, "lab/monitor.py", "def run(stop):\n    while not stop.is_set():\n        stop.wait(1)\n")
    assert poll_loops_outside_the_helper(tmp_path) == []
    write(tmp_path, "provision/waits.py", "import time\n\ndef until(p):\n    while not p():\n        time.sleep(1)\n")
    write(tmp_path, "tests/live/test_x.py", "from time import sleep\nwhile True:\n    if sleep(1): break\n")
    assert poll_loops_outside_the_helper(tmp_path) == ["provision/waits.py:4: while loop sleeps",
                                                       "tests/live/test_x.py:2: while loop sleeps"]
