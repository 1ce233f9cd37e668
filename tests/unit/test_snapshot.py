"""Snapshots: the scripts they run on the nodes, checked by bash, and restores refused before any
node is touched when the snapshot is not of this lab."""
from __future__ import annotations

import copy
import json
import subprocess

import pytest
import yaml

from lab import snapshot
from labcore import state as lab_state
from labcore import topology
from provision import platforms

PLAT = platforms.get("debian12")


@pytest.fixture
def lab_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    lab_state.save(lab_state.State(phase="provisioned", provider="docker", platform="debian12"))
    return tmp_path


def bash_n(script: str) -> None:
    p = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_every_script_a_snapshot_runs_is_valid_bash():
    topo = topology.load()
    from lab.exercises.kit.actions import fault_undo_commands
    undo = fault_undo_commands(topo)
    for n in topo.nodes:
        held = snapshot.paths(topo, n, PLAT)
        bash_n(snapshot.copy_script(held, "clean", into_snapshot=True))
        bash_n(snapshot.copy_script(held, "clean", into_snapshot=False))
        bash_n(snapshot.force_stop_script(n, topo, PLAT, undo[n.name]))
    bash_n(snapshot.stop_postgres_script(topo.cluster.data_dir, PLAT))
    bash_n(snapshot.start_postgres_script(topo.cluster.data_dir, PLAT))
    bash_n(snapshot.tolerant("patronictl pause", "already paused"))


def test_each_node_keeps_what_its_roles_give_it():
    topo = topology.load()
    assert set(snapshot.paths(topo, topo.node("node1"), PLAT)) == {"pgdata", "patroni", "dropins"}
    assert set(snapshot.paths(topo, topo.node("node4"), PLAT)) == {"pgdata", "patroni", "dropins", "etcd"}


def test_a_restore_puts_files_back_under_their_own_names(tmp_path):
    """The copy back, run for real on local folders: the snapshot's content replaces what a drill left."""
    live, snap = tmp_path / "data", tmp_path / "snaps"
    live.mkdir()
    (live / "PG_VERSION").write_text("broken\n")
    script = snapshot.copy_script({"pgdata": str(live)}, "s1", into_snapshot=True).replace(snapshot.ON_NODE, str(snap))
    subprocess.run(["bash", "-c", script], check=True)
    (live / "PG_VERSION").write_text("changed by a drill\n")
    (live / "extra").write_text("left behind\n")
    back = snapshot.copy_script({"pgdata": str(live)}, "s1", into_snapshot=False).replace(snapshot.ON_NODE, str(snap))
    subprocess.run(["bash", "-c", back.replace("systemctl daemon-reload", "true")], check=True)
    assert (live / "PG_VERSION").read_text() == "broken\n" and not (live / "extra").exists()


def test_bad_names_are_refused_in_one_line():
    for bad in ("", "../x", "A B", "x" * 41):
        with pytest.raises(snapshot.SnapshotError) as e:
            snapshot.check_name(bad)
        assert "\n" not in str(e.value)


def save_manifest(topo, **changes) -> None:
    m = snapshot.Manifest(name="clean", lab=topo.name, topology=snapshot.topology_digest(topo),
                          machines={n.name: f"id-{n.name}" for n in topo.nodes}, leaders={"pgsql": "pg1"},
                          timelines={"pg1": 1}, platform="debian12")
    for k, v in changes.items():
        setattr(m, k, v)
    path = snapshot.manifest_path("clean")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(m.to_json()))


def test_a_snapshot_of_another_topology_is_refused_before_any_node_is_touched(lab_dir, monkeypatch):
    topo = topology.load()
    data = copy.deepcopy(yaml.safe_load(topology.DEFAULT_PATH.read_text()))
    data["cluster"]["data_dir"] = "/elsewhere"
    other = topology.parse(data)
    save_manifest(other)
    touched = []
    monkeypatch.setattr(snapshot.Nodes, "run", lambda self, scripts: touched.append(scripts))
    with pytest.raises(snapshot.SnapshotError, match="another topology"):
        snapshot.restore(topo, "clean", report=lambda line: None)
    assert touched == []


def test_a_snapshot_of_machines_rebuilt_since_is_refused_after_reading_only_their_ids(lab_dir, monkeypatch):
    topo = topology.load()
    save_manifest(topo)
    calls = []

    def run(self, scripts):
        calls.append(scripts)
        return {n: ("id-other" if n == "node2" else f"id-{n}") + "\nheld\n" for n in scripts}

    monkeypatch.setattr(snapshot.Nodes, "run", run)
    with pytest.raises(snapshot.SnapshotError, match=r"other machines \(node2 rebuilt since\)"):
        snapshot.restore(topo, "clean", report=lambda line: None)
    assert len(calls) == 1 and all(v.startswith("cat /etc/machine-id;") for v in calls[0].values())


def test_a_snapshot_a_node_no_longer_holds_is_refused_before_anything_is_stopped(lab_dir, monkeypatch):
    topo = topology.load()
    save_manifest(topo)
    calls = []

    def run(self, scripts):
        calls.append(scripts)
        return {n: f"id-{n}\n" + ("missing" if n == "node3" else "held") + "\n" for n in scripts}

    monkeypatch.setattr(snapshot.Nodes, "run", run)
    with pytest.raises(snapshot.SnapshotError, match="node3 no longer hold"):
        snapshot.restore(topo, "clean", report=lambda line: None)
    assert len(calls) == 1


def test_an_unknown_snapshot_names_the_ones_there_are(lab_dir):
    save_manifest(topology.load())
    with pytest.raises(snapshot.SnapshotError, match=r"no snapshot 'other' of this lab \(saved: clean\)"):
        snapshot.load_manifest("other")


def test_a_lab_on_vms_is_refused_since_a_killed_patroni_would_reset_the_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    lab_state.save(lab_state.State(phase="provisioned", provider="libvirt", platform="debian12"))
    monkeypatch.setattr(snapshot.Nodes, "run", lambda self, scripts: pytest.fail("a node was touched"))
    for call in (lambda: snapshot.save(topology.load(), "clean", report=print),
                 lambda: snapshot.restore(topology.load(), "clean", report=print)):
        with pytest.raises(snapshot.SnapshotError, match="made for the docker provider; this lab runs on libvirt"):
            call()
