"""The article's platform (CentOS 7) cannot run here: its plan is checked command by command.

Each fixture under tests/fixtures/provision/el7/ holds, per node, the changes a
step plans on a blank CentOS 7 VM (pyinfra's operation tests, in spirit):
commands as they will run, and the content of every file written. Regenerate
after a deliberate change with PROVISION_REGEN_FIXTURES=1 and review the diff.
"""
from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest

import provision
from provision.steps import ORDER, STEPS

from test_provision_support import topology

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "provision" / "el7"
PAYLOAD = re.compile(r"^echo (\S+) \| base64 -d > (.+)$")


def readable(changes) -> list[dict]:
    """Changes as data a reviewer can read: file payloads decoded next to the commands."""
    out = []
    for c in changes:
        entry: dict = {"what": c.what, "commands": []}
        for cmd in c.commands:
            m = PAYLOAD.match(cmd)
            if m:
                entry["content"] = base64.b64decode(m.group(1)).decode()
                cmd = f"echo <content> | base64 -d > {m.group(2)}"
            entry["commands"].append(cmd)
        out.append(entry)
    return out


def el7_plan(step: str) -> dict[str, list[dict]]:
    topo = topology()
    return {n.name: readable(provision.preview(topo, step, n.name, "el7", iface="eth1", container=False))
            for n in STEPS[step].nodes(topo)}


@pytest.mark.parametrize("step", [m.NAME for m in ORDER])
def test_el7_plan_matches_its_fixture(step):
    path = FIXTURES / f"{step}.json"
    plan = el7_plan(step)
    if os.environ.get("PROVISION_REGEN_FIXTURES"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plan, indent=2, ensure_ascii=False) + "\n")
    assert path.exists(), f"missing fixture {path}; run with PROVISION_REGEN_FIXTURES=1 and review it"
    assert plan == json.loads(path.read_text())


def _commands(step: str, node: str) -> list[str]:
    return [cmd for c in el7_plan(step)[node] for cmd in c["commands"]]


def test_el7_uses_the_archives_because_centos7_is_eol():
    cmds = "\n".join(_commands("postgres", "node1"))
    assert "vault.centos.org" in cmds and "archives.fedoraproject.org/pub/archive/epel/7" in cmds
    assert "yum-archive.postgresql.org" in cmds
    assert "yum install -y -q postgresql12-server postgresql12-contrib" in cmds


def test_el7_follows_the_article_where_it_can():
    assert "setenforce 0" in _commands("firewall", "node2")
    assert "systemctl disable --now firewalld" in _commands("firewall", "node2")
    etcd = el7_plan("etcd")["node4"]
    conf = next(c["content"] for c in etcd if c["what"] == "write /etc/etcd/etcd.conf")
    assert 'ETCD_ENABLE_V2="true"' in conf and 'ETCD_LISTEN_CLIENT_URLS="http://127.0.0.1:2379,http://192.168.234.204:2379"' in conf
    patroni = el7_plan("patroni")["node1"]
    conf = next(c["content"] for c in patroni if c["what"] == "write /etc/patroni/10-cluster.yml")
    assert "\netcd:\n  hosts: 192.168.234.204:2379" in conf and "bin_dir: /usr/pgsql-12/bin" in conf
    assert "pip3 install -q 'patroni[etcd]==4.1.5' 'psycopg2-binary<2.9.6'" in _commands("patroni", "node1")


def test_el7_watchdog_is_softdog_owned_by_postgres():
    cmds = _commands("watchdog", "node1")
    assert "/sbin/modprobe softdog" in cmds and "/bin/chown postgres /dev/watchdog" in cmds


def test_el7_callback_uses_sudo_not_capabilities():
    vip = el7_plan("vip")["node1"]
    script = next(c["content"] for c in vip if c["what"].endswith("vip-callback"))
    assert "PRIVILEGE=sudo" in script
    assert not any("capabilities.conf" in c["what"] for c in el7_plan("patroni")["node1"])
