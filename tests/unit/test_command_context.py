"""What a command sets once and everything below reads: its language (lab.i18n, set by
lab.cli.conventions from --lang / $LAB_LANG / the locale) and its time multiplier (labcore.poll,
--scale / $LAB_TIMEOUT_SCALE / invoke.yaml), without a parameter threaded through the calls."""
from __future__ import annotations

import threading

import pytest
from invoke import Context, Exit, task

from lab import i18n
from lab.cli import conventions
from lab.exercises import Lab
from lab.i18n import phrases
from labcore import poll
from labcore.topology import load


@pytest.fixture(autouse=True)
def plain(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    monkeypatch.delenv("LAB_LANG", raising=False)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.delenv(poll.SCALE_ENV, raising=False)
    monkeypatch.setattr(poll, "_option", None)


def speaking_task(seen: dict):
    """A command with --lang that reports what t(), the phrase table and a thread of it say."""
    def speak(c, lang=None):
        seen["t"] = i18n.t("enter")
        seen["said"] = phrases.said("pg3 streams from pg1 again")
        seen["current"] = i18n.current()
        worker = threading.Thread(target=lambda: seen.update(thread=i18n.current(), thread_t=i18n.t("enter")))
        worker.start()
        worker.join()
    return conventions.wrap(task(speak), "speak")


def test_the_command_sets_its_language_once_and_t_reads_it():
    seen: dict = {}
    speaking_task(seen)(Context(), lang="zh")
    with i18n.language("zh"):
        zh_enter = i18n.t("enter")
    assert seen["current"] == "zh" and seen["t"] == zh_enter and seen["said"] == "pg3 重新从 pg1 复制"
    assert i18n.current() == "en", "the command's language ends with the command"


def test_a_thread_of_the_command_speaks_the_commands_language():
    """A new thread starts with an empty context (no ContextVar is inherited): it still speaks the
    command's language, not the environment's."""
    seen: dict = {}
    speaking_task(seen)(Context(), lang="zh")
    assert seen["thread"] == "zh" and seen["thread_t"] == seen["t"]


def test_without_lang_the_environment_then_the_locale_choose(monkeypatch):
    seen: dict = {}
    monkeypatch.setenv("LAB_LANG", "zh")
    speaking_task(seen)(Context())
    assert seen["current"] == seen["thread"] == "zh"
    monkeypatch.delenv("LAB_LANG")
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")
    assert i18n.current() == "zh"


def test_a_bad_language_is_one_line_before_the_command_runs(monkeypatch):
    ran = []

    def speak(c, lang=None):
        ran.append(1)
    with pytest.raises(Exit) as e:
        conventions.wrap(task(speak), "speak")(Context(), lang="fr")
    assert e.value.code == 2 and e.value.message == "speak: --lang: unknown language 'fr' (choose one of en, zh)"
    monkeypatch.setenv("LAB_LANG", "xx")
    with pytest.raises(Exit) as e:
        conventions.wrap(task(speak), "speak")(Context())
    assert e.value.code == 2 and "$LAB_LANG" in e.value.message and "\n" not in e.value.message
    assert ran == []


def test_a_language_block_speaks_another_language_for_a_while_in_its_own_thread_only():
    with i18n.command_language("zh"):
        seen = {}
        with i18n.language("en"):
            seen["block"] = i18n.current()
            other = threading.Thread(target=lambda: seen.update(other=i18n.current()))
            other.start()
            other.join()
        seen["after"] = i18n.current()
    assert seen == {"block": "en", "other": "zh", "after": "zh"}


def test_the_docs_pages_are_both_languages_whatever_the_command_speaks():
    from lab.exercises.pages import expected_files, folder
    with i18n.command_language("zh"):
        zh_spoken = expected_files()
    assert zh_spoken == expected_files()
    assert any(p.parent == folder("en") for p in zh_spoken) and any(p.parent == folder("zh") for p in zh_spoken)


def test_lab_reads_the_one_multiplier():
    """Lab has no multiplier of its own: its bounds and the result's scale are labcore.poll's."""
    topo = load()
    lab = Lab(topo, auto=True, shell=object(), probe=object())
    assert lab.scale == 1.0 and lab.bound(10) == 10
    poll.set_scale(2.5)
    assert lab.scale == 2.5 and lab.bound(10) == 25.0 == poll.scaled(10)


def test_the_option_wins_over_the_environment_which_wins_over_invoke_yaml(monkeypatch):
    from lab.cli.exercises import command_scale
    from invoke import Config

    c = Context(Config(overrides={"exercise": {"timeout_scale": "1.5"}}))
    assert command_scale(c, None) == 1.5
    monkeypatch.setenv(poll.SCALE_ENV, "3")
    assert command_scale(c, None) == 3.0
    assert command_scale(c, "2") == 2.0
