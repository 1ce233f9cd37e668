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


def test_the_version_table_has_a_column_per_pair_the_runs_ran_on(tmp_path, monkeypatch, capsys):
    """Runs of three pairs -> three columns sorted by PostgreSQL then Patroni; each cell the verdict with
    its reason, RTO and lost writes; a drill a pair did not run says so; the Chinese page too."""
    lab_dir = tmp_path / "lab"
    monkeypatch.setenv("LAB_DIR", str(lab_dir))
    old = synth.write_run(lab_dir, "20261204T100000Z", "all", {
        "primary-patroni-kill": synth.primary_patroni_kill,
        "etcd-failsafe": lambda: synth.replica_fault("etcd-failsafe", "not-applicable",
                                                      "failsafe_mode arrived in Patroni 3.0")},
        versions={"patroni": "2.1.7", "postgres": "13.16"})
    new17 = synth.write_run(lab_dir, "20261204T110000Z", "all", {"primary-patroni-kill": synth.primary_patroni_kill},
                            versions={"patroni": "4.1.5", "postgres": "17.12"})
    new13 = synth.write_run(lab_dir, "20261204T120000Z", "all", {"replica-pg-stop": lambda: synth.replica_fault(
        "replica-pg-stop")}, versions={"patroni": "4.1.5", "postgres": "13.16"})
    monkeypatch.setattr(tables, "ROOT", tmp_path)
    docs_tables(Context(), run=[str(old), str(new17), str(new13)], matrix=True)
    page = (tmp_path / "docs" / "drills" / "versions.md").read_text()
    region = page.split(tables.MATRIX_BEGIN, 1)[1].split(tables.MATRIX_END, 1)[0]
    head = next(line for line in region.splitlines() if line.startswith("| drill |"))
    assert head.split(" | ")[2:] == ["Patroni 2.1.7 / PostgreSQL 13.16", "Patroni 4.1.5 / PostgreSQL 13.16",
                                     "Patroni 4.1.5 / PostgreSQL 17.12 |"]
    cells = row_of(region, "etcd-failsafe").split(" | ")
    assert cells[2] == "**not-applicable**: failsafe_mode arrived in Patroni 3.0" and cells[3] == "not run on this pair"
    kill = row_of(region, "primary-patroni-kill").split(" | ")
    assert kill[2].startswith("**pass**; RTO ") and "lost " in kill[2] and kill[3] == "not run on this pair"
    assert "invoke docs-tables --matrix --run lab/runs/20261204T100000Z-all" in region
    zh = (tmp_path / "docs" / "zh" / "drills" / "versions.md").read_text()
    assert "未在此版本组合上运行" in zh and "| 演练 | 文章章节 |" in zh
    assert "3 runs" in capsys.readouterr().out
