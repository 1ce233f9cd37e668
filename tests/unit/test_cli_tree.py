"""The command tree: top-level lab commands, the `exercise`, `exam` and `workshop` collections of
small tasks, each documented with help for every option, parsed by Invoke as it is (public API only),
and the spellings users type (`invoke exercise <drill>`, `invoke exercise --list`) still parsed."""
from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Program
from invoke.parser import Argument, Parser

import tasks
from lab.cli import dashboard, exam, exercises, health, machines, provisioning, report, security, snapshot, workshop

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")

TREE = {
    "exercise": {"run", "list", "runs"},
    "exam": {"start", "answer", "hint", "done", "give-up"},
    "workshop": {"up", "plan", "status", "down", "ssh", "reset", "snapshot", "action"},
    "snapshot": {"save", "restore", "list", "delete"},
}
TOP = {"up", "status", "ssh", "down", "rebuild", "provision", "heal", "report", "docs-tables", "audit", "secrets",
       "dashboard"}


def parse(*argv: str):
    """What Invoke's own parser makes of ``invoke <argv>`` with the project's namespace."""
    return Parser(contexts=tasks.ns.to_contexts(ignore_unknown_help=True)).parse_argv(list(argv))


def test_the_tree_is_the_lab_commands_and_collections_of_small_tasks():
    assert set(tasks.ns.tasks) == TOP
    assert {name: set(c.tasks) for name, c in tasks.ns.collections.items()} == TREE
    assert tasks.ns.collections["exercise"].default == "run"
    assert tasks.ns.collections["workshop"].default == "action"
    assert tasks.ns.collections["exam"].default is None        # an exam is never started by a stray word
    assert tasks.ns.collections["snapshot"].default is None    # nor a restore
    names = set(tasks.ns.task_names)
    assert {f"{c}.{t}" for c, ts in TREE.items() for t in ts} <= names
    # a small task has few options: the many-mode tasks are gone
    for module in (exercises, exam, workshop):
        for t in module.TASKS:
            assert len(inspect.signature(t.body).parameters) <= 10, t.name


@pytest.mark.parametrize("module", [machines, provisioning, exercises, exam, health, report, security, workshop,
                                    snapshot, dashboard])
def test_every_task_has_a_docstring_and_help_for_every_option(module):
    # Invoke pops a task's help entries when it builds its parser: read freshly made tasks
    fresh = importlib.reload(module)
    for t in fresh.TASKS:
        assert (t.__doc__ or "").strip(), f"{module.__name__}.{t.name} has no docstring"
        for p in list(inspect.signature(t.body).parameters)[1:]:
            assert p in t.help or p.strip("_").replace("_", "-") in t.help, f"{module.__name__}.{t.name}: --{p} has no help"
    reload_tasks()                   # the namespace of the reloaded modules, for the tests that follow


def reload_tasks() -> None:
    """tasks.py again, as this module imported it (an in-process `invoke` run loads its own copy
    of tasks.py and takes the module's name out of sys.modules)."""
    sys.modules["tasks"] = tasks
    importlib.reload(tasks)


def test_every_task_of_the_namespace_answers_help(capsys):
    reload_tasks()
    for name in tasks.ns.task_names:
        with pytest.raises(SystemExit) as e:
            Program(namespace=tasks.ns, name="invoke", binary="invoke").run(["invoke", "--help", name])
        out = capsys.readouterr().out
        assert e.value.code in (0, None) and "Usage: invoke" in out and f"{name}" in out, name
        assert "Docstring:\n  none" not in out, name


def test_invoke_exercise_drill_runs_the_collections_default_task():
    ctx, = parse("exercise", "primary-patroni-kill", "--auto")
    assert ctx.name == "exercise.run" and "exercise" in ctx.aliases
    assert ctx.args["drill"].value == "primary-patroni-kill" and ctx.args["auto"].value is True
    ctx, = parse("exercise.run", "etcd-down", "--scale", "2", "--lang", "zh")
    assert (ctx.args["drill"].value, ctx.args["scale"].value, ctx.args["lang"].value) == ("etcd-down", "2", "zh")


@pytest.mark.parametrize("old", ["--list", "--runs", "--exam", "--hint", "--done", "--give-up"])
def test_the_old_spellings_arrive_at_the_drill_task_as_its_drill(old):
    """`invoke exercise --list` and the like: Invoke gives a flag it does not know to the positional
    argument it still waits for; the task hands it on to the task that option became."""
    ctx, = parse("exercise", old)
    assert ctx.name == "exercise.run" and ctx.args["drill"].value == old
    assert old in exercises.OLD_SPELLINGS


def test_the_small_tasks_parse_their_own_arguments():
    ctx, = parse("exam.answer", "replica-patroni-stop")
    assert ctx.args["drill"].value == "replica-patroni-stop"
    ctx, = parse("exam.start", "--from", "a,b", "--seed", "7")
    assert (ctx.args["from_"].value, ctx.args["seed"].value) == ("a,b", "7")
    ctx, = parse("workshop.ssh", "2", "node1", "--command", "id")
    assert (ctx.args["seat"].value, ctx.args["node"].value, ctx.args["command"].value) == ("2", "node1", "id")
    ctx, = parse("workshop", "status", "--dir", "/tmp/room")
    assert ctx.name == "workshop.action" and ctx.args["action"].value == "status"
    ctx, = parse("up", "--provider", "docker")          # the machine commands stay at the top
    assert ctx.name == "up"


def test_only_invokes_public_api_is_used():
    """Every argument is Invoke's own Argument (no class swapped in), and no CLI module reaches into
    Invoke's private attributes."""
    for ctx in tasks.ns.to_contexts(ignore_unknown_help=True):
        assert all(type(a) is Argument for a in ctx.args.values()), ctx.name
    for path in (ROOT / "lab" / "cli").glob("*.py"):
        text = path.read_text()
        assert "__class__" not in text and "._value" not in text, path.name
    assert not (ROOT / "lab" / "cli" / "positional.py").exists()


def test_a_collections_settings_come_from_the_environment(tmp_path):
    """INVOKE_WORKSHOP_DIR reaches `workshop.status` as invoke.yaml's workshop.dir would (Invoke reads
    an INVOKE_* variable only for a key the configuration files have)."""
    env = {"PATH": "/usr/bin:/bin", "LAB_DIR": str(tmp_path / "lab"),
           "INVOKE_WORKSHOP_DIR": str(tmp_path / "room-from-env")}
    r = subprocess.run([INVOKE, "workshop.status"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and f"no seats in {tmp_path / 'room-from-env'}" in " ".join(r.stdout.split()), r.stderr
