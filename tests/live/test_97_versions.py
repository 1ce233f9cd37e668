"""Tier 3: another Patroni/PostgreSQL pair than the default, beside the session's lab (docs/versions.md).

`invoke up` with a topology asking for the pair (LAB_VERSION_PAIR, default 2.1.7/15: the release
before the master -> primary renames) ends provisioned; the nodes' REST APIs report the versions
asked for; a drill of the §5 table whose expectations depend on the release (`primary-pg-stop`:
master_start_timeout before Patroni 3.0) ends in pass or differs; `invoke down` leaves nothing.
And a pair the lab refuses is one line, before anything is created.

The pair's lab lives in 192.168.239.0/24 (bridge <lab bridge>v1), its state in a folder of its own.
Cost: about 5 min on the 2-core build machine (the pair's preinstalled image, `up`, one drill, down);
the whole matrix is scripts/version-matrix.sh.
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labcore import topology
from lab.workshop import seats

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).with_name("invoke"))
PAIR = os.environ.get("LAB_VERSION_PAIR", "2.1.7/15")
BASE = ipaddress.IPv4Network("192.168.238.0/24")      # seat 1 of it: 192.168.239.0/24

pytestmark = pytest.mark.live


def pair_topology(folder: Path, patroni: str, postgres: int, bridge: str) -> Path:
    """The shipped topology moved to its own subnet, with the pair's options."""
    data = yaml.safe_load(topology.DEFAULT_PATH.read_text())
    out = seats.derive(data, 1, BASE, f"{bridge}v")
    out["lab"]["name"] = f"{data['lab']['name']}-v1"
    out["options"].update(patroni_version=patroni, postgres_version=postgres)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "topology.yml"
    path.write_text(yaml.safe_dump(out, sort_keys=False))
    return path


def run(args: list[str], env: dict[str, str], timeout: int = 1500) -> subprocess.CompletedProcess:
    return subprocess.run([INVOKE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, COLUMNS="200", **env))


def containers(name: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=patroni-lab.lab={name}"],
                         capture_output=True, text=True)
    return out.stdout.split()


def test_a_pair_the_lab_refuses_is_one_line_and_makes_nothing(tmp_path):
    base = yaml.safe_load(topology.DEFAULT_PATH.read_text())
    path = pair_topology(tmp_path / "refused", "2.0.7", 15, base["lab"]["bridge"])
    env = {"LAB_TOPOLOGY": str(path), "LAB_DIR": str(tmp_path / "refused")}
    up = run(["up"], env, timeout=120)
    err = up.stderr.strip()
    assert up.returncode == 2 and "\n" not in err and "predates PostgreSQL 15" in err, up.stdout + up.stderr
    assert containers(f"{base['lab']['name']}-v1") == []


def test_another_pair_comes_up_reports_its_versions_and_drills(tmp_path_factory):
    patroni, postgres = PAIR.split("/")
    base = yaml.safe_load(topology.DEFAULT_PATH.read_text())
    folder = tmp_path_factory.mktemp("pair")
    path = pair_topology(folder, patroni, int(postgres), base["lab"]["bridge"])
    env = {"LAB_TOPOLOGY": str(path), "LAB_DIR": str(folder)}
    name = f"{base['lab']['name']}-v1"
    run(["down"], env, timeout=300)
    try:
        up = run(["up"], env)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
        drill = run(["exercise", "primary-pg-stop", "--auto"], env, timeout=900)
        results = sorted(folder.glob("runs/*/primary-pg-stop/result.json"))
        assert results, drill.stdout[-3000:] + drill.stderr[-2000:]
        res = json.loads(results[-1].read_text())
        meta = json.loads((results[-1].parent.parent / "run.json").read_text())
        # what the nodes ran, by their own REST APIs: the pair asked for, not the default
        assert meta["versions"]["patroni"] == patroni, meta
        assert meta["versions"]["postgres"].split(".")[0] == postgres, meta
        assert res["verdict"] in ("pass", "differs"), json.dumps(
            {k: res.get(k) for k in ("verdict", "reason", "checks")}, indent=1, default=str)[-3000:]
    finally:
        down = run(["down"], env, timeout=600)
    assert down.returncode == 0, down.stdout[-2000:] + down.stderr[-2000:]
    assert containers(name) == []
