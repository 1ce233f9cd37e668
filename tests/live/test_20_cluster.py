"""Tier 2, cluster: after `invoke up`, the article's stack runs (sections 2-8), stated as facts.

Roles are probed at run time (Patroni's REST API), never assumed: any member
may lead. Every wait is a bounded poll.
"""
from __future__ import annotations

import json
import re
import uuid
from typing import Callable, TypeVar

import pytest

from labcore import remote
from labcore import state as lab_state
from labcore.topology import Node, Topology
from labcore import poll

pytestmark = pytest.mark.live

T = TypeVar("T")


def eventually(probe: Callable[[], T], what: str, within: float = 60, every: float = 1) -> T:
    """A bounded poll (stretched by the timeout multiplier); an exception is "not yet"."""
    try:
        return poll.wait_for(what, probe, within, every=every)
    except poll.WaitTimeout as e:
        raise AssertionError(f"{what}: not true within {poll.scaled(within):.0f}s ({e})") from None


def sh(topo: Topology, node: str, command: str) -> str:
    """Run ``command`` as root on a node (login shell, so the article's environment applies)."""
    r = remote.connect(topo, node).run(f"sudo -i bash -c {json.dumps(command)}", hide=True, warn=True)
    return r.stdout


def members(topo: Topology) -> list[dict]:
    for n in topo.postgres_nodes:
        status, body = remote.http(topo, n.address, topo.ports.patroni, "/cluster")
        if status == 200:
            return body["members"]
    return []


def leader(topo: Topology) -> Node:
    name = eventually(lambda: next((m["name"] for m in members(topo) if m["role"] == "leader"), None),
                      "a leader")
    return topo.node(name)


def query(topo: Topology, address: str, port: int, sql: str, dbname: str = "postgres"):
    conn = remote.pg_connect(topo, address, port, dbname=dbname)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


@pytest.fixture(scope="module")
def cluster(live_lab: Topology) -> Topology:
    st = lab_state.load()
    if st.phase != "provisioned":
        pytest.fail(f"the lab is {st.phase}, not provisioned: see `invoke up`'s log")
    return live_lab


def test_invoke_up_ends_provisioned_and_reports_its_time(lab_up_run, cluster):
    assert lab_up_run.rc == 0, lab_up_run.tail()
    machines = re.search(r"machines ready in ([\d.]+) s", lab_up_run.output)
    provisioned = re.search(r"provisioned in ([\d.]+) s", lab_up_run.output)
    assert machines and provisioned, lab_up_run.tail()
    total = float(machines.group(1)) + float(provisioned.group(1))
    print(f"\ncold `invoke up`: machines {machines.group(1)} s + provisioning {provisioned.group(1)} s "
          f"= {total:.1f} s")


def test_patronictl_lists_one_leader_and_two_streaming_replicas_without_lag(cluster):
    node1 = cluster.postgres_nodes[0].name

    def listed():
        rows = json.loads(sh(cluster, node1, "patronictl list -f json") or "[]")
        roles = sorted(r["Role"] for r in rows)
        replicas = [r for r in rows if r["Role"] == "Replica"]
        if roles == ["Leader", "Replica", "Replica"] and all(
                r["State"] == "streaming" and r.get("Replay Lag", r.get("Lag in MB")) == 0 for r in replicas):
            return rows
        return None
    rows = eventually(listed, "patronictl list: 1 leader + 2 streaming replicas, lag 0", within=90)
    assert sorted(r["Member"] for r in rows) == sorted(n.member for n in cluster.postgres_nodes)


def test_etcd_holds_the_cluster_under_its_namespace(cluster):
    prefix = f"{cluster.cluster.namespace}{cluster.cluster.scope}"
    etcd = cluster.etcd_nodes[0]
    keys = sh(cluster, etcd.name, f"ETCDCTL_API=3 etcdctl get --prefix --keys-only {prefix}/").split()
    assert f"{prefix}/leader" in keys, keys
    for n in cluster.postgres_nodes:
        assert f"{prefix}/members/{n.member}" in keys


def test_rw_vip_is_writable_and_held_by_the_leader(cluster):
    vip, pg = cluster.vips.read_write, cluster.ports.postgres
    eventually(lambda: query(cluster, vip, pg, "select not pg_is_in_recovery()")[0][0], "rw VIP writable")
    lead = leader(cluster)
    assert f" {vip}/32 " in sh(cluster, lead.name, "ip -o -4 addr show")
    log = sh(cluster, lead.name, "journalctl -t patroni-vip --no-pager")
    assert f"announced {vip} by gratuitous ARP" in log, log[-500:]


def test_haproxy_5000_reaches_the_primary_on_every_haproxy_node(cluster):
    for n in cluster.haproxy_nodes:
        eventually(lambda: query(cluster, n.address, cluster.ports.haproxy_primary,
                                 "select pg_is_in_recovery()")[0][0] is False, f"{n.name}:5000 primary")


def test_haproxy_6000_round_robins_over_the_replicas(cluster):
    replicas = {cluster.node(m["name"]).address for m in members(cluster) if m["role"] == "replica"}
    assert len(replicas) == 2
    for n in cluster.haproxy_nodes:
        def seen() -> set[str] | None:
            got = set()
            for _ in range(4):
                (in_recovery, addr), = query(cluster, n.address, cluster.ports.haproxy_replicas,
                                             "select pg_is_in_recovery(), host(inet_server_addr())")
                assert in_recovery is True
                got.add(addr)
            return got if got == replicas else None
        eventually(seen, f"{n.name}:6000 alternating over {sorted(replicas)}", within=30)


def test_haproxy_7000_serves_statistics(cluster):
    for n in cluster.haproxy_nodes:
        status, body = remote.http(cluster, n.address, cluster.ports.haproxy_stats, "/")
        assert status == 200 and "Statistics Report" in str(body)


def test_haproxy_has_its_own_keepalived_vip(cluster):
    vip = cluster.vips.haproxy
    holders = [n.name for n in cluster.haproxy_nodes if f" {vip}/32 " in sh(cluster, n.name, "ip -o -4 addr show")]
    assert len(holders) == 1, holders
    assert query(cluster, vip, cluster.ports.haproxy_primary, "select pg_is_in_recovery()")[0][0] is False


def test_ro_vip_is_held_by_a_replica(cluster):
    vip = cluster.vips.read_only

    def holder() -> str | None:
        found = [n for n in cluster.postgres_nodes if f" {vip}/32 " in sh(cluster, n.name, "ip -o -4 addr show")]
        return found[0].member if len(found) == 1 else None
    member = eventually(holder, f"exactly one holder of {vip}", within=30)
    assert {m["name"]: m["role"] for m in members(cluster)}[member] == "replica"
    assert query(cluster, vip, cluster.ports.postgres, "select pg_is_in_recovery()")[0][0] is True


def test_a_row_written_through_the_rw_vip_reaches_both_replicas_and_the_standby_cluster(cluster):
    token = uuid.uuid4().hex
    vip, pg = cluster.vips.read_write, cluster.ports.postgres
    query(cluster, vip, pg, "create table if not exists lab_probe (token text primary key, at timestamptz default now())")
    query(cluster, vip, pg, f"insert into lab_probe (token) values ('{token}')")
    lead = leader(cluster)
    readers = [n for n in cluster.postgres_nodes if n != lead] + [cluster.standby_node]
    for n in readers:
        eventually(lambda: query(cluster, n.address, pg, f"select count(*) from lab_probe where token = '{token}'")[0][0] == 1,
                   f"the row on {n.name}", within=60)


def test_the_standby_cluster_streams_through_its_slot(cluster):
    standby = cluster.standby_node
    status, _ = remote.http(cluster, standby.address, cluster.ports.patroni, "/standby-leader")
    assert status == 200
    slot = cluster.cluster.standby_slot
    rows = query(cluster, cluster.vips.read_write, cluster.ports.postgres,
                 f"select active from pg_replication_slots where slot_name = '{slot}'")
    assert rows == [(True,)]


def test_the_watchdog_substitute_is_armed_on_the_leader(cluster):
    lead = leader(cluster)
    status, body = remote.http(cluster, lead.address, cluster.ports.patroni, "/patroni")
    assert status == 200 and body["role"] == "primary" and not body.get("watchdog_failed")
    assert sh(cluster, lead.name, "systemctl is-active patroni-watchdog").strip() == "active"
    eventually(lambda: sh(cluster, lead.name, "cat /run/patroni-watchdog/state").startswith("armed timeout=25"),
               "the fencer armed by the leader's Patroni", within=15)
    assert "activated with 25 second timeout" in sh(cluster, lead.name, "journalctl -u patroni --no-pager")


def test_every_node_follows_the_lab_time_server(cluster):
    server = cluster.etcd_nodes[0]
    for n in cluster.nodes:
        if n == server:
            continue
        eventually(lambda: f"^* {server.address}" in sh(cluster, n.name, "chronyc -n sources"),
                   f"chrony on {n.name} synced to {server.name}", within=90, every=3)


def test_a_second_provision_changes_nothing(cluster, lab_cli):
    run = lab_cli("provision")
    assert run.rc == 0, run.tail()
    assert "provisioning: 0 change(s)" in run.output, run.tail(60)
    for n in cluster.nodes:
        assert not re.search(rf"\b{n.name}: changed:", run.output)
