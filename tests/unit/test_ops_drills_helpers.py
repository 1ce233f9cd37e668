"""Helpers of the §6-§8 drills, checked without machines."""
from __future__ import annotations

import pytest

from lab.exercises.kit import ctl, endpoints, haproxy_stats

STATS = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
stats,FRONTEND,,,1,1,100,3,0,0,0,0,0,,,,,OPEN,
pgsql,FRONTEND,,,0,1,100,2,0,0,0,0,0,,,,,OPEN,
pgsql,postgresql_192.168.234.201_5432,0,0,0,1,100,2,0,0,,0,,0,0,0,0,UP,1
pgsql,postgresql_192.168.234.202_5432,0,0,0,0,100,0,0,0,,0,,0,0,0,0,DOWN,1
pgsql,postgresql_192.168.234.203_5432,0,0,0,0,100,0,0,0,,0,,0,0,0,0,DOWN 1/3,1
pgsql,BACKEND,0,0,0,1,10,2,0,0,0,0,,0,0,0,0,UP,1
pgsql_read,postgresql_192.168.234.201_5432,0,0,0,0,100,0,0,0,,0,,0,0,0,0,DOWN,1
pgsql_read,postgresql_192.168.234.202_5432,0,0,0,0,100,0,0,0,,0,,0,0,0,0,UP,1
pgsql_read,postgresql_192.168.234.203_5432,0,0,0,0,100,0,0,0,,0,,0,0,0,0,UP 1/2,1
"""


def test_stats_csv_rows_map_to_addresses():
    stats = haproxy_stats.parse(STATS)
    assert ("pgsql", "FRONTEND") not in stats and ("pgsql", "BACKEND") not in stats
    addrs = {a: (a,) for a in ["192.168.234.201", "192.168.234.202", "192.168.234.203"]}
    assert haproxy_stats.servers_up(stats, "pgsql", addrs) == {
        "192.168.234.201": True, "192.168.234.202": False, "192.168.234.203": False}
    # "UP 1/2" is a server going down but still UP; "DOWN 1/3" is coming up but still DOWN
    assert haproxy_stats.servers_up(stats, "pgsql_read", addrs) == {
        "192.168.234.201": False, "192.168.234.202": True, "192.168.234.203": True}
    # an address that is a prefix of another must not match
    assert haproxy_stats.servers_up(stats, "pgsql", {"x": ("192.168.234.20",)}) == {"x": False}
    # the lab's own names: the member
    lab = haproxy_stats.parse(STATS.replace("postgresql_192.168.234.201_5432", "pg1"))
    assert haproxy_stats.servers_up(lab, "pgsql", {"pg1": ("pg1", "192.168.234.201")}) == {"pg1": True}


def test_stats_refuses_html():
    with pytest.raises(ValueError, match="not haproxy stats CSV"):
        haproxy_stats.parse("<html>")


def test_endpoint_table_follows_patroni_4():
    assert endpoints.expected("primary", "primary") == 200
    assert endpoints.expected("primary", "async") == 503
    assert endpoints.expected("replica", "async") == 200
    assert endpoints.expected("replica", "sync") == 503
    assert endpoints.expected("sync_standby", "sync") == 200
    assert endpoints.expected("standby_leader", "primary") == 503
    assert endpoints.expected("standby_leader", "leader") == 200
    for role in ("primary", "replica"):
        assert {endpoints.expected(role, ep) for ep in ("read-only", "health", "liveness", "readiness")} == {200}


def test_endpoint_roles_and_mismatches():
    assert endpoints.role_of({"role": "leader"}) == "primary"
    assert endpoints.role_of({"role": "master"}) == "primary"
    assert endpoints.role_of({"role": "standby_leader"}) == "standby_leader"
    assert endpoints.role_of({"role": "replica"}) == "replica"
    assert endpoints.mismatches("replica", {"replica": 200, "primary": 503}) == []
    assert endpoints.mismatches("replica", {"primary": 200}) == ["/primary: 200 (expected 503)"]
    with pytest.raises(ValueError):
        endpoints.expected("witness", "primary")


def test_patronictl_lines_are_what_a_trainee_types():
    assert ctl.switchover("pgsql", "pg1", "pg2") == (
        "sudo -u postgres patronictl -c /etc/patroni switchover pgsql --leader pg1 --candidate pg2 --force")
    assert ctl.edit_config_pg("pgsql", max_connections=300).endswith(
        "edit-config pgsql --force --quiet -p max_connections=300")
    assert ctl.edit_config_set("pgsql-standby", standby_cluster=None).endswith("-s standby_cluster=null")
    assert "-s standby_cluster.host=192.168.234.210" in ctl.edit_config_set(
        "x", standby_cluster__host="192.168.234.210")
    assert ctl.restart("pgsql", pending=True).endswith("restart pgsql --force --pending")


def test_history_json_parsing():
    out = 'some warning\n[{"TL": 1, "LSN": 50331816, "Reason": "no recovery target specified", ' \
          '"Timestamp": "2026-11-26T10:00:00+00:00", "New Leader": "pg2"}]\n'
    assert ctl.parse_history(out)[0]["New Leader"] == "pg2"
    with pytest.raises(ValueError):
        ctl.parse_history("Error: no cluster")


def test_get_root_and_leader_claim_is_broken_by_a_replica_answering_200_or_a_leader_answering_503():
    fine = {"pg1": {"": 200, "leader": 200, "primary": 200},
            "pg2": {"": 503, "leader": 503, "primary": 503}, "pg3": {"": 503, "leader": 503, "primary": 503}}
    assert endpoints.LEADER_ONLY == ("", "leader", "primary")
    assert endpoints.leader_only_mismatches(fine, "pg1") == []
    # a replica whose health port answers like the leader (e.g. 8008 forwarded to the leader's Patroni)
    replica_says_leader = {**fine, "pg2": {"": 200, "leader": 200, "primary": 503}}
    assert endpoints.leader_only_mismatches(replica_says_leader, "pg1") == [
        "pg2 /: 200 (expected 503)", "pg2 /leader: 200 (expected 503)"]
    # a leader whose Patroni does not answer (status 0) fails too: "not 200 elsewhere" is not enough
    assert endpoints.leader_only_mismatches({**fine, "pg1": {"": 0, "leader": 0, "primary": 0}}, "pg1")
