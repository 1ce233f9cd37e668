"""`invoke workshop ...` without machines: each seat's lab command runs in the seat's own
environment, at most N at once; refusals touch nothing; down removes the room's seats only."""
from __future__ import annotations

import inspect
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from invoke import Config, Context, Exit

from lab.cli import workshop as cli
from lab.providers import vagrant
from labcore import guard, topology
from lab.workshop import room as R

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")


class FakeSeatProcess:
    """Stands in for `invoke up|down` in a seat: records its arguments and environment."""
    calls: list[dict] = []
    active = 0
    most = 0
    lock = threading.Lock()
    fail_dirs: set[str] = set()

    def __init__(self, args, cwd=None, env=None, text=None, stdout=None, stderr=None):
        self.args, self.env = args, env
        with FakeSeatProcess.lock:
            FakeSeatProcess.calls.append({"args": args, "env": env})
            FakeSeatProcess.active += 1
            FakeSeatProcess.most = max(FakeSeatProcess.most, FakeSeatProcess.active)
        self.stdout = self._lines()

    def _lines(self):
        time.sleep(0.05)                     # long enough for the pool to overlap seats
        yield f"{self.args[1]} in {self.env['LAB_DIR']}\n"
        with FakeSeatProcess.lock:
            FakeSeatProcess.active -= 1

    def wait(self):
        return 1 if self.env["LAB_DIR"] in FakeSeatProcess.fail_dirs else 0

    def kill(self):
        pass


@pytest.fixture
def fake(monkeypatch, tmp_path):
    FakeSeatProcess.calls, FakeSeatProcess.active, FakeSeatProcess.most = [], 0, 0
    FakeSeatProcess.fail_dirs = set()
    monkeypatch.setattr(R.subprocess, "Popen", FakeSeatProcess)
    monkeypatch.setattr(guard, "routes_overlapping", lambda subnet: [])
    built = []
    monkeypatch.setattr(vagrant.VagrantProvider, "node_image_ref",
                        lambda self, topo, report: built.append(topo.postgres_release.suite))
    monkeypatch.setenv("LAB_DIR", str(tmp_path / "lab"))
    monkeypatch.setenv("VAGRANT_HOME", str(tmp_path / "vagrant-home"))
    monkeypatch.delenv("LAB_TOPOLOGY", raising=False)
    for k in list(os.environ):
        if k.startswith("INVOKE_WORKSHOP_") or k == "INVOKE_LAB_PROVIDER":
            monkeypatch.delenv(k)
    return built


def ctx() -> Context:
    return Context(Config(overrides={"lab": {"provider": "docker"}, "workshop": {}}))


def up(tmp_path, seats=2, **kw):
    cli.up(ctx(), seats=seats, base_subnet="192.168.250.0/24", bridge_prefix="plab5",
                 dir=str(tmp_path / "room"), **kw)


def test_every_task_is_documented_and_every_option_has_help():
    import importlib
    # Invoke pops a task's help entries when it builds its parser: read freshly made tasks
    made = importlib.reload(cli).TASKS
    assert {t.name for t in made} == {"up", "plan", "status", "down", "ssh", "reset", "snapshot", "action"}
    for t in made:
        assert t.__doc__.strip(), t.name
        for p in inspect.signature(t.body).parameters:
            assert p == "c" or p in t.help, (t.name, p)


def test_up_runs_invoke_up_in_each_seat_with_its_own_environment(fake, tmp_path, capsys):
    up(tmp_path, seats=2, parallel=2)
    calls = sorted(FakeSeatProcess.calls, key=lambda c: c["env"]["LAB_DIR"])
    assert [c["args"][1:] for c in calls] == [["up", "--provider", "docker"]] * 2
    for k, c in enumerate(calls, 1):
        seat = tmp_path / "room" / f"seat{k}"
        assert c["env"]["LAB_DIR"] == str(seat)
        assert c["env"]["LAB_TOPOLOGY"] == str(seat / "topology.yml")
        assert c["env"]["INVOKE_LAB_APT_CACHE"] == str(seat / "cache" / "apt")
        t = topology.load(seat / "topology.yml")
        assert str(t.subnet) == f"192.168.25{k}.0/24" and t.bridge == f"plab5{k}"
        # the seat's own Vagrant home, whose boxes are the shared ones
        assert (seat / "vagrant.d" / "boxes").resolve() == (tmp_path / "vagrant-home" / "boxes").resolve()
    assert fake == ["bookworm"], "the node image (of the seats' Debian release) is prepared once for the room, not per seat"
    out = capsys.readouterr().out
    assert "invoke workshop.ssh 2 node1" in out and f"LAB_DIR={tmp_path / 'room' / 'seat1'}" in out
    record = json.loads((tmp_path / "room" / "workshop.json").read_text())
    assert record["seats"] == 2 and record["provider"] == "docker"


def test_parallel_bounds_the_seats_brought_up_at_once(fake, tmp_path):
    up(tmp_path, seats=3, parallel=1)
    assert FakeSeatProcess.most == 1
    FakeSeatProcess.calls, FakeSeatProcess.most = [], 0
    up(tmp_path, seats=3, parallel=2)
    assert FakeSeatProcess.most == 2


def test_a_seat_that_fails_makes_the_command_fail_naming_it(fake, tmp_path):
    FakeSeatProcess.fail_dirs = {str(tmp_path / "room" / "seat2")}
    with pytest.raises(Exit) as e:
        up(tmp_path, seats=2)
    assert "seat(s) 2 (see" in e.value.message and "seat2/up.log" in e.value.message
    assert e.value.code == 1


@pytest.mark.parametrize("kw, words", [
    ({"seats": 0}, "--seats N"),
    ({"seats": 40}, "from 1 to 32"),
    ({"seats": 2, "provider": "hosts"}, "own topology and inventory"),
    ({"seats": 2, "base_subnet": "192.168.233.0/24"}, "overlaps the base lab"),
    ({"seats": 2, "parallel": -1}, "--parallel"),
])
def test_bad_input_is_one_line_exits_2_and_creates_nothing(fake, tmp_path, kw, words):
    args = {"base_subnet": "192.168.250.0/24", "bridge_prefix": "plab5", "dir": str(tmp_path / "room")} | kw
    with pytest.raises(Exit) as e:
        cli.up(ctx(), **args)
    assert words in e.value.message and "\n" not in e.value.message and e.value.code == 2
    assert not (tmp_path / "room").exists() and FakeSeatProcess.calls == []


def test_a_seat_subnet_routed_elsewhere_is_refused_before_anything(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(guard, "routes_overlapping",
                        lambda net: [("192.168.252.0/24", "wlan0")] if str(net).startswith("192.168.252") else [])
    with pytest.raises(Exit) as e:
        up(tmp_path, seats=2)
    assert "seat 2: 192.168.252.0/24 is already routed via wlan0" in e.value.message
    assert not (tmp_path / "room").exists() and FakeSeatProcess.calls == []


def test_a_room_derived_otherwise_is_not_mixed_with(fake, tmp_path):
    up(tmp_path, seats=2)
    with pytest.raises(Exit) as e:
        cli.up(ctx(), seats=2, base_subnet="10.1.0.0/24", dir=str(tmp_path / "room"))
    assert "workshop.down" in e.value.message
    with pytest.raises(Exit) as e:
        up(tmp_path, seats=1)
    assert "seat(s) 2" in e.value.message


def test_down_runs_invoke_down_in_the_rooms_seats_only_and_keeps_their_runs(fake, tmp_path, capsys):
    up(tmp_path, seats=2)
    (tmp_path / "room" / "seat1" / "runs" / "x").mkdir(parents=True)
    # a lab outside the room, with a folder that looks like a seat's
    outside = tmp_path / "elsewhere" / "seat3"
    outside.mkdir(parents=True)
    (outside / "topology.yml").write_text((tmp_path / "room" / "seat2" / "topology.yml").read_text())
    FakeSeatProcess.calls = []
    cli.down(ctx(), dir=str(tmp_path / "room"))
    assert sorted(c["env"]["LAB_DIR"] for c in FakeSeatProcess.calls) == [
        str(tmp_path / "room" / "seat1"), str(tmp_path / "room" / "seat2")]
    assert all(c["args"][1:] == ["down", "--provider", "docker"] for c in FakeSeatProcess.calls)
    assert sorted(p.name for p in (tmp_path / "room" / "seat1").iterdir()) == ["runs"]
    assert list((tmp_path / "room" / "seat2").iterdir()) == []
    assert not (tmp_path / "room" / "workshop.json").exists()
    assert (outside / "topology.yml").exists()
    FakeSeatProcess.calls = []
    cli.down(ctx(), dir=str(tmp_path / "room"))
    assert FakeSeatProcess.calls == [] and "nothing to remove" in capsys.readouterr().out


def test_status_shows_one_row_per_seat_with_gate_and_last_run(fake, tmp_path, monkeypatch, capsys):
    up(tmp_path, seats=2)
    (tmp_path / "room" / "seat1" / "state.json").write_text(json.dumps({"phase": "provisioned"}))
    run = tmp_path / "room" / "seat1" / "runs" / "20261201T001000Z-etcd-down"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"started": "2026-12-01T00:10:00Z", "finished": "x",
                                              "tally": {"pass": 1}}))
    asked = []
    monkeypatch.setattr(R, "gate", lambda seat: (asked.append(seat.number), (False, "one leader: leaders: none"))[1])
    monkeypatch.setattr(cli.console, "width", 250)
    capsys.readouterr()
    cli.status(ctx(), dir=str(tmp_path / "room"))
    out = capsys.readouterr().out
    assert asked == [1], "only a provisioned seat is asked for its health"
    row1 = next(l for l in out.splitlines() if "patroni-lab-s1" in l)
    row2 = next(l for l in out.splitlines() if "patroni-lab-s2" in l)
    assert "NO" in row1 and "leaders: none" in row1 and "etcd-down" in row1 and "1 pass" in row1
    assert "absent" in row2 and "none yet" in row2


def test_gate_is_status_check_in_the_seats_environment(fake, tmp_path, monkeypatch):
    up(tmp_path, seats=1)
    seat = R.find(tmp_path / "room", 1)
    seen = {}
    answer = {}

    def run(args, **kw):
        seen.update(kw["env"], args=args)
        return subprocess.CompletedProcess(args, answer["rc"], answer["out"], answer.get("err", ""))
    monkeypatch.setattr(R.subprocess, "run", run)
    answer.update(rc=0, out="healthy: 9 checks at the baseline\n")
    assert R.gate(seat) == (True, "healthy: 9 checks at the baseline")
    assert seen["LAB_DIR"] == str(seat.dir) and seen["args"][1:] == ["status", "--check"]
    answer.update(rc=1, out="", err="one leader: leaders: none\nVIP read_write held once: held by nobody\n")
    assert R.gate(seat) == (False, "one leader: leaders: none; VIP read_write held once: held by nobody")
    answer.update(rc=2, out="", err="error: cannot check the lab's health: the lab is not up\n")
    assert R.gate(seat)[0] is None


def test_ssh_enters_the_seat_through_its_own_ssh_config(fake, tmp_path, monkeypatch):
    up(tmp_path, seats=2)
    seat2 = tmp_path / "room" / "seat2"
    (seat2 / "state.json").write_text(json.dumps({"phase": "provisioned", "interface": "plab52"}))
    monkeypatch.setattr(guard, "route_interface", lambda a: "plab52" if a.startswith("192.168.252.") else "eth0")
    # the command points the lab's variables at the seat before exec: let monkeypatch restore them
    monkeypatch.setenv("LAB_TOPOLOGY", str(topology.DEFAULT_PATH))
    execs = []
    monkeypatch.setattr(os, "execvp", lambda f, args: execs.append(args))
    cli.ssh(ctx(), seat="2", node="pg1", dir=str(tmp_path / "room"))
    assert execs == [["ssh", "-F", str(seat2 / "ssh_config"), "node1"]]
    with pytest.raises(Exit) as e:
        cli.ssh(ctx(), seat="7", node="node1", dir=str(tmp_path / "room"))
    assert "seat 7: no such seat" in e.value.message


def test_vagrant_gets_the_seats_own_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    topo = topology.load()
    prov = vagrant.VagrantProvider("docker", {})
    assert prov.env(topo).get("VAGRANT_HOME") == os.environ.get("VAGRANT_HOME")
    vagrant.make_seat_home(tmp_path / "vagrant.d", shared=tmp_path / "shared")
    assert prov.env(topo)["VAGRANT_HOME"] == str(tmp_path / "vagrant.d")
    assert (tmp_path / "vagrant.d" / "boxes").resolve() == (tmp_path / "shared" / "boxes").resolve()


def test_packages_are_linked_not_copied_and_given_back(tmp_path):
    shared = tmp_path / "shared"
    (shared / "node1").mkdir(parents=True)
    (shared / "node1" / "a.deb").write_bytes(b"x")
    seat = tmp_path / "seat" / "cache"
    assert R.link_packages(shared, seat) == 1
    assert os.path.samefile(shared / "node1" / "a.deb", seat / "node1" / "a.deb")
    assert R.link_packages(shared, seat) == 0
    (seat / "node2").mkdir()
    (seat / "node2" / "b.deb").write_bytes(b"y")
    assert R.link_packages(seat, shared) == 1 and (shared / "node2" / "b.deb").exists()


def test_invoke_workshop_from_the_shell_parses_actions_and_positional_seats(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "LAB_DIR": str(tmp_path / "lab")}
    r = subprocess.run([INVOKE, "workshop", "stauts", "--dir", str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 2 and "did you mean status" in r.stderr
    for status in (["workshop.status"], ["workshop", "status"]):      # the old spelling still works
        r = subprocess.run([INVOKE, *status, "--dir", str(tmp_path)], cwd=ROOT, capture_output=True,
                           text=True, timeout=60, env=env)
        assert r.returncode == 0 and "no seats in" in r.stdout
    r = subprocess.run([INVOKE, "workshop.ssh", "2", "node1", "--dir", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "seat 2: no such seat" in r.stderr
    # the old spelling of an action with options is named in one line, nothing done
    r = subprocess.run([INVOKE, "workshop", "up", "--dir", str(tmp_path / "room")], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and r.stderr.strip() == "error: workshop up: it is `invoke workshop.up --seats N` now"
    assert not (tmp_path / "room").exists()
