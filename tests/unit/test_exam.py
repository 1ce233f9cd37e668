"""The blind-fault exam without machines: the fake cluster of the runner's tests, a fake clock, and
the background process run in-process (the real one is the same code behind a pid)."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from invoke import Context, Exit

from lab.cli import exam as exam_cli
from lab.cli import exercises as exercises_cli
from lab.exam import background as bg
from lab.exam import commands, gate, pool, process, record
from lab.exam.record import Exam, ExamError
from lab.exercises.api.console import ScriptedConsole
from lab.exercises.api.context import Lab
from lab.exercises.observe.evidence import DrillRecorder
from lab.exercises.kit.shell import Output
from lab.exercises.api.model import DRILLS, Drill, NotApplicable
from lab.i18n import language
from lab.workshop import history
from labcore.topology import load

from fake_clock import FakeClock
from fake_watch import outcome_of, watch_for
from test_exercises_runner import FakeCluster


class ExamCluster(FakeCluster):
    """The runner's fake cluster, with etcd and haproxy running and iptables rules that can be set."""

    def __init__(self, topo) -> None:
        super().__init__(topo)
        self.drop_rules: dict[str, int] = {}

    def run(self, node, command, timeout=60):
        if command.startswith("systemctl is-active ") and not command.endswith(" patroni"):
            self.commands.append((node, command))
            return Output(0, "active")
        if "iptables -S OUTPUT" in command:
            self.commands.append((node, command))
            return Output(0, str(self.drop_rules.get(node, 0)))
        return super().run(node, command, timeout)


class InProcessBackground:
    """What ``python -m lab.exam.background`` does, run here on the fake lab."""

    def __init__(self, fake, clock) -> None:
        self.fake, self.clock = fake, clock
        self.session = None
        self.stopped = False
        self.recorder = None

    def start(self, exam: Exam) -> int:
        self.recorder = DrillRecorder(exam.drill_dir, clock=self.clock.monotonic)
        lab = bg.ExamLab(self.fake.topo, auto=True, console=bg.QuietConsole(), clock=self.clock, shell=self.fake,
                         probe=self.fake, outcome_probe=outcome_of(self.fake), recorder=self.recorder,
                         writer_paths=[])
        self.session = bg.begin(exam, lab, exam.state["order"], watch=watch_for(self.fake, self.clock))
        return 4242

    def alive(self, pid: int) -> bool:
        return self.session is not None and not self.stopped

    def stop(self, pid: int) -> bool:
        if self.session is not None and not self.stopped:
            bg.end(self.session)
            self.recorder.close()
        self.stopped = True
        return True


@pytest.fixture(autouse=True)
def english():
    """The exam's words in English unless a test says otherwise (whatever the locale)."""
    with language("en"):
        yield


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    monkeypatch.setenv("LAB_LANG", "en")
    return ExamCluster(load())


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    c.now = 1000.0
    monkeypatch.setattr(record, "CLOCK", c.monotonic)
    return c


def trainer_lab(fake, clock) -> Lab:
    return Lab(fake.topo, auto=True, console=ScriptedConsole(), clock=clock, shell=fake, probe=fake,
               outcome_probe=outcome_of(fake))


def start(fake, clock, tmp_path, from_="replica-patroni-stop,primary-patroni-stop", seed=7):
    back = InProcessBackground(fake, clock)
    text = commands.start(fake.topo, back, from_=from_, seed=seed, clock=clock)
    return back, text, record.open_exam()


def test_the_exam_injects_a_fault_without_naming_it_and_scores_the_trainee(fake, clock, tmp_path):
    back, text, exam = start(fake, clock, tmp_path)
    fault = exam.fault
    assert fault["state"] == "running" and fault["drill"] in ("replica-patroni-stop", "primary-patroni-stop")
    assert fault["drill"] not in text and fault["node"] not in text and "stop" not in text   # blind
    assert fake.patroni_running[fault["node"]] is False                         # and really broken
    assert fault["undo"] == "sudo systemctl start patroni"
    other = ({"replica-patroni-stop", "primary-patroni-stop"} - {fault["drill"]}).pop()

    clock.sleep(20)
    assert commands.answer(other).startswith("wrong")
    clock.sleep(10)
    said = commands.answer(fault["drill"])
    assert said.startswith("right") and "30 s after the fault" in said
    hint = commands.hint()
    assert hint.startswith("hint 1 of ") and "  1. " in hint and "  2. " not in hint

    ok, still = commands.done(trainer_lab(fake, clock), back)
    assert not ok and f"patroni running on {fault['node']}: systemctl is-active: inactive" in still
    assert record.open_exam() is not None and not back.stopped           # the exam goes on

    fake.run(fault["node"], fault["undo"])                              # the repair, typed by hand
    ok, said = commands.done(trainer_lab(fake, clock), back)
    assert ok and back.stopped and record.open_exam() is None
    line = said.splitlines()[-1]
    assert line.startswith(f"exam score: fault {fault['drill']} on {fault['node']} | answer right (2 given)")
    assert "hints 1" in line and "writes lost not counted" in line   # no writer ran: not counted, not 0

    run = json.loads((exam.folder / "run.json").read_text())
    sc = run["score"]
    assert run["finished"] and run["drills"] == ["exam"] and run["fault"] == fault["drill"]
    assert (sc["answer"], sc["answers"], sc["answered_s"], sc["hints"], sc["gave_up"]) == ("right", 2, 30.0, 1, False)
    assert sc["repaired_s"] >= 30.0 and sc["writes_counted"] is False and sc["writes_lost"] is None
    result = json.loads((exam.drill_dir / "result.json").read_text())
    assert result["score"] == sc and result["watch"]["samples"] > 0
    assert [a["right"] for a in result["exam"]["answers"]] == [False, True]
    assert result["exam"]["checks"][0]["ok"] is False and result["exam"]["checks"][1]["ok"] is True
    marks = [json.loads(ln) for ln in (exam.drill_dir / "events.jsonl").read_text().splitlines()]
    names = [m.get("name") for m in marks if m["type"] == "mark"]
    assert names.index("fault") < names.index("answer") < names.index("hint") < names.index("done")
    last = history.from_runs(tmp_path)
    assert last.what == "exam" and "answer right, repaired in" in last.outcome and "hints 1" in last.outcome


def test_the_same_seed_draws_the_same_fault_for_a_whole_room():
    names = list(pool.POOL)
    assert pool.draw(names, 11) == pool.draw(names, 11)
    assert len({pool.draw(names, s)[0] for s in range(40)}) > 1        # the seed does choose
    assert sorted(pool.draw(names, 3)) == sorted(names)


def test_every_drill_of_the_pool_exists_and_injects_a_fault_with_an_undo():
    assert set(pool.POOL) <= set(DRILLS)


def test_a_second_exam_while_one_runs_is_one_line_and_creates_nothing(fake, clock, tmp_path):
    start(fake, clock, tmp_path)
    before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    with pytest.raises(ExamError) as e:
        commands.start(fake.topo, InProcessBackground(fake, clock), from_=None, seed=None,
                       clock=clock)
    assert "already going on" in str(e.value) and "\n" not in str(e.value)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == before


def test_giving_up_shows_the_answer_heals_the_lab_and_is_scored(fake, clock, tmp_path):
    back, _, exam = start(fake, clock, tmp_path, from_="replica-patroni-stop")
    clock.sleep(5)
    text = commands.give_up(trainer_lab(fake, clock), back)
    assert "the fault was replica-patroni-stop" in text and "sudo systemctl start patroni" in text
    assert all(fake.patroni_running.values()) and back.stopped
    assert "the lab is back at its baseline" in text
    sc = json.loads((exam.folder / "run.json").read_text())["score"]
    assert sc["gave_up"] is True and sc["repaired_s"] is None and sc["answer"] == "none"
    assert "gave up" in history.from_runs(tmp_path).outcome
    with pytest.raises(ExamError):
        commands.hint()                       # the exam is over


class NotHere(Drill):
    name = "test-not-here"
    section = "none"
    summary = "not applicable on this lab"

    def run(self, lab):
        raise NotApplicable("this lab has nothing of the kind")


def test_a_drill_not_applicable_here_stands_aside_for_the_next_one(fake, clock, tmp_path, monkeypatch):
    monkeypatch.setitem(DRILLS, NotHere.name, NotHere)
    monkeypatch.setattr(pool, "draw", lambda names, seed: [NotHere.name, "replica-patroni-stop"])
    _, _, exam = start(fake, clock, tmp_path, from_=None)
    assert exam.fault["drill"] == "replica-patroni-stop"
    assert exam.fault["skipped"] == [{"drill": NotHere.name, "reason": "this lab has nothing of the kind"}]


def test_a_lab_off_its_baseline_gets_no_exam_and_is_not_touched(fake, clock, tmp_path):
    fake.patroni_running["node3"] = False
    with pytest.raises(ExamError) as e:
        start(fake, clock, tmp_path)
    assert "not at its healthy baseline" in str(e.value) and "\n" not in str(e.value)
    assert record.open_exam() is None                 # the run is closed, as an error
    assert [c for c in fake.commands if "systemctl stop" in c[1]] == []


def test_hints_run_out_without_being_counted(fake, clock, tmp_path):
    start(fake, clock, tmp_path, from_="replica-patroni-stop")
    lines = commands.story_lines("replica-patroni-stop")
    assert len(lines) >= 3 and lines[0].startswith("`systemctl stop patroni` on a replica")
    for i in range(len(lines)):
        assert commands.hint().startswith(f"hint {i + 1} of {len(lines)}")
    assert commands.hint().startswith("no more hints")
    assert record.open_exam().state["hints"] == len(lines)
    with language("zh"):
        zh = commands.story_lines("replica-patroni-stop")
        cut = commands.story_lines("replica-etcd-cut")      # its YAML breaks a line between two characters
    assert len(zh) >= 2 and all(not s.startswith("。") for s in zh)
    assert "端口的数据包" in cut[0] and "端口的 数据包" not in cut[0]


def test_the_gate_sees_what_the_baseline_does_not_yet(fake):
    fake.drop_rules["node2"] = 1
    found = gate.findings(fake.topo, fake, fake)
    off = [f for f in found if not f.ok]
    assert [f.check for f in off] == ["node2 reaches etcd"]
    assert "1 iptables DROP rule(s)" in gate.still_off(found)


# --- bad input: one line, nothing created -------------------------------------------------------

@pytest.mark.parametrize("command, kwargs, words", [
    ("answer", {"drill": "replica-patroni-stpo"}, "did you mean replica-patroni-stop?"),
    ("answer", {"drill": "replica-patroni-stop"}, "exam.answer: no exam is going on"),
    ("hint", {}, "exam.hint: no exam is going on"),
    ("start", {"from_": "replica-patroni-stop,nope"}, "--from: unknown drill 'nope'"),
    ("start", {"from_": "etcd-down"}, "etcd-down's fault cannot be an exam's"),
    ("start", {"seed": "tuesday"}, "--seed 'tuesday': must be a whole number"),
    ("start", {"scale": "slow"}, "slow"),
    ("start", {}, "the lab is not up"),
    ("done", {}, "the lab is not up"),
    ("give_up", {}, "the lab is not up"),
])
def test_bad_exam_input_is_one_line_and_creates_nothing(fake, tmp_path, command, kwargs, words):
    with pytest.raises(Exit) as e:
        getattr(exam_cli, command)(Context(), **kwargs)
    assert e.value.code == 2 and words in e.value.message and "\n" not in e.value.message
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argv, err", [
    (["exam.answer", "etcd-dwon"], "exam.answer: unknown drill 'etcd-dwon' (did you mean etcd-down?)"),
    (["exercise", "--hint"], "exam.hint: no exam is going on (start one with `invoke exam.start`)"),
    (["exercise", "--answer"], "exercise: --answer is `invoke exam.answer <drill>` now"),
])
def test_the_exam_commands_need_no_drill_name_on_the_command_line(tmp_path, argv, err):
    out = subprocess.run([str((__import__("pathlib").Path(sys.executable).parent / "invoke")), *argv],
                         cwd=str(record.Path(__file__).resolve().parents[2]),
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "LAB_DIR": str(tmp_path)})
    assert out.returncode == 2 and out.stderr.strip() == err


def test_mixing_the_exam_commands_is_refused_by_invoke_and_creates_nothing(tmp_path):
    """Once one task had five modes and refused two at once; now each is its own task, and an option of
    one given to another is Invoke's own one-line refusal, before anything runs."""
    for argv in (["exam.done", "--seed", "3"], ["exam.start", "--done"]):
        out = subprocess.run([str((__import__("pathlib").Path(sys.executable).parent / "invoke")), *argv],
                             cwd=str(record.Path(__file__).resolve().parents[2]),
                             capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin", "LAB_DIR": str(tmp_path)})
        assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1 and "No idea what" in out.stderr
        assert not (tmp_path / "runs").exists()


# --- the background process, by pid ------------------------------------------------------------

def test_the_background_process_is_stopped_by_its_pid_and_leaves_nothing_behind(tmp_path):
    pid = process.start(["timeit", "-n", "1", "import time; time.sleep(120)"], tmp_path / "bg.log")
    assert process.alive(pid)
    started = time.monotonic()
    assert process.stop(pid, within=20)
    assert not process.alive(pid) and time.monotonic() - started < 20
    assert not process.alive(None) and process.stop(None)


def test_an_exam_whose_background_process_died_still_ends_and_says_what_it_could_not_count(fake, clock, tmp_path):
    back, _, exam = start(fake, clock, tmp_path, from_="replica-patroni-stop")
    back.stopped = True                       # gone without writing its result
    (exam.drill_dir / "result.json").unlink(missing_ok=True)
    fake.run(exam.fault["node"], exam.fault["undo"])
    ok, said = commands.done(trainer_lab(fake, clock), back)
    assert ok and "writes lost not counted" in said
    result = json.loads((exam.drill_dir / "result.json").read_text())
    assert result["verdict"] == "error" and "background process kept no result" in result["reason"]


def test_the_runs_list_and_the_report_show_the_exam(fake, clock, tmp_path, capsys):
    back, _, exam = start(fake, clock, tmp_path, from_="replica-patroni-stop")
    commands.answer("replica-patroni-stop")
    fake.run(exam.fault["node"], exam.fault["undo"])
    assert commands.done(trainer_lab(fake, clock), back)[0]
    exercises_cli.runs(Context())
    out = capsys.readouterr().out
    assert exam.folder.name in out and "[answer right, repaired in" in out
    from lab.report import render, runs
    written = render.write(runs.load(exam.folder), tmp_path / "report")
    assert "exam score: fault replica-patroni-stop" in written.markdown.read_text()
    assert "exam score: fault replica-patroni-stop" in written.html.read_text()


def test_the_background_process_refuses_a_folder_that_is_not_an_exam_waiting_to_start(tmp_path):
    out = subprocess.run([sys.executable, "-m", "lab.exam.background", str(tmp_path / "nothing")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "is not an exam waiting to start" in out.stderr
    assert not (tmp_path / "nothing").exists()          # nothing created, no lab contacted


def test_stopping_the_background_process_before_its_fault_ends_it_at_once(tmp_path, monkeypatch):
    """A lab nobody runs (its subnet routes nowhere: the guard lets no packet out), so the process
    sits in its first gate; SIGTERM there ends it within seconds and says so."""
    import yaml
    from labcore import poll
    from lab.exercises.observe.evidence import RunRecorder
    from lab.workshop.seats import derive
    import ipaddress

    doc = derive(yaml.safe_load((record.Path(__file__).resolve().parents[2] / "topology.yml").read_text()), 1,
                 ipaddress.IPv4Network("192.168.252.0/24"), "plabu")
    (tmp_path / "topology.yml").write_text(yaml.safe_dump(doc))
    env = {"LAB_TOPOLOGY": str(tmp_path / "topology.yml"), "LAB_DIR": str(tmp_path / "lab")}
    monkeypatch.setenv("LAB_DIR", env["LAB_DIR"])
    run = RunRecorder("exam", command="test", lab="plab-unit", drills=[])
    exam = Exam(run.path)
    exam.update_state(order=["replica-patroni-stop"], scale=1.0, lang="en")
    pid = process.start(["lab.exam.background", str(exam.folder)], tmp_path / "bg.log",
                        env={**__import__("os").environ, **env})
    ok, _, _ = poll.until(lambda: exam.fault.get("state") == "starting", 60, 0.2)
    assert ok, (tmp_path / "bg.log").read_text()
    started = time.monotonic()
    assert process.stop(pid, within=20), "it had to be killed"
    assert time.monotonic() - started < 20
    assert exam.fault["state"] == "error" and exam.fault["error"].startswith("stopped before the fault")


def test_an_exam_in_chinese_speaks_chinese_from_start_to_score(fake, clock, tmp_path):
    """Everything the trainee reads is Chinese with --lang zh; what is typed as it is (commands, drill and
    node names) and the gate's check names (shared with `invoke status --check`) stay as they are."""
    from test_drill_phrases import english_sentences

    with language("zh"):    # the exam's commands, as `invoke exam.* --lang zh` runs them
        back = InProcessBackground(fake, clock)
        text = commands.start(fake.topo, back, from_="replica-patroni-stop", seed=7, clock=clock)
        fault = record.open_exam().fault
        assert text.startswith("考试 ") and "invoke exam.done" in text
        clock.sleep(12)
        wrong = commands.answer("primary-patroni-stop")
        right = commands.answer("replica-patroni-stop")
        assert wrong.startswith("答错了：不是 primary-patroni-stop") and right.startswith("答对了：故障是 replica-patroni-stop")
        assert "12 秒" in right
        hint = commands.hint()
        assert hint.startswith("提示 1/")
        ok, still = commands.done(trainer_lab(fake, clock), back)
        assert not ok and still.startswith("还没好：")
        fake.run(fault["node"], fault["undo"])
        ok, score = commands.done(trainer_lab(fake, clock), back)
        assert ok and score.startswith("环境已恢复健康。\n考试成绩：故障 replica-patroni-stop")
        assert "答对（共回答 2 次），12 秒后答出" in score and "提示 1 次" in score and "丢失的写入未能统计" in score

        shown = [text, wrong, right, hint, "\n".join(ln for ln in still.splitlines() if not ln.strip().startswith("[!!]")),
                 score]
        assert english_sentences(shown) == []


def test_giving_up_in_chinese_names_the_fault_in_chinese(fake, clock, tmp_path):
    from test_drill_phrases import english_sentences

    back, _, exam = start(fake, clock, tmp_path, from_="replica-patroni-stop")
    fault = exam.fault
    with language("zh"):
        text = commands.give_up(trainer_lab(fake, clock), back)
    assert text.startswith("故障是 replica-patroni-stop") and "环境已回到健康基线。" in text
    assert text.splitlines()[-1].startswith("考试成绩：") and "放弃" in text.splitlines()[-1]
    typed = [ln for ln in text.splitlines() if fault["command"] in ln or fault["undo"] in ln]
    assert len(typed) == 2
    assert english_sentences([ln for ln in text.splitlines() if ln not in typed]) == []
