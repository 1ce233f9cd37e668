"""The hosts provider against real machines: the running docker lab's nodes, used as
"four existing hosts" by a second lab directory.

The second lab shares the topology (the hosts must sit at the topology's
addresses), gets its own LAB_DIR, an inventory built from the docker lab's
ssh_config, and goes through the whole `up`: guard, reachability, OS detection,
ssh_config, provisioning (which finds the cluster already converged). Its `down`
must leave every node running.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest
import yaml

from labcore.state import lab_dir

pytestmark = pytest.mark.live

INVOKE = str(Path(sys.executable).parent / "invoke")
ROOT = Path(__file__).resolve().parents[2]


def run_invoke(*args: str, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([INVOKE, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def container_running(name: str) -> bool:
    r = subprocess.run(["docker", "inspect", "--format", "{{.State.Running}}", name],
                       capture_output=True, text=True)
    return r.stdout.strip() == "true"


@pytest.fixture
def hosts_lab(live_lab, tmp_path):
    """Inventory + environment of a second lab that treats the docker nodes as existing hosts."""
    topo = live_lab
    docker_cfg = paramiko.SSHConfig.from_path(str(lab_dir() / "ssh_config"))
    hosts = {}
    for n in topo.nodes:
        entry = docker_cfg.lookup(n.name)
        assert entry["hostname"] == n.address
        hosts[n.name] = {"address": n.address, "user": entry["user"],
                         "key": entry["identityfile"][0], "port": int(entry.get("port", 22))}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"hosts": hosts}))
    # The hosts provider defaults to the secure profile; these nodes run the docker lab's
    # article profile, which the second lab keeps by saying so (re-securing them would
    # change the lab the other live tests use).
    data = yaml.safe_load(topo.path.read_text())
    data.setdefault("options", {})["profile"] = "article"
    topology_file = tmp_path / "topology.yml"
    topology_file.write_text(yaml.safe_dump(data))
    env = {**os.environ, "LAB_DIR": str(tmp_path / "hosts-lab"), "LAB_INVENTORY": str(inventory),
           "LAB_TOPOLOGY": str(topology_file), "COLUMNS": "400"}   # no wrapped report lines
    return topo, env, tmp_path / "hosts-lab"


def test_up_with_hosts_provisions_existing_machines_and_down_keeps_them(hosts_lab):
    topo, env, hosts_dir = hosts_lab

    t0 = time.monotonic()
    r = run_invoke("up", "--provider", "hosts", env=env)
    took = time.monotonic() - t0
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    print(f"\n`invoke up --provider hosts` on the running docker nodes: {took:.1f} s")
    assert f"lab interface {topo.bridge}" in out, out
    for n in topo.nodes:
        assert f"hosts: {n.name} {n.address} reachable" in out and "platform debian12" in out, out
    assert "security profile: article (options.profile in topology.yml)" in out, out
    # Provisioning does not know the provider: on the already provisioned nodes it changes nothing.
    assert "provisioning: 0 change(s)" in out, out

    state = json.loads((hosts_dir / "state.json").read_text())
    assert (state["provider"], state["platform"], state["interface"], state["phase"]) == \
        ("hosts", "debian12", topo.bridge, "provisioned")
    # The new ssh_config reaches the nodes by their topology addresses.
    for n in topo.nodes:
        r = subprocess.run(["ssh", "-F", str(hosts_dir / "ssh_config"), n.member, "hostname"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == n.name, r.stderr

    r = run_invoke("down", env=env, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "hosts: nothing destroyed" in out, out
    assert not (hosts_dir / "state.json").exists() and not (hosts_dir / "ssh_config").exists()
    for n in topo.nodes:
        assert container_running(f"{topo.name}-{n.name}"), f"{n.name} was stopped by `down`"
    # ... and the original lab still answers through its own ssh_config.
    r = subprocess.run(["ssh", "-F", str(lab_dir() / "ssh_config"), topo.nodes[0].name, "true"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_inventory_with_a_foreign_address_changes_nothing(hosts_lab, tmp_path):
    topo, env, hosts_dir = hosts_lab
    inv = yaml.safe_load(Path(env["LAB_INVENTORY"]).read_text())
    inv["hosts"][topo.nodes[1].name]["address"] = "10.255.255.1"
    bad = tmp_path / "bad-hosts.yml"
    bad.write_text(yaml.safe_dump(inv))
    r = run_invoke("up", "--provider", "hosts", env={**env, "LAB_INVENTORY": str(bad)}, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert f"hosts.{topo.nodes[1].name}.address: 10.255.255.1 is not {topo.nodes[1].name}'s topology address" in out, out
    assert not (hosts_dir / "state.json").exists() and not (hosts_dir / "ssh_config").exists()
