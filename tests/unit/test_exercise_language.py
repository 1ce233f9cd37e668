"""`invoke exercise` in the trainee's language: LAB_LANG / --lang / the locale, for the story,
the commands to type and the verdict lines."""
from __future__ import annotations

import re

import pytest
from invoke import Context, Exit

import tasks
from lab.exercises import DRILLS, Lab, run_drill
from lab.exercises.api.console import ScriptedConsole
from lab.i18n import drill_text, language, t
from fake_watch import watch_for
from test_exercises_runner import FakeCluster, StopAReplica, make_lab

from labcore.topology import load

CJK = re.compile(r"[\u4e00-\u9fff]")


class ReplicaPatroniStop(DRILLS["replica-patroni-stop"]):
    """The real drill's words (it has Chinese text), with the fake cluster's short script."""
    run = StopAReplica.run
    writes = False        # no database behind the fake cluster


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    return FakeCluster(load())


def guided(fake, tmp_path, lang_env: str) -> tuple[ScriptedConsole, object]:
    with language(lang_env):
        type_it = t("type_it")

    def trainee(text: str) -> None:
        # the trainee reads the node from the command screen and types the command there
        if "$ sudo systemctl stop patroni" in text:
            trainee.node = re.search(r"(node\d)", text).group(1)
        if text.strip() == type_it:
            fake.run(trainee.node, "sudo systemctl stop patroni")

    console = ScriptedConsole(on_show=trainee)
    lab = make_lab(fake, console, tmp_path, auto=False)
    res = run_drill(ReplicaPatroniStop, lab, watch=watch_for(fake, lab.clock))
    return console, res


def test_a_guided_drill_speaks_chinese_under_lab_lang_zh(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_LANG", "zh")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    console, res = guided(fake, tmp_path, "zh")
    header, story = console.shown[0], console.shown[1]
    # the first screen: the drill's section and summary, then its story, in Chinese
    with language("zh"):
        summary, story_zh = drill_text("replica-patroni-stop", "summary"), drill_text("replica-patroni-stop", "story")
    assert summary in header
    assert "§5 故障表第 2 行" in header
    assert "== 背景" in story
    assert story_zh.splitlines()[0] in story
    assert "Stop Patroni on a replica" not in "\n".join(console.shown[:2])
    assert console.pauses[0].strip() == "[回车] 继续"
    # the command to type: where in Chinese, the command itself as typed
    assert any(s.strip().startswith("在 node2 上：") and "$ sudo systemctl stop patroni" in s
               for s in console.shown)
    # the verdict line
    assert res.passed, res.reason
    assert ">>> replica-patroni-stop：通过 (PASS)" in console.text
    # the record stays in English: it is data, whatever the screen said
    assert "已观察到：故障已生效" in console.text
    assert res.checks and all(c.description.isascii() for c in res.checks)


def test_the_same_drill_in_english_by_default(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_LANG", raising=False)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    console, res = guided(fake, tmp_path, "en")
    assert DRILLS["replica-patroni-stop"].summary in console.shown[0]
    assert "== The story" in console.shown[1]
    assert not CJK.search(console.shown[1])
    assert ">>> replica-patroni-stop: PASS" in console.text


def test_the_locale_chooses_chinese_when_nothing_else_does(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_LANG", raising=False)
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert Lab(fake.topo, auto=True, shell=fake, probe=fake).lang == "zh"
    with language("en"):          # a block that speaks another language wins over the locale
        assert Lab(fake.topo, auto=True, shell=fake, probe=fake).lang == "en"


def test_list_in_chinese(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    tasks.ns["exercise.list"](Context(), lang="zh")        # as `invoke exercise.list --lang zh` runs it
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(DRILLS) and all(CJK.search(line) for line in lines)


def test_an_unknown_language_is_refused_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    with pytest.raises(Exit) as e:
        tasks.ns["exercise"](Context(), drill="etcd-down", auto=True, lang="fr")
    assert e.value.code == 2 and "\n" not in e.value.message and "fr" in e.value.message
    assert not (tmp_path / "drills").exists()
