"""Tier 3, after the drills: what a trainer sees. The health check and heal on a broken replica,
`invoke up`'s progress in a terminal (read from a tmux screen) and as plain lines in a log, and
the report of a real three-drill run rendered by headless Chromium.

Kept short: one run of three drills, one re-provision, one broken replica. The screenshot and the HTML
stay under $LAB_DIR/reports/<run>/ for a person to look at.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from labcore import state as lab_state
from lab.exercises.kit.actions import pg_ctl
from lab.exercises.kit import sql
from lab.exercises.kit.facts import Facts
from lab.exercises.kit.probe import Probe
from lab.exercises.kit.shell import SshShell
from lab.report import runs, timeline
from labcore import poll

pytestmark = pytest.mark.live
ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).with_name("invoke"))
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"              # rich's "dots" spinner


# --- status --check and heal ---------------------------------------------------------------

def test_status_check_names_a_stopped_replica_and_heal_brings_the_lab_back(provisioned_lab, lab_cli):
    topo = provisioned_lab
    before = lab_cli("status", "--check", timeout=120)
    assert before.rc == 0, before.output
    shell = SshShell(topo)
    replica = Probe(topo, shell).replicas()[-1]
    node = topo.node(replica).name
    # Patroni would start the stopped PostgreSQL again within a loop_wait, maybe before the check
    # looks: freeze it first (SIGSTOP, undone by heal's repair), then stop PostgreSQL by hand.
    frozen = shell.run(node, "sudo kill -STOP $(systemctl show -p MainPID --value patroni)")
    assert frozen.ok, frozen.stderr
    stopped = shell.run(node, pg_ctl(Facts(topo, shell), node, "stop"))
    assert stopped.ok, stopped.stdout + stopped.stderr
    # what a drill killed before its restore leaves in the DCS (etcd-retry-timeout changes this key)
    Probe(topo, shell).patch_config({"retry_timeout": 11})

    broken = lab_cli("status", "--check", timeout=120)
    assert broken.rc == 1, broken.output
    assert f"PostgreSQL answers on every member: no answer from: {replica}" in broken.output.splitlines()
    assert "Patroni's dynamic configuration as provisioned: retry_timeout: 11 -> 10" in broken.output.splitlines()

    healed = lab_cli("heal", timeout=600)
    assert healed.rc == 0, healed.output
    assert f"found: PostgreSQL answers on every member: no answer from: {replica}" in healed.output
    assert "fixed: PostgreSQL answers on every member" in healed.output
    assert "fixed: Patroni's dynamic configuration as provisioned: as provisioned" in healed.output
    assert Probe(topo, shell).dynamic_config()["retry_timeout"] == 10
    after = lab_cli("status", "--check", timeout=120)
    assert after.rc == 0 and after.output.startswith("healthy:"), after.output


def test_heal_puts_back_max_connections_a_killed_drill_left_and_restarts_the_primary_first(provisioned_lab, lab_cli):
    """The `parameters` drill killed after its restart: every member runs max_connections=300 from the
    DCS. Heal puts the DCS back, which flags every member pending restart, and restarts them."""
    topo = provisioned_lab
    shell = SshShell(topo)
    probe = Probe(topo, shell)
    members = [n.member for n in topo.postgres_nodes]
    leader = probe.leader()
    provisioned = sql.setting(topo, leader, "max_connections")
    assert provisioned not in (None, "300")
    probe.patch_config({"postgresql": {"parameters": {"max_connections": 300}}})
    assert poll.poll(lambda: all(probe.member_state(m).get("pending_restart") for m in members),
                     within=poll.scaled(60), every=1).ok
    restarted = shell.run(topo.node(leader).name,
                          "sudo -u postgres patronictl -c /etc/patroni restart pgsql --force", timeout=300)
    assert restarted.ok, restarted.stdout + restarted.stderr

    def running(value: str) -> bool:
        return all(sql.setting(topo, m, "max_connections") == value for m in members)
    assert poll.poll(lambda: running("300"), within=poll.scaled(90), every=1).ok

    broken = lab_cli("status", "--check", timeout=120)
    assert broken.rc == 1, broken.output
    assert ("Patroni's dynamic configuration as provisioned: postgresql.parameters.max_connections: 300 -> removed"
            in broken.output.splitlines())
    healed = lab_cli("heal", timeout=600)
    assert healed.rc == 0, healed.output
    assert "did: restarting the members pending restart (the primary first)" in healed.output
    assert running(provisioned) and probe.leader() == leader, healed.output
    after = lab_cli("status", "--check", timeout=120)
    assert after.rc == 0 and after.output.startswith("healthy:"), after.output


# --- invoke up's progress ------------------------------------------------------------------

def test_up_in_ci_writes_plain_lines(lab_up_run):
    out = lab_up_run.output
    assert "\x1b[" not in out and "\r" not in out and not set(SPINNER) & set(out)
    steps = re.findall(r"^\s*[\d.]+s step (\d+)/11 ", out, re.M)
    assert steps == [str(n) for n in range(1, 12)], out[-3000:]
    assert "timings (s):" in out and re.search(r"^\s+total\s+[\d.]+$", out, re.M)


def test_up_in_a_terminal_shows_step_node_and_elapsed_progress(provisioned_lab):
    if not shutil.which("tmux"):
        pytest.fail("tmux is missing: scripts/bootstrap.sh installs it")
    session = f"plab-up-{uuid.uuid4().hex[:8]}"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in os.environ.items() if k.startswith(("LAB_", "INVOKE_")))
    command = f"cd {shlex.quote(str(ROOT))} && env {env} {shlex.quote(INVOKE)} up; echo UP-EXIT=$?; sleep 3600"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "50", command], check=True)
    screens: list[str] = []

    def screen_done() -> bool:
        text = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                              text=True).stdout
        screens.append(text)
        return "UP-EXIT=" in text

    try:
        assert poll.poll(screen_done, within=poll.scaled(900), every=0.5).ok, screens[-1:]
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    final = screens[-1]
    log = lab_state.lab_dir() / "test-up-terminal.txt"
    log.write_text("\n\f\n".join(screens))
    assert "UP-EXIT=0" in final, final
    # While it ran: the last line was a live status line (spinner, step n/11, seconds elapsed).
    live = [s.rstrip().splitlines()[-1] for s in screens[:-1] if s.strip()]
    assert any(re.match(rf"^[{SPINNER}] step \d+/11 \w+ .*\s\d+s$", line) for line in live), live[-5:]
    # Node lines appear as each node finishes, above the status line; the table ends the run.
    assert re.search(r"^\s*[\d.]+s\s+node\d: (ok|changed):", final, re.M), final
    assert "timings (s):" in final and re.search(r"^\s+total\s+[\d.]+\s*$", final, re.M), final
    assert not any(ch in final.split("timings (s):")[1] for ch in SPINNER)     # the live line is gone


# --- the report of a real drill ---------------------------------------------------------------

def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def chromium(*args: str, profile: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("chromium is missing: scripts/bootstrap.sh installs Debian's package")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120)


THREE = ("primary-patroni-kill", "replica-pg-stop", "replica-patroni-stop")


def test_report_of_a_real_three_drill_run_draws_each_timeline_in_chromium(provisioned_lab, lab_cli):
    """One run of three drills (a primary kill and two quick replica faults): one report, a verdict table
    of three rows, three timelines; the primary kill's chart shows the overlap and the VIP on two nodes."""
    earlier = {p: digest(p) for p in runs.list_runs()}
    drill = lab_cli("exercise", ",".join(THREE), "--auto", timeout=2400)
    assert drill.rc == 0, drill.tail(60)
    made = lab_cli("report")
    assert made.rc == 0, made.output
    folder = runs.find(None)
    assert folder not in earlier and folder.name.endswith("-3-drills")
    assert {p: digest(p) for p in earlier} == earlier            # earlier runs untouched
    page = runs.reports_dir() / folder.name / "report.html"
    assert str(page) in made.output
    html = page.read_text()
    assert html.count('<img class="chart"') == 3, "one timeline per drill"

    # What the chart must show, from the run's own events: two primaries, the VIP on two nodes.
    loaded = runs.load(folder)
    assert [d.name for d in loaded.drills] == list(THREE)
    d = loaded.drills[0]
    lanes = timeline.lanes(d)
    assert timeline.double_primary(lanes), "the run's samples show no double primary"
    assert any(len(s.value) > 1 for s in lanes.vips.get("read_write", [])), "the VIP was never on two nodes"

    shot = page.with_name("screenshot.png")
    with tempfile.TemporaryDirectory() as profile:
        dom = chromium("--dump-dom", page.as_uri(), profile=profile)
        assert dom.returncode == 0, dom.stderr[-2000:]
        table = dom.stdout[dom.stdout.index('<table id="verdicts">'):]
        table = table[:table.index("</table>")]
        for name in THREE:
            assert f'<a href="#drill-{name}">{name}</a>' in table
        r = chromium(f"--screenshot={shot}", "--window-size=1300,1400", "--hide-scrollbars", page.as_uri(),
                     profile=profile)
        assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    # The chart area: where the lanes' colours are. Not blank, and the double primary is framed.
    primary = [(x, y) for (x, y) in _pixels_of(img, timeline.OUTCOME_COLOURS["primary"])]
    assert len(primary) > 2000, "no primary lane drawn in the screenshot"
    xs, ys = [p[0] for p in primary], [p[1] for p in primary]
    chart = img.crop((min(xs), min(ys), max(xs) + 1, max(ys) + 1))
    assert ImageStat.Stat(chart.convert("L")).var[0] > 500, "the chart area is (nearly) blank"
    assert len(_pixels_of(img, timeline.VIP_MANY)) > 300, "nothing drawn for two primaries / the VIP twice"


def _pixels_of(img: Image.Image, hex_colour: str, tolerance: int = 10) -> list[tuple[int, int]]:
    want = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    w, h = img.size
    px = img.load()
    return [(x, y) for y in range(0, h, 2) for x in range(0, w, 2)
            if all(abs(a - b) <= tolerance for a, b in zip(px[x, y], want))]
