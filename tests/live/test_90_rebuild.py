"""Tier 2, last: `invoke down` leaves nothing of the lab, and `invoke up` works again after it."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from lab import sshconfig
from labcore import state as lab_state

pytestmark = pytest.mark.live
LABEL = "patroni-lab.lab"


def docker_ids(kind: str, lab: str) -> list[str]:
    cmd = {"container": ["docker", "ps", "-aq"], "network": ["docker", "network", "ls", "-q"],
           "volume": ["docker", "volume", "ls", "-q"]}[kind]
    return subprocess.run([*cmd, "--filter", f"label={LABEL}={lab}"], capture_output=True, text=True,
                          check=True).stdout.split()


def test_down_leaves_no_container_network_or_volume_even_without_state(live_lab, lab_cli):
    provider = lab_state.load().provider
    # As after a crash or a deleted .lab/: down must find the lab's leftovers by itself.
    lab_state.clear()
    run = lab_cli("down")
    assert run.rc == 0, run.tail()
    assert lab_state.load().phase == "absent"
    assert not sshconfig.path().exists()
    if provider == "docker" and shutil.which("docker"):
        for kind in ("container", "network", "volume"):
            assert docker_ids(kind, live_lab.name) == [], f"{kind} left behind"
        names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True,
                               text=True).stdout.split()
        assert not [n for n in names if n in {f"{live_lab.name}-{x}" for x in live_lab.names}]
        # the bridge of the lab is gone with its network
        assert subprocess.run(["ip", "link", "show", live_lab.bridge], capture_output=True).returncode != 0


def test_status_after_down_says_the_lab_is_not_up(live_lab, lab_cli):
    run = lab_cli("status")
    assert run.rc == 0 and "the lab is not up" in run.output


def test_ssh_after_down_refuses_clearly(live_lab, lab_cli):
    run = lab_cli("ssh", live_lab.names[0], "-c", "hostname")
    assert run.rc != 0 and "the lab is not up" in run.output


def test_up_after_down_brings_the_machines_back(live_lab, lab_cli):
    run = lab_cli("up", "--machines-only", timeout=900)
    assert run.rc == 0, run.tail()
    assert "machines ready in" in run.output
    for n in live_lab.nodes:
        r = subprocess.run(["ssh", "-F", str(sshconfig.path()), "-o", "BatchMode=yes", n.name, "hostname"],
                           capture_output=True, text=True, timeout=30)
        assert r.stdout.strip() == n.name, r.stderr
