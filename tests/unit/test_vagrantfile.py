"""The one Vagrantfile: `vagrant validate` passes for every provider block, reads LAB_TOPOLOGY,
and really checks the libvirt and virtualbox blocks (a broken copy fails).

Vagrant runs here with stand-ins for the tools it asks (`VBoxManage --version`,
`docker version`): it checks the file and reaches neither a hypervisor nor the Docker engine."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hermetic import real_tool
from labcore.topology import DEFAULT_PATH, ROOT

pytestmark = [pytest.mark.skipif(not shutil.which("vagrant"), reason="vagrant is not installed"),
              pytest.mark.local_tool("vagrant")]


@pytest.fixture
def stub_bin(tmp_path) -> Path:
    """A VBoxManage and a docker that only print a version: enough for validate to check the
    virtualbox block, and for the docker provider to count as usable. Anything else fails loudly."""
    d = tmp_path / "bin"
    d.mkdir()
    for tool, version in (("VBoxManage", "7.0.14r161095"), ("docker", "Docker version 28.2.2")):
        (d / tool).write_text("#!/bin/sh\n"
                              f'case "$*" in --version|version) echo "{version}"; exit 0 ;; esac\n'
                              f'echo "unexpected call: {tool} $*" >&2; exit 3\n')
        (d / tool).chmod(0o755)
    return d


def vagrant(tmp_path: Path, provider: str, *args: str, cwd: Path = ROOT, path: Path | None = None,
            topology: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, VAGRANT_DEFAULT_PROVIDER=provider, VAGRANT_CHECKPOINT_DISABLE="1",
               VAGRANT_DOTFILE_PATH=str(tmp_path / "dot"), VAGRANT_NO_COLOR="1")
    env.pop("VAGRANT_CWD", None)
    if topology:
        env["LAB_TOPOLOGY"] = str(topology)
    else:
        env.pop("LAB_TOPOLOGY", None)
    if path:
        env["PATH"] = f"{path}:{env['PATH']}"
    return subprocess.run([real_tool("vagrant"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=180)


@functools.cache
def has_libvirt_plugin() -> bool:
    return "vagrant-libvirt" in subprocess.run([real_tool("vagrant"), "plugin", "list"], capture_output=True,
                                               text=True).stdout


@pytest.mark.parametrize("provider", ["docker", "libvirt", "virtualbox"])
def test_validate_passes(tmp_path, stub_bin, provider):
    if provider == "libvirt" and not has_libvirt_plugin():
        pytest.fail("the vagrant-libvirt plugin is missing (scripts/bootstrap.sh installs it)")
    r = vagrant(tmp_path, provider, "validate", path=stub_bin)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "validated successfully" in r.stdout


@pytest.mark.parametrize("provider, block", [("libvirt", "lv"), ("virtualbox", "vb")])
def test_validate_really_checks_the_vm_blocks(tmp_path, stub_bin, provider, block):
    if provider == "libvirt" and not has_libvirt_plugin():
        pytest.fail("the vagrant-libvirt plugin is missing")
    broken = tmp_path / "repo"
    broken.mkdir()
    shutil.copy(DEFAULT_PATH, broken / "topology.yml")
    text = (ROOT / "Vagrantfile").read_text()
    assert f"{block}.cpus = CPUS" in text
    (broken / "Vagrantfile").write_text(text.replace(f"{block}.cpus = CPUS", f"{block}.cpus = CPUS; {block}.no_such_setting = 1"))
    r = vagrant(tmp_path, provider, "validate", cwd=broken, path=stub_bin)
    assert r.returncode != 0 and "no_such_setting" in r.stdout + r.stderr


def test_machines_come_from_the_topology_named_by_lab_topology(tmp_path, stub_bin):
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    for i, n in enumerate(data["nodes"]):
        n["name"] = f"db{i + 1}"
    data["etcd"]["members"] = ["db4"]
    alt = tmp_path / "alt.yml"
    alt.write_text(yaml.safe_dump(data))
    r = vagrant(tmp_path, "docker", "status", "--machine-readable", topology=alt, path=stub_bin)
    assert r.returncode == 0, r.stderr
    names = {line.split(",")[1] for line in r.stdout.splitlines() if ",state," in line}
    assert names == {"db1", "db2", "db3", "db4"}


def test_an_unreadable_topology_stops_vagrant_with_one_line(tmp_path, stub_bin):
    r = vagrant(tmp_path, "docker", "validate", topology=tmp_path / "missing.yml", path=stub_bin)
    assert r.returncode != 0 and "cannot read the topology" in r.stdout + r.stderr
