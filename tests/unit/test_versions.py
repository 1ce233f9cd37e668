"""Versions as topology options (labcore/versions.py): a pair is checked at load with one line, and the
platform, the wheelhouse, the templates, the image and the drills follow the chosen Patroni and PostgreSQL."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from labcore import topology, versions
from labcore.topology import TopologyError
from provision import platforms, wheelhouse
from provision.context import Context, NodeFacts

GOOD = yaml.safe_load(topology.DEFAULT_PATH.read_text())


def with_options(**options) -> topology.Topology:
    data = copy.deepcopy(GOOD)
    data["options"].update(options)
    return topology.parse(data, Path("topology.yml"))


def refused(**options) -> str:
    with pytest.raises(TopologyError) as e:
        with_options(**options)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_the_default_is_what_the_lab_always_ran():
    t = topology.load(topology.DEFAULT_PATH)
    assert (t.patroni_release.version, t.postgres_release.major) == ("4.1.5", 15)
    assert platforms.for_lab("debian12", t) is platforms.DEBIAN12      # nothing replaced, nothing rebuilt
    assert wheelhouse.tarball("3.11", platforms.DEBIAN12.patroni_spec).name == "wheelhouse-patroni-4.1.5-py311.tar"


def test_an_unsupported_pair_or_a_malformed_version_is_one_line_before_anything_is_made():
    assert "predates PostgreSQL 15" in refused(patroni_version="2.0.7", postgres_version=15)
    assert "2.1.4" in refused(patroni_version="2.0.7", postgres_version=15)
    assert "predates PostgreSQL 17" in refused(patroni_version="3.3.2", postgres_version=17)
    assert "predates PostgreSQL 13" in refused(patroni_version="1.6.5", postgres_version=13)
    msg = refused(postgres_version=12)
    assert msg.startswith("options.postgres_version: ") and "13, 15, 17" in msg
    assert "quoted release number" in refused(patroni_version=4.1)          # YAML read 4.1 as a number
    assert "release number" in refused(patroni_version="4.1")
    assert with_options(patroni_version="2.1.7", postgres_version=13).postgres_release.suite == "bullseye"


def test_each_patroni_release_names_what_the_article_names_its_own_way():
    old, mid, new = (versions.PatroniRelease(v) for v in ("2.1.7", "3.3.8", "4.1.5"))
    assert [r.primary_role for r in (old, mid, new)] == ["master", "master", "primary"]
    assert [r.start_timeout_key for r in (old, mid, new)] == ["master_start_timeout"] + ["primary_start_timeout"] * 2
    assert [r.switchover_leader_flag for r in (old, mid, new)] == ["--master", "--leader", "--leader"]
    assert [r.failsafe_mode for r in (old, mid, new)] == [False, True, True]
    assert versions.PatroniRelease("1.6.5").dcs == "etcd" and old.dcs == "etcd3"


def test_the_platform_installs_the_chosen_patroni_and_renders_its_names():
    t = with_options(patroni_version="2.1.7", postgres_version=13)
    plat = platforms.for_lab("debian11", t)
    assert (plat.pg_version, plat.pg_bin, plat.python) == (13, "/usr/lib/postgresql/13/bin", "3.9")
    assert plat.packages["postgres"] == ("postgresql-13", "locales")
    assert plat.patroni_spec == "patroni[etcd3]==2.1.7" and "'patroni[etcd3]==2.1.7'" in plat.patroni_install[-1]
    assert (plat.primary_role, plat.start_timeout_key) == ("master", "master_start_timeout")
    assert wheelhouse.tarball(plat.python, plat.patroni_spec).name == "wheelhouse-patroni-2.1.7-py39.tar"
    rendered = yaml.safe_load(Context(t, t.node("node1"), plat, NodeFacts("eth1", True)).render("patroni.yml.j2", standby=False))
    assert rendered["bootstrap"]["dcs"]["master_start_timeout"] == 300 and "etcd3" in rendered
    assert rendered["postgresql"]["bin_dir"] == "/usr/lib/postgresql/13/bin"
    # CentOS 7 keeps etcd's v2 API whatever the release
    assert platforms.for_lab("el7", with_options(patroni_version="3.3.8")).patroni_spec == "patroni[etcd]==3.3.8"


def test_machines_of_another_debian_release_than_the_topology_asks_for_are_refused():
    with pytest.raises(ValueError) as e:
        platforms.for_lab("debian12", with_options(patroni_version="4.1.5", postgres_version=17))
    assert "debian12" in str(e.value) and "options.postgres_version: 15" in str(e.value)


def test_the_docker_nodes_follow_the_postgres_release_and_the_vm_boxes_refuse_another(monkeypatch):
    from lab.providers.vagrant import VagrantProvider
    t17 = with_options(postgres_version=17)
    docker = VagrantProvider("docker", {})
    assert docker.platform_of(t17) == "debian13" and docker.version_problem(t17) is None
    libvirt = VagrantProvider("libvirt", {})
    msg = libvirt.version_problem(t17)
    assert msg and "\n" not in msg and "--provider docker" in msg and "debian12" in msg
    assert libvirt.version_problem(topology.load(topology.DEFAULT_PATH)) is None


def test_the_switchover_command_names_the_leader_as_the_release_does():
    from lab.exercises.kit import ctl
    assert " --master pg1 " in ctl.switchover("pgsql", "pg1", "pg2", versions.PatroniRelease("2.1.7").switchover_leader_flag)
    assert " --leader pg1 " in ctl.switchover("pgsql", "pg1", "pg2")


def test_etcd_33_is_asked_on_its_v3beta_gateway_where_v3_would_read_as_no_key():
    from labcore import remote
    assert [remote.gateway_prefix(v) for v in ("3.2.26", "3.3.25", "3.4.23", "3.5.16")] == [
        "/v3alpha", "/v3beta", "/v3", "/v3"]


def test_the_upgrade_drill_says_why_it_cannot_run_before_touching_anything():
    """On the newest release there is nothing to upgrade to; below 3.0 Patroni does not support the jump.
    Either way the drill stops at its first line: the stand-in lab has nothing but a topology."""
    from lab.exercises import DRILLS
    from lab.exercises.api.model import NotApplicable

    class TopologyOnly:
        def __init__(self, topo):
            self.topo = topo

    upgrade = DRILLS["patroni-upgrade"]
    for options, words in (({}, "the newest the lab carries is 4.1.5"), ({"patroni_version": "2.1.7"}, "from 3.0.0 on"),
                           ({"patroni_version": "4.1.6"}, "runs Patroni 4.1.6 and the newest")):
        with pytest.raises(NotApplicable) as e:
            upgrade().run(TopologyOnly(with_options(**options)))
        assert words in str(e.value)


def test_the_wheelhouse_keeps_old_releases_from_a_dependency_that_broke_after_them():
    """patronictl before 3.3.0 imports ydiff's PatchStream, gone in ydiff 1.3: resolved today without a
    limit, a 2.x gets ydiff 1.5 and a patronictl that does not start."""
    assert wheelhouse.constraints("patroni[etcd3]==2.1.7") == ("ydiff<1.3",)
    assert wheelhouse.constraints("patroni[etcd3]==3.2.2") == ("ydiff<1.3",)
    assert wheelhouse.constraints("patroni[etcd3]==3.3.8") == ("ydiff<1.5",)
    assert wheelhouse.constraints(platforms.DEBIAN12.patroni_spec) == ("ydiff<1.5",)


def test_before_patroni_3_a_replica_streams_when_its_source_lists_it_in_pg_stat_replication():
    """Patroni 2.1.7's /cluster calls a streaming replica "running": the probe asks the sources. A
    replica its source does not list (stopped WAL receiver, or cascading from a member that lost it)
    is not streaming; on 3.x and 4.x /cluster's own word stands."""
    from lab.exercises.kit.probe import Probe

    class Seen(Probe):
        def __init__(self, topo, cluster, states):
            super().__init__(topo, shell=None)
            self._cluster, self._states = cluster, states

        def members(self):
            return self._cluster

        def member_state(self, member):
            return self._states.get(member, {})

    cluster = [{"name": "pg1", "role": "leader", "state": "running"},
               {"name": "pg2", "role": "replica", "state": "running"},
               {"name": "pg3", "role": "replica", "state": "running"}]
    states = {"pg1": {"replication": [{"application_name": "pg2", "state": "streaming"},
                                      {"application_name": "pg4", "state": "streaming"}]}}
    old = Seen(with_options(patroni_version="2.1.7"), cluster, states)
    assert old.streaming_replicas() == {"pg2"} and old.streaming("pg2") and not old.streaming("pg3")
    states["pg2"] = {"replication": [{"application_name": "pg3", "state": "streaming"}]}     # pg3 cascades from pg2
    assert old.streaming_replicas() == {"pg2", "pg3"}
    new = Seen(with_options(patroni_version="4.1.5"), cluster, states)
    assert new.streaming_replicas() == set()         # 4.x says "streaming" itself, and says it of nobody here
