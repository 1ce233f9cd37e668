"""The one Vagrantfile: `vagrant validate` passes for every provider block, reads LAB_TOPOLOGY,
and really checks the libvirt and virtualbox blocks (a broken copy fails).

Vagrant runs here with stand-ins for the tools it asks (`VBoxManage --version`,
`docker version`): it checks the file and reaches neither a hypervisor nor the Docker engine.
Each run spends seconds starting Ruby and Vagrant's plugins, so the module starts them all
at once (as many at a time as there are cores) and each test reads its own."""
from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import yaml

import hermetic
from labcore.topology import DEFAULT_PATH, ROOT

pytestmark = [pytest.mark.skipif(not shutil.which("vagrant"), reason="vagrant is not installed"),
              pytest.mark.local_tool("vagrant")]

BROKEN = {"libvirt": "lv", "virtualbox": "vb"}      # provider -> its block's variable in the Vagrantfile


def stand_ins(d: Path) -> Path:
    """A VBoxManage and a docker that only print a version: enough for validate to check the
    virtualbox block, and for the docker provider to count as usable. Anything else fails loudly."""
    d.mkdir()
    for tool, version in (("VBoxManage", "7.0.14r161095"), ("docker", "Docker version 28.2.2")):
        (d / tool).write_text("#!/bin/sh\n"
                              f'case "$*" in --version|version) echo "{version}"; exit 0 ;; esac\n'
                              f'echo "unexpected call: {tool} $*" >&2; exit 3\n')
        (d / tool).chmod(0o755)
    return d


def broken_copy(d: Path, block: str) -> Path:
    """topology.yml and a Vagrantfile whose ``block`` sets a setting no provider has."""
    d.mkdir()
    shutil.copy(DEFAULT_PATH, d / "topology.yml")
    text = (ROOT / "Vagrantfile").read_text()
    (d / "Vagrantfile").write_text(text.replace(f"{block}.cpus = CPUS", f"{block}.cpus = CPUS; {block}.no_such_setting = 1"))
    return d


def renamed_topology(path: Path) -> Path:
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    for i, n in enumerate(data["nodes"]):
        n["name"] = f"db{i + 1}"
    data["etcd"]["members"] = ["db4"]
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class Runs:
    futures: dict[str, Future]
    refused_log: Path

    def __getitem__(self, key: str) -> subprocess.CompletedProcess:
        r = self.futures[key].result()
        # nothing beyond the stand-ins was asked: no docker, hypervisor or network (the stubs record it)
        assert not self.refused_log.exists(), self.refused_log.read_text()
        return r

    def has_libvirt_plugin(self) -> bool:
        return "vagrant-libvirt" in self["plugins"].stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory, unit_stubs) -> Iterator[Runs]:
    base = tmp_path_factory.mktemp("vagrant")
    env = hermetic.environment(dict(os.environ), unit_stubs, base)
    env["PATH"] = f"{stand_ins(base / 'bin')}:{env['PATH']}"
    vagrant = hermetic.real_tool("vagrant")
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)

    def start(key: str, provider: str, *args: str, cwd: Path = ROOT, topology: Path | None = None) -> Future:
        e = dict(env, VAGRANT_DEFAULT_PROVIDER=provider, VAGRANT_DOTFILE_PATH=str(base / key / "dot"),
                 VAGRANT_NO_COLOR="1")
        if topology:
            e["LAB_TOPOLOGY"] = str(topology)
        return pool.submit(subprocess.run, [vagrant, *args], cwd=cwd, env=e, capture_output=True, text=True,
                           timeout=300)

    futures = {"plugins": start("plugins", "docker", "plugin", "list")}
    for provider in ("docker", "libvirt", "virtualbox"):
        futures[f"validate-{provider}"] = start(f"validate-{provider}", provider, "validate")
    for provider, block in BROKEN.items():
        futures[f"broken-{provider}"] = start(f"broken-{provider}", provider, "validate",
                                              cwd=broken_copy(base / f"repo-{block}", block))
    futures["status"] = start("status", "docker", "status", "--machine-readable",
                              topology=renamed_topology(base / "alt.yml"))
    futures["unreadable"] = start("unreadable", "docker", "validate", topology=base / "missing.yml")
    yield Runs(futures, base / "refused.log")
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("provider", ["docker", "libvirt", "virtualbox"])
def test_validate_passes(runs, provider):
    if provider == "libvirt" and not runs.has_libvirt_plugin():
        pytest.fail("the vagrant-libvirt plugin is missing (scripts/bootstrap.sh installs it)")
    r = runs[f"validate-{provider}"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "validated successfully" in r.stdout


@pytest.mark.parametrize("provider, block", BROKEN.items())
def test_validate_really_checks_the_vm_blocks(runs, provider, block):
    if provider == "libvirt" and not runs.has_libvirt_plugin():
        pytest.fail("the vagrant-libvirt plugin is missing")
    assert f"{block}.cpus = CPUS" in (ROOT / "Vagrantfile").read_text()     # the copy really is broken
    r = runs[f"broken-{provider}"]
    assert r.returncode != 0 and "no_such_setting" in r.stdout + r.stderr


def test_machines_come_from_the_topology_named_by_lab_topology(runs):
    r = runs["status"]
    assert r.returncode == 0, r.stderr
    names = {line.split(",")[1] for line in r.stdout.splitlines() if ",state," in line}
    assert names == {"db1", "db2", "db3", "db4"}


def test_an_unreadable_topology_stops_vagrant_with_one_line(runs):
    r = runs["unreadable"]
    assert r.returncode != 0 and "cannot read the topology" in r.stdout + r.stderr
