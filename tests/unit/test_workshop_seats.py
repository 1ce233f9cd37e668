"""Seat derivation: every address re-based, names and bridges suffixed, the loader's checks applied,
collisions refused before anything is written."""
from __future__ import annotations

import copy
import ipaddress
import json
from pathlib import Path

import pytest
import yaml

from labcore import topology
from lab.workshop import history
from lab.workshop.seats import Room, SeatError, derive, existing, seat_subnet, write

BASE = ipaddress.IPv4Network("192.168.250.0/24")
GOOD = yaml.safe_load(topology.DEFAULT_PATH.read_text())


def room(tmp_path, base="192.168.250.0/24", prefix="plab5", topo_file=topology.DEFAULT_PATH) -> Room:
    return Room.from_settings(topology.load(topo_file), base, prefix, tmp_path / "room")


def strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def test_seat_k_takes_the_kth_network_after_the_base():
    assert str(seat_subnet(BASE, 1)) == "192.168.251.0/24"
    assert str(seat_subnet(BASE, 2)) == "192.168.252.0/24"
    assert str(seat_subnet(ipaddress.IPv4Network("10.20.0.0/26"), 3)) == "10.20.0.192/26"


def test_every_address_moves_into_the_seat_subnet_keeping_its_host_part(tmp_path):
    base = topology.load(topology.DEFAULT_PATH)
    s2 = room(tmp_path).seats(2)[1]
    t = s2.topology
    assert str(t.subnet) == "192.168.252.0/24"
    for old, new in zip(base.addresses, t.addresses):
        assert ipaddress.IPv4Address(new) in t.subnet
        assert new.rsplit(".", 1)[1] == old.rsplit(".", 1)[1]
    assert t.vips.as_dict() == {"read_write": "192.168.252.210", "read_only": "192.168.252.211",
                      "haproxy": "192.168.252.212"}
    # nothing in the derived document still points into the base lab's network
    assert not [v for v in strings(s2.document) if v.startswith("192.168.234.")]


def test_names_and_bridges_are_suffixed_and_the_rest_is_the_base(tmp_path):
    base = topology.load(topology.DEFAULT_PATH)
    s1 = room(tmp_path).seats(1)[0]
    assert (s1.topology.name, s1.topology.bridge) == ("patroni-lab-s1", "plab51")
    assert s1.topology.names == base.names
    assert s1.topology.ports == base.ports and s1.topology.cluster == base.cluster
    assert s1.topology.options == base.options


def test_derivation_does_not_touch_the_base_document():
    data = copy.deepcopy(GOOD)
    derive(data, 1, BASE, "plab5")
    assert data == GOOD


def test_default_room_follows_the_topology_subnet_and_bridge(tmp_path):
    r = Room.from_settings(topology.load(topology.DEFAULT_PATH), "", "", tmp_path)
    s = r.seats(2)
    assert [str(x.topology.subnet) for x in s] == ["192.168.235.0/24", "192.168.236.0/24"]
    assert [x.topology.bridge for x in s] == ["plab0s1", "plab0s2"]


def test_a_seat_the_topology_loader_refuses_is_refused_with_its_number(tmp_path):
    # bridge names are at most 15 characters (Linux)
    with pytest.raises(SeatError, match=r"seat 1: lab.bridge"):
        room(tmp_path, prefix="a-very-long-bridge").seats(1)
    # a /26 per seat cannot hold host parts .201-.212
    with pytest.raises(SeatError, match=r"seat 1: nodes\[0\].address: .* outside the lab subnet"):
        room(tmp_path, base="10.9.0.0/26").seats(1)


def test_collisions_are_refused(tmp_path):
    # the base subnet such that seat 1 lands on the base lab's own network
    with pytest.raises(SeatError, match="overlaps the base lab"):
        room(tmp_path, base="192.168.233.0/24").seats(2)
    with pytest.raises(SeatError, match="numbered from 1"):
        room(tmp_path).seat(0)
    # leaving private address space
    with pytest.raises(SeatError, match="not a private network"):
        room(tmp_path, base="192.168.254.0/24").seats(2)
    with pytest.raises(SeatError, match="--seats"):
        room(tmp_path).seats(0)


def test_a_bridge_prefix_giving_the_base_bridge_is_refused(tmp_path):
    f = tmp_path / "t.yml"
    data = copy.deepcopy(GOOD)
    data["lab"]["bridge"] = "plab51"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(SeatError, match="seat 1: its bridge plab51 is the base lab's"):
        room(tmp_path, topo_file=f).seats(1)


def test_bad_base_subnet_is_one_line(tmp_path):
    with pytest.raises(SeatError) as e:
        room(tmp_path, base="192.168.300.0/24")
    assert "\n" not in str(e.value) and "192.168.300.0/24" in str(e.value)


def test_seats_are_written_as_derived_files_and_read_back(tmp_path):
    r = room(tmp_path)
    seats = r.seats(2)
    assert not r.dir.exists()                    # deriving writes nothing
    for s in seats:
        write(s, r.base)
    text = seats[0].topology_path.read_text()
    assert text.startswith("# Seat 1 of the workshop: derived from")
    back = existing(r.dir)
    assert [s.number for s in back] == [1, 2]
    assert back[1].topology.addresses == seats[1].topology.addresses
    assert back[0].env() == {"LAB_TOPOLOGY": str(r.dir / "seat1" / "topology.yml"),
                             "LAB_DIR": str(r.dir / "seat1")}
    assert "invoke workshop.ssh 1 node1" in back[0].enter()


# --- the last run of a seat ------------------------------------------------------------

def test_last_run_prefers_the_run_history_and_reads_exam_scores(tmp_path):
    runs = tmp_path / "runs"
    (runs / "20261201T001000Z-etcd-down").mkdir(parents=True)
    (runs / "20261201T001000Z-etcd-down" / "run.json").write_text(json.dumps(
        {"started": "2026-12-01T00:10:00Z", "finished": "2026-12-01T00:11:00Z",
         "tally": {"pass": 1, "fail": 0}}))
    assert history.last_run(tmp_path).line() == "etcd-down 2026-12-01 00:10:00 1 pass"
    (runs / "20261201T002000Z-exam").mkdir()
    (runs / "20261201T002000Z-exam" / "run.json").write_text(json.dumps(
        {"started": "2026-12-01T00:20:00Z", "finished": None}))
    assert history.last_run(tmp_path).outcome == "exam running"
    (runs / "20261201T002000Z-exam" / "run.json").write_text(json.dumps(
        {"started": "2026-12-01T00:20:00Z", "finished": "2026-12-01T00:30:00Z",
         "score": {"answer": "right", "repaired_s": 84.2, "hints": 1}}))
    assert history.last_run(tmp_path).outcome == "exam: answer right, repaired in 84.2 s, hints 1"


def test_last_run_falls_back_to_the_older_drill_files_and_says_so(tmp_path):
    assert history.last_run(tmp_path) is None
    (tmp_path / "drills").mkdir()
    (tmp_path / "drills" / "etcd-down.json").write_text(json.dumps(
        {"drill": "etcd-down", "verdict": "fail", "started": "2026-12-01T00:00:00Z"}))
    last = history.last_run(tmp_path)
    assert last.what == "etcd-down" and last.outcome == "fail (from drills/)"
