"""Chinese text in the report's charts is drawn with a CJK font (issue 10), not as boxes: matplotlib
warns "Glyph … missing from font(s)" for every character it cannot draw, and that warning is what
these tests look for."""
from __future__ import annotations

import json
import re
import warnings

import matplotlib
import pytest

from lab.i18n import language
from lab.report import fonts, render, runs, timeline
import synthetic_runs as synth

CJK = re.compile(r"[\u4e00-\u9fff]")
NO_FONT = ("no CJK font installed (looked for: " + ", ".join(fonts.CJK_FAMILIES) + "); "
           + fonts.INSTALL_HINT)


def missing_glyphs(render) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render()
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


@pytest.fixture
def zh_drill(monkeypatch, tmp_path) -> runs.DrillRun:
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    folder = synth.write_run(tmp_path, "20261201T001000Z", "primary-patroni-kill",
                             {"primary-patroni-kill": synth.primary_patroni_kill})
    return runs.load(folder).drills[0]


@pytest.mark.skipif(fonts.cjk_family() is None, reason=NO_FONT)
def test_a_chart_made_in_chinese_has_every_glyph(zh_drill):
    with language("zh"):
        fig = timeline.draw(zh_drill)
    title = fig.axes[0].get_title(loc="left")
    assert CJK.search(title), title          # the drill's Chinese summary is in the chart
    with matplotlib.rc_context():
        assert missing_glyphs(lambda: png_in("zh", zh_drill)) == []


def test_without_a_cjk_font_the_same_chart_warns_of_missing_glyphs(zh_drill, monkeypatch):
    """The broken case the test above would catch: no CJK fallback, Chinese drawn as boxes."""
    monkeypatch.setattr(fonts, "cjk_family", lambda: None)
    with matplotlib.rc_context({"font.family": ["sans-serif"], "font.sans-serif": ["DejaVu Sans"]}):
        assert missing_glyphs(lambda: png_in("zh", zh_drill))


def png_in(lang: str, drill) -> bytes:
    with language(lang):
        return timeline.png(drill)


def chart_words(fig) -> list[str]:
    """Every text the chart shows: title, axis label, lane names, legend, marks, RTO labels."""
    ax = fig.axes[0]
    return [ax.get_title(loc="left"), ax.get_xlabel(), *(tk.get_text() for tk in ax.get_yticklabels()),
            *(tx.get_text() for tx in fig.legends[0].get_texts()), *(tx.get_text() for tx in ax.texts)]


def test_a_chart_made_in_chinese_says_its_own_words_in_chinese(zh_drill):
    """Legend, axis, lanes, RTO and the lab's own marks (fault, undo, restore, the promotion the watch
    saw) are Chinese; member, node and path names stay as they are."""
    with language("zh"):
        zh = chart_words(timeline.draw(zh_drill))
    with language("en"):
        en = chart_words(timeline.draw(zh_drill))
    assert "演练开始后的秒数" in zh and "主库" in zh and "写入成功" in zh and "无采样" in zh
    assert any(w.startswith("写入 ") for w in zh) and any(w.startswith("RTO ") and w.endswith(" 秒") for w in zh)
    assert "seconds since the drill started" in en and "primary" in en and "write ok" in en
    marks = [tx for tx in zh if tx.startswith(("故障：", "撤销：", "撤销故障"))]
    assert marks, zh
    english = re.compile(r"\b[A-Za-z]{3,}(?: [A-Za-z]{2,}){2,}")        # three English words in a row
    assert [w for w in zh if english.search(w)] == []


def test_english_charts_keep_their_title_and_need_no_cjk_font(zh_drill):
    with language("en"):
        fig = timeline.draw(zh_drill)
    assert not CJK.search(fig.axes[0].get_title(loc="left"))


def made_in(folder, lang: str) -> runs.Run:
    meta = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**meta, "lang": lang}))
    return runs.load(folder)


def test_a_report_of_a_run_made_in_chinese_gives_each_drill_its_chinese_words(zh_drill, tmp_path):
    from lab.i18n import drill_text
    with language("zh"):
        summary = drill_text("primary-patroni-kill", "summary")
    run = made_in(zh_drill.folder.parent, "zh")
    written = render.write(run, tmp_path / "out")
    page, md = written.html.read_text(encoding="utf-8"), written.markdown.read_text(encoding="utf-8")
    assert summary in page and "§5 故障表第 8 行" in page
    assert summary in md
    english = render.write(made_in(zh_drill.folder.parent, "en"), tmp_path / "out-en")
    assert not CJK.search(english.markdown.read_text(encoding="utf-8").split("## ", 1)[1].split("![", 1)[0])
