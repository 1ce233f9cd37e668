"""The layers of docs/architecture.md, checked on the source: each rule is a function of a source
tree, run on the project and, to show it can fail, on a small tree with one violation."""
from __future__ import annotations

import ast
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


def imports(root: Path, path: Path) -> set[str]:
    """Every module ``path`` imports (``from a.b import c`` counts as a.b and a.b.c), relative ones resolved."""
    package = module_of(root, path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# --- the rules ------------------------------------------------------------------------------

# A drill is a scenario: shared things live in steps or the kit; the negative controls and the exam
# act on a drill from outside, and a drill that knew of them could behave differently under test.
DRILLS_NEVER_IMPORT = ("lab.exercises.drills", "lab.exercises.run.controls", "lab.exam")


def drills_importing_drills(root: Path) -> list[str]:
    """A drill module is a scenario: shared things live in steps or the kit."""
    out = []
    for path in sources(root, "lab/exercises/drills"):
        if path.name == "__init__.py":
            continue
        bad = sorted(n for n in imports(root, path) if any(under(n, p) for p in DRILLS_NEVER_IMPORT))
        out += [f"{path.relative_to(root)} imports {n}" for n in bad]
    return out


def kit_importing_upwards(root: Path) -> list[str]:
    """The kit stands below steps, drills and the runner: it imports none of lab.exercises but itself."""
    out = []
    for path in sources(root, "lab/exercises/kit"):
        bad = sorted(n for n in imports(root, path)
                     if under(n, "lab.exercises") and not under(n, "lab.exercises.kit"))
        out += [f"{path.relative_to(root)} imports {n}" for n in bad]
    return out


def packages_importing_each_other(root: Path, a: str = "lab", b: str = "provision") -> list[str]:
    """``a`` may use ``b`` or ``b`` may use ``a``, not both (the shared ground is labcore)."""
    a_to_b = [f"{p.relative_to(root)} imports {n}" for p in sources(root, a) for n in sorted(imports(root, p))
              if under(n, b)]
    b_to_a = [f"{p.relative_to(root)} imports {n}" for p in sources(root, b) for n in sorted(imports(root, p))
              if under(n, a)]
    return (a_to_b[:3] + b_to_a[:3]) if a_to_b and b_to_a else []


def foundation_importing_above(root: Path) -> list[str]:
    """labcore is the ground both stand on: it imports neither lab nor provision."""
    return [f"{p.relative_to(root)} imports {n}" for p in sources(root, "labcore") for n in sorted(imports(root, p))
            if under(n, "lab") or under(n, "provision")]


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


RULES = [drills_importing_drills, kit_importing_upwards, packages_importing_each_other,
         foundation_importing_above, poll_loops_outside_the_helper]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_the_project_keeps_its_layers(rule):
    assert rule(ROOT) == []


# --- each rule can fail ----------------------------------------------------------------------

def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_a_drill_importing_another_drill_is_caught(tmp_path):
    write(tmp_path, "lab/exercises/drills/primary.py", "def new_leader(): pass\n")
    write(tmp_path, "lab/exercises/drills/sync.py", "from lab.exercises import steps\n")
    assert drills_importing_drills(tmp_path) == []
    write(tmp_path, "lab/exercises/drills/sync.py", "from .primary import new_leader\n")
    assert drills_importing_drills(tmp_path) == ["lab/exercises/drills/sync.py imports lab.exercises.drills.primary",
                                                 "lab/exercises/drills/sync.py imports lab.exercises.drills.primary.new_leader"]


def test_a_drill_knowing_of_the_controls_or_the_exam_is_caught(tmp_path):
    write(tmp_path, "lab/exercises/drills/etcd.py", "from lab.exercises.run import controls\n")
    write(tmp_path, "lab/exercises/drills/watchdog.py", "import lab.exam.pool\n")
    assert drills_importing_drills(tmp_path) == ["lab/exercises/drills/etcd.py imports lab.exercises.run.controls",
                                                 "lab/exercises/drills/watchdog.py imports lab.exam.pool"]


def test_the_kit_importing_the_runner_or_a_drill_is_caught(tmp_path):
    write(tmp_path, "lab/exercises/kit/probe.py", "from lab.exercises.kit import sql\nfrom lab import remote\n")
    assert kit_importing_upwards(tmp_path) == []
    write(tmp_path, "lab/exercises/kit/probe.py", "import lab.exercises.run.runner\n")
    write(tmp_path, "lab/exercises/kit/sql.py", "from lab.exercises.drills import replica\n")
    found = kit_importing_upwards(tmp_path)
    assert "lab/exercises/kit/probe.py imports lab.exercises.run.runner" in found
    assert "lab/exercises/kit/sql.py imports lab.exercises.drills.replica" in found


def test_lab_and_provision_importing_each_other_is_caught(tmp_path):
    write(tmp_path, "lab/lifecycle.py", "import provision\n")
    write(tmp_path, "provision/steps/etcd.py", "from labcore.topology import Node\n")
    assert packages_importing_each_other(tmp_path) == []
    write(tmp_path, "provision/waits.py", "def f():\n    from lab import remote\n")
    assert packages_importing_each_other(tmp_path) == ["lab/lifecycle.py imports provision",
                                                       "provision/waits.py imports lab",
                                                       "provision/waits.py imports lab.remote"]


def test_the_foundation_importing_lab_or_provision_is_caught(tmp_path):
    write(tmp_path, "labcore/remote.py", "from labcore import guard\n")
    assert foundation_importing_above(tmp_path) == []
    write(tmp_path, "labcore/state.py", "from provision.context import PATRONI_CONF_DIR\n")
    assert foundation_importing_above(tmp_path) == ["labcore/state.py imports provision.context",
                                                    "labcore/state.py imports provision.context.PATRONI_CONF_DIR"]


def test_a_poll_loop_outside_the_helper_is_caught(tmp_path):
    write(tmp_path, "labcore/poll.py", "import time\nwhile True:\n    time.sleep(1)\n")
    write(tmp_path, "lab/monitor.py", "def run(stop):\n    while not stop.is_set():\n        stop.wait(1)\n")
    assert poll_loops_outside_the_helper(tmp_path) == []
    write(tmp_path, "provision/waits.py", "import time\n\ndef until(p):\n    while not p():\n        time.sleep(1)\n")
    write(tmp_path, "tests/live/test_x.py", "from time import sleep\nwhile True:\n    if sleep(1): break\n")
    assert poll_loops_outside_the_helper(tmp_path) == ["provision/waits.py:4: while loop sleeps",
                                                       "tests/live/test_x.py:2: while loop sleeps"]
