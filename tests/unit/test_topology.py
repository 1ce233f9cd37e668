"""The topology schema: the shipped file loads, and every kind of bad input fails fast in one line."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from labcore import topology
from labcore.topology import TopologyError

GOOD = yaml.safe_load(topology.DEFAULT_PATH.read_text())


def bad(mutate) -> str:
    """Apply ``mutate`` to a copy of the shipped topology; return the one-line error."""
    data = copy.deepcopy(GOOD)
    mutate(data)
    with pytest.raises(TopologyError) as e:
        topology.parse(data, Path("topology.yml"))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_the_shipped_topology_loads_with_the_articles_layout():
    t = topology.load(topology.DEFAULT_PATH)
    assert t.names == ["node1", "node2", "node3", "node4"]
    assert [n.member for n in t.postgres_nodes] == ["pg1", "pg2", "pg3"]
    assert [n.name for n in t.etcd_nodes] == ["node4"]
    assert t.standby_node.name == "node4"
    assert t.node("pg2").address == "192.168.234.202"
    assert t.gateway == "192.168.234.1"


def test_lab_topology_env_selects_the_file(tmp_path, monkeypatch):
    other = copy.deepcopy(GOOD)
    other["lab"]["name"] = "other-lab"
    f = tmp_path / "t.yml"
    f.write_text(yaml.safe_dump(other))
    monkeypatch.setenv("LAB_TOPOLOGY", str(f))
    assert topology.load().name == "other-lab"


def test_duplicate_node_name():
    def m(d): d["nodes"][1]["name"] = "node1"
    assert bad(m) == "nodes[1].name: node1 duplicates nodes[0].name"


def test_duplicate_member_name():
    def m(d): d["nodes"][2]["member"] = "pg1"
    assert bad(m) == "nodes[2].member: pg1 duplicates nodes[0].member"


def test_duplicate_address():
    def m(d): d["nodes"][3]["address"] = "192.168.234.201"
    assert bad(m) == "nodes[3].address: 192.168.234.201 duplicates nodes[0].address"


def test_address_outside_the_subnet():
    def m(d): d["nodes"][0]["address"] = "10.0.0.5"
    msg = bad(m)
    assert msg.startswith("nodes[0].address: 10.0.0.5") and "192.168.234.0/24" in msg


def test_vip_outside_the_subnet():
    def m(d): d["vips"]["read_only"] = "192.168.99.211"
    assert bad(m).startswith("vips.read_only: 192.168.99.211 is outside the lab subnet")


def test_address_on_the_host_side_of_the_network():
    def m(d): d["nodes"][0]["address"] = "192.168.234.1"
    assert "nodes[0].address: 192.168.234.1" in bad(m)


def test_vip_equal_to_a_node_address():
    def m(d): d["vips"]["read_write"] = "192.168.234.203"
    msg = bad(m)
    assert msg.startswith("vips.read_write: 192.168.234.203") and "nodes[2].address" in msg


def test_two_vips_with_one_address():
    def m(d): d["vips"]["haproxy"] = d["vips"]["read_write"]
    assert bad(m).startswith("vips.haproxy: 192.168.234.210 duplicates vips.read_write")


def test_unknown_role():
    def m(d): d["nodes"][1]["roles"] = ["postgres", "pgbouncer"]
    msg = bad(m)
    assert msg.startswith("nodes[1].roles:") and "'pgbouncer'" in msg


def test_etcd_member_that_is_not_a_node():
    def m(d): d["etcd"]["members"] = ["node4", "node9"]
    msg = bad(m)
    assert msg.startswith("etcd.members: 'node9' is not a node")


def test_no_etcd_member_at_all():
    def m(d): d["etcd"]["members"] = []
    assert bad(m).startswith("etcd.members:")


def test_missing_section():
    def m(d): del d["etcd"]
    assert bad(m) == "topology.yml: etcd: missing"


def test_missing_key():
    def m(d): del d["nodes"][0]["address"]
    assert bad(m) == "nodes[0].address: missing"


def test_unknown_top_level_key():
    def m(d): d["extras"] = {}
    assert bad(m).startswith("topology.yml: extras: unknown key")


def test_unknown_key_in_a_section():
    def m(d): d["nodes"][0]["adress"] = "192.168.234.201"
    assert bad(m).startswith("nodes[0].adress: unknown key")


def test_unknown_option_value():
    def m(d): d["options"]["watchdog_mode"] = "sometimes"
    assert bad(m).startswith("options.watchdog_mode: 'sometimes' must be one of")


def test_not_an_address():
    def m(d): d["nodes"][0]["address"] = "192.168.234.300"
    assert bad(m) == "nodes[0].address: '192.168.234.300' is not an IPv4 address"


def test_bad_subnet():
    def m(d): d["lab"]["subnet"] = "192.168.234.0/33"
    assert bad(m).startswith("lab.subnet: '192.168.234.0/33' is not an IPv4 network")


def test_duplicate_port():
    def m(d): d["ports"]["haproxy_stats"] = 5000
    assert bad(m) == "ports.haproxy_stats: 5000 duplicates ports.haproxy_primary"


def test_malformed_yaml(tmp_path):
    f = tmp_path / "broken.yml"
    f.write_text("lab:\n  name: x\n nodes: [\n")
    with pytest.raises(TopologyError) as e:
        topology.load(f)
    msg = str(e.value)
    assert msg.startswith("broken.yml: not valid YAML at line") and "\n" not in msg


def test_yaml_that_is_not_a_mapping(tmp_path):
    f = tmp_path / "list.yml"
    f.write_text("- just\n- a list\n")
    with pytest.raises(TopologyError, match=r"^list.yml: must be a mapping"):
        topology.load(f)


def test_missing_file(tmp_path):
    with pytest.raises(TopologyError, match="cannot read"):
        topology.load(tmp_path / "nope.yml")


def test_ports_vips_and_cluster_are_read_by_name_and_cannot_be_changed():
    import dataclasses
    topo = topology.load()
    assert topo.ports.patroni == 8008 and topo.ports.etcd_client == 2379
    assert topo.vips.read_write == "192.168.234.210"
    assert topo.cluster.scope == "pgsql" and topo.cluster.superuser.username == "postgres"
    with pytest.raises(dataclasses.FrozenInstanceError):
        topo.ports.patroni = 9999
    with pytest.raises(AttributeError):
        topo.vips.read_writ                                   # a typo is an error, not None
    # the mapping view: every VIP role, a role held in a variable, plain data for templates and JSON
    assert [role for role, _ in topo.vips.items()] == ["read_write", "read_only", "haproxy"]
    assert topo.vips["read_only"] == topo.vips.read_only
    with pytest.raises(KeyError):
        topo.vips["postgres"]
    assert topo.as_dict()["cluster"]["superuser"] == {"username": "postgres", "password": "123456"}
    import json
    assert json.loads(json.dumps(topo.as_dict()))["ports"]["haproxy_stats"] == 7000
