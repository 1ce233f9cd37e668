"""`invoke exercise <drill>` (exercise.run), exercise.list, exercise.runs: listing, bad names, refusing to run
on a lab that is not provisioned; the collection's tasks, each with its help; no private Invoke API."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Context, Exit

from lab.cli import exercises
from lab.cli.exercises import run as exercise
from lab.exercises import DRILLS

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")


@pytest.fixture(autouse=True)
def empty_lab_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))


def test_list_prints_one_line_per_drill(capsys):
    exercises.list_(Context())
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(DRILLS)
    assert all(line.split()[0] in DRILLS for line in lines)


def test_unknown_drill_is_one_line_and_touches_nothing(tmp_path):
    with pytest.raises(Exit) as e:
        exercise(Context(), drill="etcd-dwon", auto=True)
    assert e.value.code == 2 and "\n" not in e.value.message and "etcd-down" in e.value.message
    assert not (tmp_path / "drills").exists()


def test_refuses_unless_the_lab_is_provisioned():
    with pytest.raises(Exit) as e:
        exercise(Context(), drill="etcd-down", auto=True)
    assert "invoke up" in e.value.message


def test_all_needs_auto():
    with pytest.raises(Exit) as e:
        exercise(Context(), drill="all")
    assert "--auto" in e.value.message


def test_bad_multiplier_is_one_line():
    with pytest.raises(Exit) as e:
        exercise(Context(), drill="etcd-down", auto=True, scale="slow")
    assert "slow" in e.value.message and "\n" not in e.value.message


def test_invoke_exercise_dash_dash_list_from_the_shell(tmp_path):
    out = subprocess.run([INVOKE, "exercise", "--list"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "LAB_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "etcd-failsafe" in out.stdout and len(out.stdout.strip().splitlines()) == len(DRILLS)
    bad = subprocess.run([INVOKE, "exercise", "nope", "--auto"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin", "LAB_DIR": str(tmp_path)})
    assert bad.returncode == 2 and bad.stderr.strip() == "exercise: unknown drill 'nope' (`invoke exercise --list` lists them)"


def run_program(argv: list[str], capsys) -> tuple[int, str, str]:
    """The project's real Invoke program (tasks.py's collection), run in this process."""
    from invoke import Program
    import tasks
    code = 0
    try:
        Program(namespace=tasks.ns, name="invoke", binary="invoke").run(["invoke", *argv])
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("argv", [["exercise", "--list"], ["exercise", "--scale", "2", "--list"]])
def test_an_invoke_program_lists_the_drills_without_a_drill_name(argv, capsys):
    code, out, err = run_program(argv, capsys)
    assert code == 0, err
    assert len(out.strip().splitlines()) == len(DRILLS) and "etcd-failsafe" in out


def test_an_invoke_program_asks_for_a_drill_when_none_is_named(capsys):
    code, out, err = run_program(["exercise"], capsys)
    assert code != 0 and "drill" in err and not out


def test_an_invoke_program_takes_the_drill_name_as_typed(capsys):
    code, _, err = run_program(["exercise", "etcd-dwon", "--auto"], capsys)
    assert code == 2 and err.strip() == "exercise: unknown drill 'etcd-dwon' (did you mean etcd-down?)"
    code, _, err = run_program(["exercise", "all"], capsys)
    assert code == 2 and "--auto" in err


def test_invoke_is_not_patched():
    from invoke.parser.parser import ParseMachine
    import tasks  # noqa: F401  (loading the tasks must leave Invoke as it is)
    assert ParseMachine.complete_context.__module__.startswith("invoke.")


def test_runs_lists_every_run_with_its_tally(tmp_path, capsys):
    from lab.exercises.observe.evidence import RunRecorder
    code, out, err = run_program(["exercise", "--runs"], capsys)
    assert code == 0 and "no runs yet" in out, err
    done = RunRecorder("all", command="invoke exercise all --auto", lab="t", drills=["a", "b", "c"])
    for drill, verdict in (("a", "pass"), ("b", "differs"), ("c", "error")):
        done.record_verdict(drill, verdict)
    done.finish()
    cut = RunRecorder("etcd-down", command="invoke exercise etcd-down --auto", lab="t", drills=["etcd-down"])
    code, out, _ = run_program(["exercise", "--runs"], capsys)
    lines = out.strip().splitlines()
    assert lines[0].split()[:6] == ["run", "pass", "fail", "differs", "not-applicable", "error"]
    row = {line.split()[0]: line.split() for line in lines[1:]}
    assert row[done.name][1:6] == ["1", "0", "1", "0", "1"] and "(unfinished)" not in lines[1]
    assert row[cut.name][1:6] == ["0"] * 5 and lines[-1].endswith("(unfinished)")


def test_several_drills_by_comma_need_auto_and_known_names():
    with pytest.raises(Exit) as e:
        exercise(Context(), drill="etcd-down,replica-pg-stop")
    assert e.value.code == 2 and "several drills" in e.value.message and "--auto" in e.value.message
    with pytest.raises(Exit) as e:
        exercise(Context(), drill="etcd-down,replica-pg-stpo", auto=True)
    assert e.value.code == 2 and "replica-pg-stpo" in e.value.message and "replica-pg-stop" in e.value.message
    with pytest.raises(Exit) as e:
        exercise(Context(), drill="etcd-down,etcd-down", auto=True)
    assert e.value.code == 2 and "twice" in e.value.message
    with pytest.raises(Exit) as e:
        exercise(Context(), drill="etcd-down,all", auto=True)
    assert e.value.code == 2 and "'all'" in e.value.message
    with pytest.raises(Exit) as e:           # valid names: it gets as far as the lab's state
        exercise(Context(), drill="etcd-down,replica-pg-stop", auto=True)
    assert "invoke up" in e.value.message
