"""Drill pages and texts in English and Chinese: generated from the drills, never drifting.

(The page-by-page comparison with the files on disk is test_exercises_engine's
test_docs_pages_match_the_drills, over every language's pages.)
"""
from __future__ import annotations

import re
import shutil

import pytest

from lab.exercises import DRILLS
from lab import i18n
from lab.exercises.pages import expected_files, folder
from lab.exercises.pages import page as page_here
from labcore.topology import ROOT

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_pages_exist_for_every_drill_in_both_languages():
    files = expected_files()
    for name in DRILLS:
        assert folder("en") / f"{name}.md" in files
        assert folder("zh") / f"{name}.md" in files
    assert folder("zh") == ROOT / "docs" / "zh" / "drills"


def page(d, lang: str) -> str:
    """The page of ``d`` as generated while ``lang`` is spoken."""
    with i18n.language(lang):
        return page_here(d)


def test_chinese_pages_speak_chinese_and_keep_the_drills_commands():
    for name, d in DRILLS.items():
        zh, en = page(d, "zh"), page(d, "en")
        with i18n.language("zh"):
            summary = i18n.drill_text(name, "summary")
        assert CJK.search(summary), f"{name}: the Chinese summary has no Chinese"
        assert summary in zh and "## 背景" in zh and "## 预期结果" in zh
        assert d.story.strip().splitlines()[0] not in zh, f"{name}: English story on the Chinese page"
        # every command the trainee types is the drill's own code, in both languages
        with i18n.language("en"):
            en_commands = i18n.commands(name, list(d.commands))
        for where, code, _ in en_commands:
            assert f"`{code}" in en
        translated = (i18n.catalog("zh")["drills"][name]).get("commands") or []
        for (where, code, _), item in zip(en_commands, translated):
            if "text" not in item:
                assert f"`{code}" in zh, f"{name}: command {code!r} missing from the Chinese page"


def test_every_drill_has_current_chinese_text():
    found = i18n.problems("zh", list(DRILLS))
    assert not found, ("Chinese drill text missing or stale (edit lab/i18n/zh.yml, then "
                       "`python -m lab.exercises.translations stamp <drill>` and `python -m lab.exercises.pages`):\n"
                       + "\n".join(f"  {n}: {'; '.join(v)}" for n, v in found.items()))


def test_a_drill_without_chinese_text_is_reported(monkeypatch):
    class Untranslated:
        name, section, summary, story = "new-drill", "§9", "A drill nobody translated.", "Story."
        expected, differs, commands = "Something.", "Nothing.", ["anywhere: true"]
    monkeypatch.setitem(DRILLS, "new-drill", Untranslated)
    assert i18n.problems("zh", list(DRILLS)) == {"new-drill": ["no translation at all"]}


def test_a_changed_english_text_makes_its_translation_stale(monkeypatch):
    monkeypatch.setattr(DRILLS["etcd-down"], "story", DRILLS["etcd-down"].story + " One more sentence.")
    monkeypatch.setattr(DRILLS["etcd-down"], "commands", DRILLS["etcd-down"].commands[:-1])
    issues = i18n.problems("zh", list(DRILLS))["etcd-down"]
    assert "English changed since translated: story, commands" in issues
    assert any("commands translated, the drill has" in i for i in issues)


def test_stamping_records_the_new_english(monkeypatch, tmp_path):
    shutil.copy(i18n.HERE / "zh.yml", tmp_path / "zh.yml")
    monkeypatch.setattr(i18n, "HERE", tmp_path)
    i18n.catalog.cache_clear()
    try:
        monkeypatch.setattr(DRILLS["etcd-down"], "differs", "Changed.")
        assert "etcd-down" in i18n.problems("zh", list(DRILLS))
        assert i18n.stamp("zh", ["etcd-down"]) == ["etcd-down"]
        assert i18n.problems("zh", list(DRILLS)) == {}
        assert (tmp_path / "zh.yml").read_text().count("    source: ") == len(DRILLS)
    finally:
        i18n.catalog.cache_clear()


def test_every_ui_string_has_chinese():
    en, zh = i18n.catalog("en")["ui"], i18n.catalog("zh")["ui"]
    assert set(en) == set(zh)
    for key, text in en.items():   # the same placeholders, so no format() fails at run time
        assert set(re.findall(r"{(\w+)", text)) == set(re.findall(r"{(\w+)", zh[key])), key


def test_a_place_may_hold_a_colon_in_parentheses():
    assert i18n.split_command("on any member, to undo (lowering: the primary first): sudo x --force") == \
        ("on any member, to undo (lowering: the primary first)", "sudo x --force", "")
    assert i18n.split_command("on a replica: systemctl show -p Restart --value patroni   # says no") == \
        ("on a replica", "systemctl show -p Restart --value patroni", "says no")


@pytest.mark.parametrize("explicit, env, want", [
    ("zh", {"LAB_LANG": "en"}, "zh"),
    (None, {"LAB_LANG": "zh", "LANG": "en_US.UTF-8"}, "zh"),
    (None, {"LANG": "zh_CN.UTF-8"}, "zh"),
    (None, {"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
    (None, {"LC_ALL": "zh_TW.UTF-8", "LANG": "C"}, "zh"),
    (None, {"LANG": "C.UTF-8"}, "en"),
    (None, {}, "en"),
])
def test_language_from_option_environment_and_locale(explicit, env, want):
    assert i18n.resolve_lang(explicit, env) == want


def test_an_unknown_language_is_one_line_naming_the_choices():
    with pytest.raises(i18n.LangError) as e:
        i18n.resolve_lang(None, {"LAB_LANG": "fr"})
    assert "\n" not in str(e.value) and "$LAB_LANG" in str(e.value) and "en, zh" in str(e.value)


def test_a_chinese_page_breaks_no_line_between_two_chinese_characters():
    """Markdown turns a line break into a space; between two Chinese characters it splits a word."""
    assert i18n.unbreak_cjk("端口的\n数据包\nPostgreSQL\n保持。\nnext line") == "端口的数据包\nPostgreSQL\n保持。\nnext line"
    broken = [name for name in DRILLS if re.search(r"[\u4e00-\u9fff]\n[\u4e00-\u9fff]", page(DRILLS[name], "zh"))]
    assert broken == []
