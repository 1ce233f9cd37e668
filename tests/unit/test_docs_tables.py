"""`invoke docs-tables`: the drill pages' measured table comes from named run folders (synthetic
ones here), in both languages, between markers, with the run, commit and date; every drill of
`invoke exercise --list` has a row, also when no run holds it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from invoke import Context, Exit

import lab.exercises.pages as drill_docs
from lab.cli.report import docs_tables
from lab.exercises import DRILLS
from lab.i18n import language, t
from lab.report import tables
import synthetic_runs as synth

HAND_EN = "# Drills\n\nHand-written intro.\n\n{region}\n\nHand-written notes after the table.\n"
HAND_ZH = "# 演练\n\n手写的说明。\n\n{region}\n\n表格之后手写的内容。\n"


@pytest.fixture
def setup(monkeypatch, tmp_path):
    lab_dir = tmp_path / "lab"
    monkeypatch.setenv("LAB_DIR", str(lab_dir))
    full = synth.write_run(lab_dir, "20261201T001000Z", "all", {
        "primary-patroni-kill": synth.primary_patroni_kill,
        "replica-pg-stop": lambda: synth.replica_fault("replica-pg-stop"),
        "retired-drill": lambda: synth.replica_fault("retired-drill")})
    rerun = synth.write_run(lab_dir, "20261201T020000Z", "replica-pg-stop", {
        "replica-pg-stop": lambda: synth.replica_fault("replica-pg-stop", "fail", "pg3 stayed stopped | not a replica")})
    docs = {"en": tmp_path / "docs" / "drills", "zh": tmp_path / "docs" / "zh" / "drills"}
    for lang, hand in (("en", HAND_EN), ("zh", HAND_ZH)):
        docs[lang].mkdir(parents=True)
        with language(lang):
            (docs[lang] / "README.md").write_text(hand.format(region=tables.placeholder()), encoding="utf-8")
    monkeypatch.setattr(drill_docs, "folder", lambda lang: docs[lang])
    return full, rerun, docs


def region(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text.split(tables.BEGIN, 1)[1].split(tables.END, 1)[0]


def row_of(text: str, drill: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| [{drill}]") or line.startswith(f"| {drill} "))


def test_every_drill_gets_a_row_from_the_last_run_that_holds_it(setup, capsys):
    full, rerun, docs = setup
    docs_tables(Context(), run=[full.name, rerun.name])
    en = region(docs["en"] / "README.md")
    # provenance: both runs, their commit and date, and the command that made the table
    assert f"`{full.name}` (commit `0123456789ab`, 2026-12-01" in en
    assert f"invoke docs-tables --run {full.name} --run {rerun.name}" in en
    # one row per drill of `invoke exercise --list`, in that order; the drills no run holds say so
    names = [m.group(1) for m in re.finditer(r"^\| \[([a-z0-9-]+)\]", en, re.M)]
    assert names == list(DRILLS)
    absent = row_of(en, "etcd-down")
    assert "not in these runs" in absent and DRILLS["etcd-down"].summary in absent
    # the figures of the kill drill: per path RTO, lost writes, seconds with two primaries, its run
    kill = row_of(en, "primary-patroni-kill")
    assert "**pass**" in kill and "vip " in kill and "haproxy " in kill and "15 s" in kill and full.name in kill
    # the re-run wins for the drill it holds; its reason is kept, the table's pipes escaped
    rpg = row_of(en, "replica-pg-stop")
    assert "**fail**: pg3 stayed stopped \\| not a replica" in rpg and rerun.name in rpg
    # a drill this version no longer has is kept and marked, not dropped
    assert "retired-drill (not a drill of this version)" in row_of(en, "retired-drill")
    assert "not in these runs: " in capsys.readouterr().out


def test_the_chinese_page_gets_the_same_table_in_chinese(setup):
    full, rerun, docs = setup
    docs_tables(Context(), run=[full.name])
    zh = region(docs["zh"] / "README.md")
    with language("zh"):
        head = t("table_head")
    assert head in zh
    assert "这些运行中没有该演练" in row_of(zh, "etcd-down")
    assert "§5 故障表第 8 行" in row_of(zh, "primary-patroni-kill")


def test_hand_written_text_survives_and_a_second_run_changes_nothing(setup, capsys):
    full, rerun, docs = setup
    docs_tables(Context(), run=[full.name, rerun.name])
    first = {lang: (d / "README.md").read_bytes() for lang, d in docs.items()}
    assert "Hand-written intro." in first["en"].decode() and "Hand-written notes after the table." in first["en"].decode()
    assert "表格之后手写的内容。" in first["zh"].decode()
    capsys.readouterr()
    docs_tables(Context(), run=[full.name, rerun.name])
    assert {lang: (d / "README.md").read_bytes() for lang, d in docs.items()} == first
    assert "unchanged" in capsys.readouterr().out


@pytest.mark.parametrize("runs_given, words", [([], "name at least one run"), (["nope"], "no run named 'nope'")])
def test_bad_runs_are_one_line_and_write_nothing(setup, runs_given, words):
    full, rerun, docs = setup
    before = {lang: (d / "README.md").read_bytes() for lang, d in docs.items()}
    with pytest.raises(Exit) as e:
        docs_tables(Context(), run=[full.name, *runs_given] if runs_given else runs_given)
    assert e.value.code == 2 and words in str(e.value.message) and "\n" not in str(e.value.message)
    assert {lang: (d / "README.md").read_bytes() for lang, d in docs.items()} == before


def test_the_committed_pages_hold_the_region_and_name_the_command():
    """Figures come from a full run on the default lab, never typed and never from a test's fake runs."""
    for lang in ("en", "zh"):
        text = (drill_docs.folder(lang) / "README.md").read_text(encoding="utf-8")
        assert tables.BEGIN in text and tables.END in text, lang
        inside = text.split(tables.BEGIN, 1)[1].split(tables.END, 1)[0]
        assert tables.COMMAND in inside and "plab-test" not in inside, lang
