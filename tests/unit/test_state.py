"""The state file: commands run out of order refuse clearly; a broken file never blocks `down`."""
from __future__ import annotations

import pytest

from labcore import state as lab_state


@pytest.fixture(autouse=True)
def lab_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DIR", str(tmp_path / "lab"))
    return tmp_path / "lab"


def test_lab_dir_follows_the_environment(lab_dir):
    assert lab_state.lab_dir() == lab_dir and lab_dir.is_dir()
    assert lab_state.path() == lab_dir / "state.json"


def test_no_file_means_absent():
    s = lab_state.load()
    assert s.phase == "absent" and not s.is_up


def test_save_and_load_round_trip():
    lab_state.save(lab_state.State(phase="created", provider="docker", platform="debian12",
                                   interface="plab0", timings={"create": 12.5}))
    s = lab_state.load()
    assert (s.phase, s.provider, s.platform, s.interface, s.timings) == \
        ("created", "docker", "debian12", "plab0", {"create": 12.5})
    assert s.is_up


def test_clear_returns_to_absent():
    lab_state.save(lab_state.State(phase="provisioned"))
    lab_state.clear()
    assert lab_state.load().phase == "absent"
    lab_state.clear()  # twice is fine


@pytest.mark.parametrize("phase, allowed, hint", [
    ("absent", ("created", "provisioned"), "the lab is not up: run `invoke up` first"),
    ("created", ("provisioned",), "run `invoke provision` first"),
    ("provisioned", ("absent",), "run `invoke down` or `invoke rebuild`"),
])
def test_out_of_order_commands_refuse_with_what_to_run(phase, allowed, hint):
    if phase != "absent":
        lab_state.save(lab_state.State(phase=phase))
    with pytest.raises(lab_state.LabStateError) as e:
        lab_state.require(*allowed, action="do it")
    assert str(e.value).startswith("cannot do it: ") and hint in str(e.value)


def test_require_returns_the_state_when_the_phase_fits():
    lab_state.save(lab_state.State(phase="created", provider="docker"))
    assert lab_state.require("created", action="x").provider == "docker"


def test_an_unreadable_file_says_how_to_recover():
    (lab_state.lab_dir() / "state.json").write_text("{not json")
    with pytest.raises(lab_state.LabStateError, match="invoke down"):
        lab_state.load()


def test_unknown_fields_from_a_newer_version_are_ignored():
    (lab_state.lab_dir() / "state.json").write_text('{"phase": "created", "future_field": 1}')
    assert lab_state.load().phase == "created"
