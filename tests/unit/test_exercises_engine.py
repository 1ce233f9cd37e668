"""The drill engine without machines: bounded polls on a fake clock, the multiplier, the registry."""
from __future__ import annotations

import re

import pytest

from lab.exercises import DRILLS, DrillError, lookup
from lab.exercises.api.timing import timeout_scale
from labcore.poll import holds as poll_holds, until as poll_until

from fake_clock import FakeClock


def test_poll_until_returns_how_long_it_took():
    clock = FakeClock()
    answers = iter([False, False, False, True])
    ok, elapsed, _ = poll_until(lambda: next(answers), within=30, every=2, clock=clock)
    assert ok and elapsed == 6


def test_poll_until_gives_up_at_the_bound_and_never_sleeps_past_it():
    clock = FakeClock()
    ok, elapsed, last = poll_until(lambda: False, within=5, every=2, clock=clock)
    assert not ok and elapsed == 5 and clock.now == 5
    assert clock.sleeps == [2, 2, 1]
    assert last == "False"


def test_poll_until_treats_an_exception_as_not_yet_and_reports_it():
    clock = FakeClock()
    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("refused")
        return "pg2"
    ok, elapsed, _ = poll_until(flaky, within=10, every=1, clock=clock)
    assert ok and elapsed == 2
    ok, _, last = poll_until(lambda: 1 / 0, within=2, every=1, clock=FakeClock())
    assert not ok and "ZeroDivisionError" in last


def test_poll_holds_fails_at_the_first_false_answer():
    clock = FakeClock()
    answers = iter([True, True, False, True])
    ok, elapsed, _ = poll_holds(lambda: next(answers), duration=10, every=1, clock=clock)
    assert not ok and elapsed == 2


def test_poll_holds_passes_after_the_whole_period():
    clock = FakeClock()
    ok, elapsed, _ = poll_holds(lambda: True, duration=10, every=3, clock=clock)
    assert ok and elapsed == 10


def test_timeout_scale_from_env_then_config(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))      # no lab here: nothing recorded a scale
    monkeypatch.delenv("LAB_TIMEOUT_SCALE", raising=False)
    assert timeout_scale() == 1.0
    assert timeout_scale("2.5") == 2.5
    monkeypatch.setenv("LAB_TIMEOUT_SCALE", "3")
    assert timeout_scale("2.5") == 3.0


@pytest.mark.parametrize("bad", ["fast", "0", "-1", "100"])
def test_timeout_scale_rejects_bad_values_in_one_line(monkeypatch, bad):
    monkeypatch.setenv("LAB_TIMEOUT_SCALE", bad)
    with pytest.raises(DrillError) as e:
        timeout_scale()
    assert "\n" not in str(e.value) and bad in str(e.value)


def test_every_row_of_the_article_table_and_each_subsection_has_a_drill():
    sections = " ".join(d.section for d in DRILLS.values())
    for row in range(1, 12):
        assert re.search(rf"row {row}\b", sections), row
    for sub in ("§5.1", "§5.2", "§5.3"):
        assert sub in sections


@pytest.mark.parametrize("name", list(DRILLS))
def test_each_drill_reads_like_a_script(name):
    d = DRILLS[name]
    assert d.name == name and len(d.summary) < 140
    assert d.story.strip() and d.expected.strip() and d.differs.strip()
    assert d.run is not DRILLS[name].__mro__[-2].run   # implements run()


def test_lookup_all_and_by_name():
    assert lookup(["all"]) == list(DRILLS.values())
    assert lookup(["etcd-down"]) == [DRILLS["etcd-down"]]


def test_unknown_drill_is_one_line_naming_the_known_ones():
    with pytest.raises(DrillError) as e:
        lookup(["etcd-dwn"])
    msg = str(e.value)
    assert "\n" not in msg and "etcd-dwn" in msg and "etcd-down" in msg and "all" in msg


def test_docs_pages_match_the_drills():
    """docs/drills/ is generated from the drills (python -m lab.exercises.pages); stale docs fail here."""
    from lab.exercises.pages import expected_files
    for path, text in expected_files().items():
        assert path.exists(), f"{path} missing: run python -m lab.exercises.pages"
        assert path.read_text() == text, f"{path} is stale: run python -m lab.exercises.pages"


def test_the_scale_option_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("LAB_TIMEOUT_SCALE", "3")
    assert timeout_scale("2.5", option="2") == 2.0
    assert timeout_scale("2.5") == 3.0
