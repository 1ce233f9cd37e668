"""The one polling helper and the one timeout multiplier, on the fake clock."""
from __future__ import annotations

import pytest

from labcore import poll

from fake_clock import FakeClock


@pytest.fixture(autouse=True)
def no_process_scale(monkeypatch):
    monkeypatch.delenv(poll.SCALE_ENV, raising=False)
    monkeypatch.setattr(poll, "_option", None)


def test_the_option_wins_over_the_environment_which_wins_over_the_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))      # no lab here: nothing recorded a scale
    assert poll.timeout_scale() == 1.0
    assert poll.timeout_scale(configured="1.5") == 1.5
    monkeypatch.setenv(poll.SCALE_ENV, "3")
    assert poll.timeout_scale(configured="1.5") == 3.0
    assert poll.timeout_scale(option="2", configured="1.5") == 2.0
    poll.set_scale(2.5)                       # the command's --scale, chosen once
    assert poll.timeout_scale() == 2.5        # ... and not overridden by $LAB_TIMEOUT_SCALE later


def test_slow_machines_recorded_by_their_provider_stretch_what_nothing_else_sets(monkeypatch, tmp_path):
    from labcore import state as lab_state
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    monkeypatch.delenv(poll.SCALE_ENV, raising=False)
    lab_state.save(lab_state.State(phase="created", provider="libvirt", timeout_scale=3.0))
    assert poll.timeout_scale() == 3.0                       # VMs under TCG
    assert poll.timeout_scale(configured="1.5") == 1.5       # invoke.yaml still wins
    monkeypatch.setenv(poll.SCALE_ENV, "6")
    assert poll.timeout_scale() == 6.0


def test_wait_for_stretches_its_bound_by_the_multiplier_and_returns_the_answer():
    clock = FakeClock()
    answers = iter([None, None, None, "pg2"])
    poll.set_scale(2)
    assert poll.wait_for("a leader", lambda: next(answers), timeout=5, every=1, clock=clock) == "pg2"
    clock = FakeClock()
    with pytest.raises(poll.WaitTimeout, match=r"after 10s waiting for a leader \(last seen: None\)"):
        poll.wait_for("a leader", lambda: None, timeout=5, every=1, clock=clock)
    assert clock.now == 10                    # 5 s stretched to 10, and not a second more


def test_a_bad_multiplier_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv(poll.SCALE_ENV, "fast")
    with pytest.raises(poll.ScaleError) as e:
        poll.scaled(10)
    assert "\n" not in str(e.value) and "fast" in str(e.value)
