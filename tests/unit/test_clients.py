"""Client probes of article §7.1/7.2, without machines: URLs, guard refusal, installer plan."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from labcore import guard
from labcore import state as lab_state
from lab.clients import arp, jdbc, multihost
from labcore.topology import load


@pytest.fixture
def topo():
    return load()


@pytest.fixture
def up_state():
    return lab_state.State(phase="provisioned", interface="plab-test")


def test_libpq_url_lists_every_member_in_topology_order(topo):
    url = multihost.libpq_url(topo)
    members = [n.address for n in topo.postgres_nodes]
    assert multihost.url_hosts(url) == members
    assert url.endswith("/postgres?target_session_attrs=read-write")
    assert topo.standby_node.address not in url     # the standby cluster is not a member
    assert topo.cluster.superuser.password not in url


def test_libpq_url_follows_the_topology_file(tmp_path):
    text = Path(load().path).read_text().replace("192.168.234.", "192.168.237.")
    other = tmp_path / "t.yml"
    other.write_text(text)
    url = multihost.libpq_url(load(other), "any")
    assert multihost.url_hosts(url) == ["192.168.237.201", "192.168.237.202", "192.168.237.203"]
    assert "target_session_attrs=any" in url


def test_unknown_session_attrs_is_one_line_error(topo):
    with pytest.raises(ValueError, match=r"target_session_attrs='read_write' is not one of"):
        multihost.libpq_url(topo, "read_write")


def test_jdbc_urls(topo):
    assert jdbc.jdbc_url(topo).endswith("/postgres?targetServerType=primary")
    lb = jdbc.jdbc_url(topo, "preferSecondary", load_balance=True)
    assert lb.startswith("jdbc:postgresql://")
    assert lb.endswith("?targetServerType=preferSecondary&loadBalanceHosts=true")
    assert multihost.url_hosts(lb) == [n.address for n in topo.postgres_nodes]
    with pytest.raises(ValueError, match="targetServerType='leader'"):
        jdbc.jdbc_url(topo, "leader")


def test_connect_refuses_when_the_lab_is_not_up(topo, monkeypatch):
    import psycopg2

    def never(*a, **k):
        raise AssertionError("psycopg2.connect must not be reached")
    monkeypatch.setattr(psycopg2, "connect", never)
    with pytest.raises(guard.GuardError, match="the lab is not up"):
        multihost.connect(topo, state=lab_state.State(phase="absent"))


def test_connect_refuses_a_route_outside_the_lab_network(topo, up_state, monkeypatch):
    import psycopg2
    monkeypatch.setattr(psycopg2, "connect", lambda *a, **k: pytest.fail("connected"))
    monkeypatch.setattr(guard, "route_interface", lambda a: "eth0")
    with pytest.raises(guard.GuardError, match="routes it via eth0"):
        multihost.connect(topo, state=up_state)


def test_connect_passes_every_host_through_the_guard(topo, up_state, monkeypatch):
    import psycopg2
    checked, seen = [], {}
    monkeypatch.setattr(guard, "route_interface", lambda a: checked.append(a) or "plab-test")
    monkeypatch.setattr(psycopg2, "connect", lambda dsn, **k: seen.update(dsn=dsn, **k) or "conn")
    assert multihost.connect(topo, "any", state=up_state) == "conn"
    assert checked == [n.address for n in topo.postgres_nodes]
    assert seen["password"] == topo.cluster.superuser.password
    assert "target_session_attrs=any" in seen["dsn"]


def test_guard_refuses_an_address_not_in_the_topology(topo, up_state):
    with pytest.raises(guard.GuardError, match="not an address of the lab"):
        multihost.guard_hosts(topo, ["10.0.0.1"], up_state)


def test_jdbc_probe_refuses_before_running_java(topo, monkeypatch):
    url = jdbc.jdbc_url(topo).replace(topo.postgres_nodes[0].address, "10.1.2.3")
    with pytest.raises(guard.GuardError):
        jdbc.probe(topo, url, run=lambda *a, **k: pytest.fail("java ran"),
                   state=lab_state.State(phase="provisioned", interface="x"))


def test_probe_output_parsing():
    out = ('{"address": "192.168.234.202", "in_recovery": true}\n'
           'noise\n{"error": "Connection refused"}\n')
    got = jdbc.parse_probe_output(out)
    assert got == [multihost.Landing("192.168.234.202", True), "Connection refused"]
    assert got[0].role == "replica"


def test_probe_command_uses_the_source_launcher(topo):
    cmd = jdbc.probe_command("jdbc:postgresql://a/b", "u", "p", 3, jar=Path("/x.jar"))
    assert cmd[:3] == ["java", "-cp", "/x.jar"]
    assert cmd[3].endswith("MultiHostProbe.java") and Path(cmd[3]).is_file()
    assert cmd[-1] == "3"


class FakeApt:
    """Records apt-get calls; ``fail_first`` makes the first install fail (stale lists)."""
    def __init__(self, jar: Path, fail_first: bool = False):
        self.calls: list[list[str]] = []
        self.jar, self.fail_first = jar, fail_first

    def __call__(self, cmd, **kw):
        self.calls.append(cmd)
        ok = True
        if "install" in cmd:
            ok = not (self.fail_first and len(self.calls) == 1)
            if ok:
                self.jar.write_text("jar")
        return subprocess.CompletedProcess(cmd, 0 if ok else 100, "", "" if ok else "E: Unable to locate package")


def _which(present: set[str]):
    return lambda name: f"/usr/bin/{name}" if name in present else None


def test_installer_does_nothing_when_present(tmp_path):
    jar = tmp_path / "postgresql.jar"
    jar.write_text("jar")
    apt = FakeApt(jar)
    assert jdbc.ensure_jdbc(run=apt, which=_which({"java", "apt-get"}), is_root=lambda: True, jar=jar) == []
    assert apt.calls == []


def test_installer_installs_only_what_is_missing(tmp_path):
    jar = tmp_path / "postgresql.jar"
    apt = FakeApt(jar)
    got = jdbc.ensure_jdbc(run=apt, which=_which({"java", "apt-get"}), is_root=lambda: True, jar=jar)
    assert got == ["libpostgresql-jdbc-java"]
    assert len(apt.calls) == 1 and apt.calls[0][0] == "apt-get"
    assert apt.calls[0][-4:] == ["install", "-y", "--no-install-recommends", "libpostgresql-jdbc-java"]


def test_installer_refreshes_lists_once_then_retries(tmp_path):
    jar = tmp_path / "postgresql.jar"
    apt = FakeApt(jar, fail_first=True)
    jdbc.ensure_jdbc(run=apt, which=_which({"java", "apt-get"}), is_root=lambda: True, jar=jar)
    assert [c[3] for c in apt.calls] == ["install", "update", "install"]


def test_installer_explains_when_it_cannot(tmp_path):
    jar = tmp_path / "postgresql.jar"
    with pytest.raises(jdbc.JdbcUnavailable, match="sudo apt-get install -y default-jre-headless libpostgresql-jdbc-java"):
        jdbc.ensure_jdbc(run=FakeApt(jar), which=_which({"apt-get"}), is_root=lambda: False, jar=jar)
    with pytest.raises(jdbc.JdbcUnavailable, match="no apt-get.*LAB_JDBC_JAR"):
        jdbc.ensure_jdbc(run=FakeApt(jar), which=_which(set()), is_root=lambda: True, jar=jar)


def test_arp_reads_the_neighbour_table_only():
    out = '[{"dst":"192.168.234.210","dev":"plab0","lladdr":"02:42:C0:A8:EA:CA","state":["REACHABLE"]}]'
    fake = lambda cmd, **k: subprocess.CompletedProcess(cmd, 0, out, "")
    assert arp.neighbour_mac("192.168.234.210", run=fake) == "02:42:c0:a8:ea:ca"
    failed = '[{"dst":"192.168.234.210","dev":"plab0","state":["FAILED"]}]'
    assert arp.neighbour_mac("192.168.234.210",
                             run=lambda cmd, **k: subprocess.CompletedProcess(cmd, 0, failed, "")) is None
