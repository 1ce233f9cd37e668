"""The worked example of docs/workshop.md: two seats on your own machines, one inventory per seat,
checked by the hosts provider's own loader against the seats `invoke workshop.plan` derives."""
from __future__ import annotations

from pathlib import Path

import pytest
from invoke import Context

from lab.cli.workshop import plan
from lab.providers.base import ProviderError
from lab.providers.hosts import load_inventory
from lab.workshop.seats import Room, existing
from labcore.topology import load

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "workshop-two-seats"
BASE = "192.168.240.0/24"


@pytest.fixture
def trainer_home(monkeypatch, tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("not a real key: the loader checks that the file is there\n")
    monkeypatch.setenv("HOME", str(home))
    return home


def test_each_seat_inventory_passes_the_hosts_loader_for_its_derived_seat(trainer_home, tmp_path):
    seats = Room.from_settings(load(), BASE, None, tmp_path / "room").seats(2)
    for s in seats:
        entries = load_inventory(EXAMPLE / f"seat{s.number}.hosts.yml", s.topology)
        assert {n: e.address for n, e in entries.items()} == {n.name: n.address for n in s.topology.nodes}
        assert all(e.key == str(trainer_home / ".ssh" / "id_ed25519") for e in entries.values())
    # and an inventory is one seat's only: seat 1's addresses are not seat 2's
    with pytest.raises(ProviderError, match="is not node1's topology address"):
        load_inventory(EXAMPLE / "seat1.hosts.yml", seats[1].topology)


def test_workshop_plan_writes_the_seats_topologies_and_creates_nothing(tmp_path, capsys):
    room = tmp_path / "room"
    plan(Context(), seats=2, base_subnet=BASE, dir=str(room))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"seat 1: {room}/seat1/topology.yml  subnet 192.168.241.0/24  node1=192.168.241.201")
    assert [s.topology.subnet.exploded for s in existing(room)] == ["192.168.241.0/24", "192.168.242.0/24"]
    assert sorted(p.name for p in room.iterdir()) == ["seat1", "seat2"]     # no record, no machine, no cache
