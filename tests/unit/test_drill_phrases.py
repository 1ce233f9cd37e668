"""Chinese all the way through a drill (issue 12): every phrase a drill shows while it runs (part
titles, expectations, fault and operation descriptions, notes, the reasons beside commands, the
labels of measured values) has a zh.yml entry, found by reading the drill code; a drill run in
Chinese on the fake lab shows no English sentence; the result files stay English."""
from __future__ import annotations

import re
import textwrap

import pytest

from lab.exercises import DRILLS, Lab, run_drill
from lab.exercises.api.console import ScriptedConsole
from lab.i18n import catalog, language, phrases
from labcore.topology import load

from fake_clock import FakeClock
from fake_watch import outcome_of, watch_for
from test_ops_drills import FakeCluster, fake  # noqa: F401  (the fake cluster fixture, haproxy following the leader)
from lab.exercises.kit import sql

CJK = re.compile(r"[\u4e00-\u9fff]")
TRANSLATED = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")      # Chinese words or full-width punctuation
# four English words in a row: a sentence, not a name, a value or a command
ENGLISH = re.compile(r"\b[A-Za-z]{2,}(?:[ ,]+[A-Za-z]{2,}){3,}\b")
HOW_TO_ADD = ("add it to lab/i18n/zh.yml under `{section}:` (the English template is the key, "
              "{{0}} {{1}} ... for the values the code fills in; `python -m lab.exercises.translations said` prints "
              "the missing ones as YAML)")


def said_in(text: str, lang: str) -> str:
    """What phrases.said shows for ``text`` while ``lang`` is spoken."""
    with language(lang):
        return phrases.said(text)


def measure_label_in(key: str, lang: str) -> str:
    with language(lang):
        return phrases.measure_label(key)


@pytest.fixture(scope="module")
def found() -> list[phrases.Phrase]:
    return phrases.templates()


def test_every_phrase_a_drill_shows_has_a_chinese_entry(found):
    lacking = phrases.missing("zh", found)
    assert not lacking, "phrases shown during a drill with no zh entry:\n" + "\n".join(
        f"  {p.where}: {p.section}: {p.template!r} -- " + HOW_TO_ADD.format(section=p.section) for p in lacking)


def test_no_chinese_entry_is_left_over_from_changed_english(found):
    stale = phrases.unused("zh", found)
    assert not stale, "zh.yml entries no drill code says any more (the English changed or went):\n" + "\n".join(
        f"  {section}: {key!r}" for section, key in stale)


def test_each_entry_is_chinese_and_keeps_every_value():
    for section in phrases.SECTIONS:
        for english, chinese in (catalog("zh").get(section) or {}).items():
            assert set(phrases.PLACEHOLDER.findall(english)) == set(phrases.PLACEHOLDER.findall(chinese)), \
                f"{section}: {english!r} -> {chinese!r}: the values differ"
            assert TRANSLATED.search(chinese) or english == chinese, f"{section}: {english!r} is not translated"


def test_each_template_translates_back_to_its_own_entry():
    """Filled in with values, every English phrase comes out as its own Chinese entry (a more general
    template must not catch it first)."""
    for english, chinese in (catalog("zh").get("said") or {}).items():
        values = {n: f"v{n}x" for n in phrases.PLACEHOLDER.findall(english)}
        fill = lambda text: phrases.PLACEHOLDER.sub(lambda m: values[m.group(1)], text)  # noqa: E731
        assert said_in(fill(english), "zh") == fill(chinese), english


def test_english_stays_english():
    assert said_in("pg2 rejoins as a replica", "en") == "pg2 rejoins as a replica"
    assert measure_label_in("failover_s", "en") == "failover_s"


def test_a_name_then_a_phrase_is_the_name_and_the_translated_phrase():
    # steps.rejoined shows f"{member} {how}"; drills give `how` on its own
    assert said_in("pg3 streams from pg1 again", "zh") == "pg3 重新从 pg1 复制"
    assert said_in("pg3 sings", "zh") == "pg3 sings"          # no entry: shown as written


def test_a_new_english_phrase_is_found_and_named_with_its_place(tmp_path):
    """The broken case: a drill gains a phrase (expectation, step, fault, how=, a measured key) and
    nobody adds its Chinese: the reader finds each with its file and line."""
    root = tmp_path / "lab" / "exercises"
    (root / "drills").mkdir(parents=True)
    (root / "drills" / "new.py").write_text(textwrap.dedent('''
        def run(self, lab):
            lab.step("A brand new part", f"{leader} is checked.")
            lab.inject(Fault(node, f"disk on {node} filled", "fill", "rm"))
            lab.expect(cond, f"{member} stays calm" + " and quiet", within=5)
            S.rejoined(lab, member, 60, how=f"streams from {leader} in the end")
            lab.measure(f"calm_{member}_s", 1)
            lab.note("done" if ok else f"{member} not done")
    '''))
    got = {(p.section, p.template, p.where.rsplit(":", 1)[1]) for p in phrases.templates(root)}
    assert got == {("said", "A brand new part", "3"), ("said", "{0} is checked.", "3"),
                   ("said", "disk on {0} filled", "4"), ("said", "{0} stays calm and quiet", "5"),
                   ("said", "streams from {0} in the end", "6"), ("measures", "calm_{0}_s", "7"),
                   ("said", "done", "8"), ("said", "{0} not done", "8")}
    assert {p.template for p in phrases.missing("zh", phrases.templates(root))} >= {"A brand new part", "calm_{0}_s"}


# --- whole drills in Chinese on the fake cluster ---------------------------------------------------

def run_in(lang: str, fake, tmp_path, name: str):
    """A drill on the fake cluster (no writer: nothing to connect to), auto, in ``lang``."""
    quiet = type(DRILLS[name].__name__, (DRILLS[name],), {"writes": False})
    console = ScriptedConsole()
    with language(lang):
        lab = Lab(fake.topo, auto=True, console=console, clock=FakeClock(), shell=fake, probe=fake,
                  results_dir=tmp_path / "drills", outcome_probe=outcome_of(fake))
        return console, run_drill(quiet, lab, watch=watch_for(fake, lab.clock))


def english_sentences(shown: list[str]) -> list[str]:
    """Lines with an English sentence, leaving out what is typed or read as it is: commands ("$ ..."),
    the ssh hint, command output the drill prints (member summaries, tables), the drill's name."""
    out = []
    for block in shown:
        for line in block.splitlines():
            text = line.strip()
            if not text or text.startswith("$") or text.startswith("{") or "ssh -F" in text or "|" in text:
                continue
            text = re.sub(r"`[^`]*`|'[^']*'|\([^()]*\)", "", text)
            if ENGLISH.search(text):
                out.append(line)
    return out


@pytest.mark.parametrize("name", ["switchover", "failover"])
def test_a_drill_run_in_chinese_shows_no_english_sentence(fake, tmp_path, name):
    console, res = run_in("zh", fake, tmp_path, name)
    assert res.passed, res.reason
    assert english_sentences(console.shown) == []
    assert "主备切换" in console.text or "故障切换" in console.text
    # the record stays English: check descriptions and metric keys are data
    assert res.checks and all(c.description.isascii() for c in res.checks)
    assert all(k.isascii() for k in res.metrics)


def test_the_same_drill_in_english_is_untouched(fake, tmp_path):
    console, _ = run_in("en", fake, tmp_path, "switchover")
    assert not CJK.search(console.text)
    assert "Switch over" in console.text


def test_a_reason_joined_from_phrases_is_translated_part_by_part():
    reason = ("pg1 demotes itself to a replica: pg1 is primary, the article says replica; "
              "pg2 is stopped, the article says replica (no postmaster)")
    assert said_in(reason, "zh") == ("pg1 自行降级为备库：pg1 的状态是 primary，文章说应为 replica；"
                                          "pg2 的状态是 stopped，文章说应为 replica（no postmaster）")
    # a value never swallows the next clause: "on {0}" must not take "node2: not true within 30 s"
    assert said_in("the fault is in effect on node2: not true within 30 s", "zh") == "故障已在 node2 上生效：30 秒内未成立"


def test_a_failed_drill_gives_its_reason_in_chinese_and_records_it_in_english(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    fake = FakeCluster(load(), stuck=True)
    monkeypatch.setattr(sql, "whoami", lambda topo, address, port=None, **k: (topo.node(fake.lead).address, False))
    console, res = run_in("zh", fake, tmp_path, "switchover")
    assert res.verdict == "fail" and res.reason.startswith("switchover: pg2 is not the writable leader")
    verdict_line = next(s for s in console.shown if ">>> switchover" in s)
    assert "主备切换：pg2 没有成为可写的 leader" in verdict_line, verdict_line
