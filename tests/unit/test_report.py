"""`invoke report`: timelines and verdict tables drawn from run folders (synthetic ones here,
shaped as the runner writes them; tests/live/test_70_report.py draws a real one)."""
from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from invoke import Context, Exit
from PIL import Image, ImageStat

from lab.cli.report import report
from lab.report import render, runs, timeline
import synthetic_runs as synth

KILL = {"primary-patroni-kill": synth.primary_patroni_kill}
THREE = {"primary-patroni-kill": synth.primary_patroni_kill,
         "replica-pg-stop": lambda: synth.replica_fault("replica-pg-stop"),
         "etcd-down": lambda: synth.replica_fault("etcd-down", "fail", "pg3 stayed stopped, not a replica")}


@pytest.fixture
def lab_dir(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    return tmp_path


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def kill_drill(lab_dir: Path) -> runs.DrillRun:
    folder = synth.write_run(lab_dir, "20261201T001000Z", "primary-patroni-kill", KILL)
    return runs.load(folder).drills[0]


# --- lanes: what the chart will show --------------------------------------------------------

def test_lanes_hold_the_overlap_the_vip_on_two_nodes_and_the_write_gap(lab_dir):
    ln = timeline.lanes(kill_drill(lab_dir))
    assert timeline.double_primary(ln) == [(26.0, 41.0)]
    assert any(s.value == ("node1", "node2") and s.start == 26.5 for s in ln.vips["read_write"])
    gaps = timeline.write_gaps(ln.writes["vip"])
    assert len(gaps) == 1 and gaps[0][0] == pytest.approx(27.95) and gaps[0][1] == pytest.approx(29.05)
    assert ln.rto == {"vip": (4.0, 25.0), "haproxy": (4.0, 26.0)}
    assert [name for _, name, _ in ln.marks] == ["fault", "promotion", "undo"]


def test_the_failovers_known_phases_are_marks_and_an_unknown_one_is_not_drawn(lab_dir):
    drill = kill_drill(lab_dir)
    drill.result["failover"] = {"fault_t": 4.0, "phases": [
        {"name": "fault", "t": 0.0, "seen": "mark"}, {"name": "key_expired", "t": 21.5, "seen": "etcd"},
        {"name": "new_leader", "t": 22.0, "seen": "Patroni"}, {"name": "haproxy_up", "t": None, "seen": "no view"}]}
    ln = timeline.lanes(drill)
    assert [(at, label) for at, name, label in ln.marks if name == "phase"] == [(25.5, "key_expired"), (26.0, "new_leader")]
    assert timeline.mark_label("phase", "key_expired") == "leader key expired"


def test_a_lane_shows_a_hole_where_the_watch_took_no_sample():
    segs = timeline.segments([(0, "replica"), (0.5, "replica"), (6.0, "replica"), (6.5, "stopped")],
                             max_gap=2.0, tail=0.5)
    assert [(s.start, s.end, s.value) for s in segs] == [
        (0, 2.5, "replica"), (6.0, 6.5, "replica"), (6.5, 7.0, "stopped")]


def test_a_path_that_never_came_back_has_an_open_gap():
    assert timeline.write_gaps([(0, True), (1, False), (2, False)]) == [(0, None)]
    assert timeline.write_gaps([(0, False), (1, True)]) == [(0, 1)]


# --- the chart -------------------------------------------------------------------------------

def colour_pixels(img: Image.Image, hex_colour: str, tolerance: int = 12) -> int:
    want = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return sum(n for n, px in img.getcolors(maxcolors=1 << 20)
               if all(abs(a - b) <= tolerance for a, b in zip(px[:3], want)))


def test_chart_draws_members_vips_and_writes(lab_dir):
    img = Image.open(io.BytesIO(timeline.png(kill_drill(lab_dir)))).convert("RGB")
    w, h = img.size
    plot = img.crop((int(w * 0.1), int(h * 0.1), int(w * 0.95), int(h * 0.8)))
    assert ImageStat.Stat(plot.convert("L")).var[0] > 1000, "the chart area is (nearly) blank"
    assert colour_pixels(plot, timeline.OUTCOME_COLOURS["primary"]) > 8000      # two primary bars
    assert colour_pixels(plot, timeline.VIP_MANY) > 2000                        # VIP held twice
    assert colour_pixels(plot, timeline.WRITE_OK) > 800


def test_a_drill_without_events_says_so_instead_of_an_empty_chart(lab_dir):
    folder = synth.write_run(lab_dir, "20261201T001000Z", "x", KILL)
    (folder / "primary-patroni-kill" / "events.jsonl").unlink()
    d = runs.load(folder).drills[0]
    assert timeline.lanes(d).empty
    img = Image.open(io.BytesIO(timeline.png(d))).convert("RGB")
    assert colour_pixels(img, timeline.OUTCOME_COLOURS["primary"]) < 400   # the legend's swatch only
    assert colour_pixels(img, "#d62728") > 100          # the red sentence saying nothing was recorded
    assert render.figures(d).samples == 0


# --- the page and the summary ----------------------------------------------------------------

def test_three_drills_give_one_page_with_a_verdict_table_and_three_timelines(lab_dir):
    folder = synth.write_run(lab_dir, "20261201T002000Z", "all", THREE)
    written = render.write(runs.load(folder))
    page = written.html.read_text()
    table = page[page.index("<table id=verdicts>"):page.index("</table>")]
    for name in THREE:
        assert f'<a href="#drill-{name}">{name}</a>' in table
        assert f'<section id="drill-{name}">' in page
    assert page.index("<table id=verdicts>") < page.index("<section")
    assert page.count('src="data:image/png;base64,') == 3
    assert ">fail<" in table and "pg3 stayed stopped" in table
    md = written.markdown.read_text()
    assert all(f"[{n}](#drill-{n})" in md and f"![timeline of {n}]({n}.png)" in md for n in THREE)
    assert sorted(p.name for p in written.charts) == sorted(f"{n}.png" for n in THREE)


def test_the_page_needs_no_network(lab_dir):
    page = render.write(runs.load(synth.write_run(lab_dir, "20261201T001000Z", "k", KILL))).html.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page


def test_figures_say_what_was_measured_and_what_was_not(lab_dir):
    d = kill_drill(lab_dir)
    f = render.figures(d)
    assert f.rto == {"vip": 25.0, "haproxy": 26.0} and f.lost == 20 and f.split_brain_s == 15.0
    assert f.outage == {"vip": 1.0, "haproxy": 23.0} and f.after_fork == {"vip": 20, "haproxy": 0}
    assert f.attempts["vip"] == (590, 10)
    d.result["writes"]["paths"]["haproxy"]["open"] = True            # it never came back
    assert render.figures(d).outage["haproxy"] is None
    d.result.pop("writes"), d.result.pop("split_brain"), d.result.pop("watch")
    f = render.figures(d)
    assert render._lost(f.lost) == "not counted"
    assert f.outage["vip"] == pytest.approx(1.1)          # from the write events: 27.95 to 29.05
    assert f.split_brain_s == 15.0          # measured from the samples when the result lacks it
    d.events = [e for e in d.events if e["type"] != "sample"]
    assert render._split(render.figures(d)) == "not observed (no sample)"


def test_a_torn_last_line_is_counted_not_fatal(lab_dir):
    folder = synth.write_run(lab_dir, "20261201T001000Z", "k", KILL)
    with open(folder / "primary-patroni-kill" / "events.jsonl", "a") as f:
        f.write('{"t": 61.0, "type": "sam')
    d = runs.load(folder).drills[0]
    assert d.bad_lines == 1 and len(d.events) > 1000
    assert "1 line(s) of events.jsonl could not be read" in render.html_page(runs.load(folder), {d.name: b""})


# --- the command -----------------------------------------------------------------------------

def test_report_defaults_to_the_latest_run_and_leaves_earlier_runs_unchanged(lab_dir, capsys):
    earlier = synth.write_run(lab_dir, "20261201T001000Z", "primary-patroni-kill", KILL)
    before = tree_digest(earlier)
    later = synth.write_run(lab_dir, "20261201T002000Z", "all", THREE)
    report(Context())
    out = capsys.readouterr().out
    assert later.name in out and (lab_dir / "reports" / later.name / "report.html").is_file()
    report(Context(), run="20261201T0010")              # a prefix names the earlier run
    assert (lab_dir / "reports" / earlier.name / "report.html").is_file()
    assert tree_digest(earlier) == before                # reports never write into a run folder
    assert earlier.is_dir() and later.is_dir()


@pytest.mark.parametrize("name, words", [("nope", "no run named 'nope'"), ("2026", "names 2 runs")])
def test_a_bad_run_name_is_one_line_and_writes_nothing(lab_dir, name, words):
    synth.write_run(lab_dir, "20261201T001000Z", "a", KILL)
    synth.write_run(lab_dir, "20261201T002000Z", "b", KILL)
    with pytest.raises(Exit) as e:
        report(Context(), run=name)
    assert e.value.code == 2 and words in e.value.message and "\n" not in e.value.message
    assert not (lab_dir / "reports").exists()


def test_no_run_yet_says_what_to_do(lab_dir):
    with pytest.raises(Exit) as e:
        report(Context())
    assert "invoke exercise" in e.value.message and not (lab_dir / "reports").exists()


def test_run_json_drill_order_is_kept(lab_dir):
    folder = synth.write_run(lab_dir, "20261201T002000Z", "all", THREE)
    meta = json.loads((folder / "run.json").read_text())
    assert [d.name for d in runs.load(folder).drills] == meta["drills"]


def test_without_a_promotion_mark_the_chart_marks_the_promotion_the_watch_saw(lab_dir):
    folder = synth.write_run(lab_dir, "20261201T001000Z", "k", KILL)
    events = folder / "primary-patroni-kill" / "events.jsonl"
    events.write_text("".join(line + "\n" for line in events.read_text().splitlines() if '"promotion"' not in line))
    ln = timeline.lanes(runs.load(folder).drills[0])
    assert [(t, name, label) for t, name, label in ln.marks if name == "promotion"] == [
        (26.0, "promotion", "pg2 primary (seen by the watch)")]
