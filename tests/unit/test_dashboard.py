"""The live page's data: a seat's current events read incrementally, served as JSON on loopback, and
drawn by a real browser (headless Chromium) from the same events the report reads."""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from lab.dashboard import feed, server
from tests.unit import synthetic_runs as runs


def open_run(lab_dir: Path) -> Path:
    """A run still going on (finished null), holding primary-patroni-kill's events."""
    folder = runs.write_run(lab_dir, "20261201T001000Z", "primary-patroni-kill",
                            {"primary-patroni-kill": runs.primary_patroni_kill})
    info = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**info, "finished": None}))
    return folder


def test_an_open_runs_newest_drill_is_the_stream_and_a_finished_run_is_not(tmp_path):
    assert feed.current(tmp_path).kind == "none"
    folder = open_run(tmp_path)
    s = feed.current(tmp_path)
    assert (s.kind, s.drill, s.path) == ("drill", "primary-patroni-kill", folder / "primary-patroni-kill" / "events.jsonl")
    info = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**info, "finished": "2026-12-01T00:11:00Z"}))
    assert feed.current(tmp_path).kind == "none"
    (tmp_path / feed.IDLE_FOLDER).mkdir()
    (tmp_path / feed.IDLE_FOLDER / "events.jsonl").write_text("")
    assert feed.current(tmp_path).kind == "idle"


def test_events_are_read_from_an_offset_and_a_line_being_written_waits(tmp_path):
    f = tmp_path / "events.jsonl"
    f.write_text('{"t": 1, "type": "mark"}\n{"t": 2, "type": "sam')
    events, offset = feed.read_events(f)
    assert [e["t"] for e in events] == [1] and offset == len('{"t": 1, "type": "mark"}\n')
    with f.open("a") as out:
        out.write('ple"}\n')
    events, offset2 = feed.read_events(f, offset)
    assert [e["type"] for e in events] == ["sample"] and offset2 == f.stat().st_size


def get(base: str, path: str):
    with urllib.request.urlopen(base + path, timeout=5) as r:
        return r.status, r.read()


@pytest.fixture
def served(tmp_path):
    open_run(tmp_path)
    httpd = server.serve(feed.seats(None, tmp_path), "127.0.0.1", 0)
    yield tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_the_server_hands_out_a_seats_events_in_pieces_and_says_when_the_stream_moved(served):
    lab_dir, base = served
    assert json.loads(get(base, "/api/seats")[1]) == [{"key": "lab", "title": "lab"}]
    stream = json.loads(get(base, "/api/stream?seat=lab")[1])
    assert stream["kind"] == "drill" and stream["drill"] == "primary-patroni-kill" and stream["id"]
    moved = json.loads(get(base, "/api/events?seat=lab&id=old&offset=0")[1])
    assert moved["moved"] and moved["id"] == stream["id"] and moved["events"] == []
    got = json.loads(get(base, f"/api/events?seat=lab&id={stream['id']}&offset=0")[1])
    assert got["events"][0]["type"] == "mark" and any(e["type"] == "write" for e in got["events"])
    again = json.loads(get(base, f"/api/events?seat=lab&id={stream['id']}&offset={got['offset']}")[1])
    assert again["events"] == []
    assert json.loads(get(base, "/api/strings?lang=zh")[1])["primary"] == "主库"
    assert get(base, "/app.js")[0] == 200
    with pytest.raises(urllib.error.HTTPError):
        get(base, "/../server.py")


def test_a_trainees_view_of_the_exam_hides_the_fault(tmp_path):
    folder = tmp_path / "runs" / "20261201T001000Z-exam"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"run": folder.name, "finished": None}))
    (folder / "exam.json").write_text(json.dumps({"answers": [{"drill": "x", "right": False}], "hints": 1}))
    (folder / "fault.json").write_text(json.dumps({"state": "running", "drill": "replica-pg-stop", "node": "node2",
                                                   "what": "PostgreSQL stopped"}))
    trainer = feed.exam_view(tmp_path, trainer=True)
    trainee = feed.exam_view(tmp_path, trainer=False)
    assert trainer["fault"]["drill"] == "replica-pg-stop" and "fault" not in trainee
    assert trainee == {k: v for k, v in trainer.items() if k != "fault"}
    assert (trainee["open"], trainee["answers"], trainee["right"], trainee["hints"]) == (True, 1, False, 1)


CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (scripts/bootstrap.sh installs it)")
def test_a_browser_draws_the_leader_change_and_the_vip_move_from_the_runs_events(served, tmp_path):
    _, base = served
    profile = tmp_path / "profile"
    p = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=8000",
                        "--dump-dom", base + "/?lang=zh"], capture_output=True, text=True, timeout=120)
    dom = p.stdout
    assert 'data-drill="primary-patroni-kill"' in dom, dom[-2000:]
    seen = json.loads(dom.split('<pre id="seen" hidden="hidden">')[1].split("</pre>")[0])
    leaders = [s["value"] for s in seen if s["what"] == "leader"]
    holders = [s["value"] for s in seen if s["what"] == "read_write"]
    # the page follows the run to its end: pg2 primary, the VIP on node2 only, and the fault marked
    assert leaders[-1] == "pg2" and holders[-1] == "node2", seen
    assert 'data-member="pg2"' in dom and "主库" in dom and 'data-phase="pass"' in dom   # the run's verdict
