"""Tier 2, machines: after `invoke up`, four nodes answer on their topology addresses."""
from __future__ import annotations

import re
import subprocess

import pytest

from lab import sshconfig
from labcore import guard, remote
from labcore import state as lab_state

pytestmark = pytest.mark.live


def ssh(node: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-F", str(sshconfig.path()), "-o", "BatchMode=yes", node, command],
                          capture_output=True, text=True, timeout=30)


def test_invoke_up_succeeds_and_prints_the_machine_time(lab_up_run, live_lab):
    assert lab_up_run.rc == 0, f"`invoke up` failed (log {lab_up_run.log}):\n{lab_up_run.tail()}"
    assert re.search(r"machines ready in \d+(\.\d+)? s", lab_up_run.output), lab_up_run.tail()


def test_every_node_answers_ssh_with_its_own_hostname(live_lab):
    for n in live_lab.nodes:
        r = ssh(n.name, "hostname")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == n.name


def test_member_names_are_ssh_aliases(live_lab):
    for n in live_lab.nodes:
        assert ssh(n.member, "hostname").stdout.strip() == n.name


def test_every_node_holds_its_topology_address(live_lab):
    prefix = live_lab.subnet.prefixlen
    for n in live_lab.nodes:
        out = ssh(n.name, "ip -o -4 addr show").stdout
        assert f" {n.address}/{prefix} " in out, out


def test_fabric_reaches_the_nodes_through_the_same_ssh_config(live_lab):
    for n in live_lab.nodes:
        assert remote.connect(live_lab, n.name).run("hostname", hide=True, in_stream=False).stdout.strip() == n.name


def test_state_records_the_lab_interface_and_every_address_routes_through_it(live_lab):
    st = lab_state.load()
    assert st.is_up and st.interface and st.provider and st.platform
    if st.provider == "docker":
        assert st.interface == live_lab.bridge and st.platform == "debian12"
    for n in live_lab.nodes:
        assert guard.route_interface(n.address) == st.interface


def test_nodes_run_systemd_and_passwordless_sudo(live_lab):
    for n in live_lab.nodes:
        r = ssh(n.name, "sudo -n true && ps -o comm= -p 1")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "systemd"


def test_invoke_status_lists_every_node_running_and_reachable(live_lab, lab_cli):
    run = lab_cli("status", timeout=120)
    assert run.rc == 0, run.tail()
    for n in live_lab.nodes:
        line = next((l for l in run.output.splitlines() if f" {n.address} " in l), "")
        assert "yes" in line and ("running" in line or "active" in line), run.output
