"""The conventions every command shares: exit codes and the Ctrl-C message, through Invoke's Program."""
from __future__ import annotations

import pytest
from invoke import Collection, Program, task

from lab import lifecycle
from labcore import exitcodes, topology
from labcore import state as lab_state
from lab.cli import conventions, machines
from lab.providers.base import ProviderError


@pytest.fixture(autouse=True)
def lab_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DIR", str(tmp_path / "lab"))
    for k in list(__import__("os").environ):
        if k.startswith("INVOKE_LAB_"):
            monkeypatch.delenv(k)
    return tmp_path / "lab"


def run_program(body, name: str, argv: list[str], capsys) -> tuple[int, str]:
    """Run ``body`` as the task ``name`` through Invoke's own Program, as `invoke` does."""
    body.__name__ = name
    ns = Collection(conventions.wrap(task(body)))
    with pytest.raises(SystemExit) as e:
        Program(namespace=ns).run(["invoke", *argv])
    return e.value.code, capsys.readouterr().err.strip()


def test_ctrl_c_during_provisioning_names_the_command_and_the_next_one(capsys, lab_dir):
    lab_state.save(lab_state.State(phase="created", provider="docker"))

    def up(c):
        raise KeyboardInterrupt
    code, err = run_program(up, "up", ["up"], capsys)
    assert code == exitcodes.INTERRUPTED == 130
    assert err == ("interrupted during `invoke up`: the machines are kept, not provisioned (phase created); "
                   "run `invoke up` to finish (it reuses them and provisions again), or `invoke down` to remove them")


def test_ctrl_c_before_anything_exists(capsys):
    def provision(c):
        raise KeyboardInterrupt
    code, err = run_program(provision, "provision", ["provision"], capsys)
    assert code == 130 and err == "interrupted during `invoke provision`: nothing was left behind; run `invoke up` to start again"


def test_ctrl_c_during_a_drill_names_the_drill(capsys):
    def exercise(c, drill=""):
        raise KeyboardInterrupt
    code, err = run_program(exercise, "exercise", ["exercise", "--drill", "etcd-down"], capsys)
    assert code == 130 and err.startswith("interrupted during `invoke exercise etcd-down`: the drill ran its restore")


def test_a_refusal_not_caught_by_the_command_exits_2(capsys):
    def status(c):
        raise lab_state.LabStateError("cannot do it: the lab is not up")
    assert run_program(status, "status", ["status"], capsys) == (2, "error: cannot do it: the lab is not up")


def test_other_errors_keep_their_code(capsys):
    def status(c):
        raise machines.fail(lifecycle.LabError("provisioning failed: boom"))
    assert run_program(status, "status", ["status"], capsys) == (1, "error: provisioning failed: boom")


def test_refusals_and_failures_are_told_apart():
    assert exitcodes.code_for(topology.TopologyError("x")) == 2
    assert exitcodes.code_for(lab_state.LabStateError("x")) == 2
    assert exitcodes.code_for(lifecycle.Refused("x")) == 2
    assert exitcodes.code_for(lifecycle.LabError("x")) == 1      # after something was created
    assert exitcodes.code_for(ProviderError("x")) == 1           # a provider command that failed
    assert exitcodes.code_for(KeyboardInterrupt()) == 130


def test_a_missing_prerequisite_is_a_refusal_before_creating(monkeypatch, tmp_path, lab_dir):
    f = tmp_path / "t.yml"
    f.write_text(topology.DEFAULT_PATH.read_text().replace("192.168.234.", "198.51.100."))
    topo = topology.load(f)

    class Missing:
        name = "docker"

        def preflight(self, topo):
            raise ProviderError("docker is not installed (apt-get install docker.io)")
    monkeypatch.setattr(lifecycle.providers, "get", lambda name, settings: Missing())
    with pytest.raises(lifecycle.Refused, match="apt-get install docker.io"):
        lifecycle.create(topo, "docker", {}, print)
    assert not lab_dir.exists()


def test_an_interrupted_partial_provision_no_longer_calls_the_lab_provisioned(monkeypatch, lab_dir):
    import provision
    from invoke import Context
    from lab.cli import provisioning

    lab_state.save(lab_state.State(phase="provisioned", provider="docker"))
    monkeypatch.delenv("LAB_TOPOLOGY", raising=False)

    def interrupted(*a, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(provision, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        provisioning.provision(Context(), step=["haproxy"])
    assert lab_state.load().phase == "created"
    assert conventions.interrupted("provision", {}).startswith(
        "interrupted during `invoke provision`: the machines are kept, not provisioned (phase created)")


def test_an_interrupted_exam_command_says_the_exam_stays_open_and_how_to_end_it():
    for command in ("exam.start", "exam.done", "exam.give-up"):
        line = conventions.interrupted(command, {})
        assert line.startswith(f"interrupted during `invoke {command}` of an exam: an exam already started stays open")
        assert "invoke exam.give-up" in line and "\n" not in line
    for old in ("--exam", "--done", "--give-up"):          # the old spelling, through `invoke exercise`
        line = conventions.interrupted("exercise", {"drill": old})
        assert line.startswith(f"interrupted during `invoke exercise {old}` of an exam: an exam already started stays open")
        assert "invoke exam.give-up" in line and "\n" not in line
