"""Seats: N copies of the lab side by side, each derived from the one topology file.

Seat k's topology is a function of the base topology, a base subnet and k:

- its subnet is the k-th network of the base subnet's size after the base
  subnet (base 192.168.250.0/24: seat 1 = 192.168.251.0/24, seat 2 = .252.0/24);
- every address of the base topology (nodes, VIPs, anything inside
  ``lab.subnet``) keeps its host part and moves into the seat's subnet
  (192.168.234.201 -> 192.168.251.201);
- ``lab.name`` gets ``-s<k>`` (containers ``<name>-s<k>-node1``, the docker
  network, libvirt domains), ``lab.bridge`` is ``<bridge prefix><k>``.

The result goes through :func:`lab.topology.parse`, so a seat the loader would
refuse (a bridge name too long, a subnet too small for the addresses) is
refused before anything is created. The file written into the seat's folder is
derived output, rewritten on every ``invoke workshop.up``; nobody edits it.
"""
from __future__ import annotations

import copy
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from labcore import topology
from labcore.exitcodes import Refusal
from labcore.topology import Topology, TopologyError

MAX_SEATS = 32
SEAT_DIR = "seat{k}"
HEADER = ("# Seat {k} of the workshop: derived from {base} by `invoke workshop.up`\n"
          "# (subnet {subnet}, bridge {bridge}). Rewritten on every run; edit {base} instead.\n")


class SeatError(Refusal, ValueError):
    """A seat that cannot be derived or would collide; the message is one line."""


# --- derivation (pure) -----------------------------------------------------------

def seat_subnet(base: ipaddress.IPv4Network, k: int) -> ipaddress.IPv4Network:
    """The k-th network of ``base``'s size after ``base`` (k >= 1)."""
    if k < 1:
        raise SeatError(f"seat {k}: seats are numbered from 1")
    first = int(base.network_address) + k * base.num_addresses
    if first + base.num_addresses - 1 > int(ipaddress.IPv4Address("255.255.255.255")):
        raise SeatError(f"seat {k}: no network of size /{base.prefixlen} after {base} is left")
    net = ipaddress.IPv4Network((first, base.prefixlen))
    if not net.is_private:
        raise SeatError(f"seat {k}: {net} (from base {base}) is not a private network; "
                        "choose a lower base subnet or fewer seats")
    return net


def _rebase(value: Any, old: ipaddress.IPv4Network, new: ipaddress.IPv4Network) -> Any:
    """``value`` with every address of ``old`` moved to the same host part in ``new``."""
    if isinstance(value, dict):
        return {k: _rebase(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase(v, old, new) for v in value]
    if isinstance(value, str):
        try:
            if ipaddress.IPv4Network(value, strict=True) == old and "/" in value:
                return str(new)
        except ValueError:
            pass
        try:
            ip = ipaddress.IPv4Address(value)
        except ValueError:
            return value
        if ip in old:
            return str(ipaddress.IPv4Address(int(new.network_address) + int(ip) - int(old.network_address)))
    return value


def derive(data: dict[str, Any], k: int, base_subnet: ipaddress.IPv4Network,
           bridge_prefix: str) -> dict[str, Any]:
    """Seat k's topology document from the base document (which is not modified)."""
    try:
        old = ipaddress.IPv4Network(str(data["lab"]["subnet"]))
    except (KeyError, TypeError, ValueError):
        raise SeatError("the base topology has no valid lab.subnet to derive seats from") from None
    new = seat_subnet(base_subnet, k)
    out = _rebase(copy.deepcopy(data), old, new)
    out["lab"]["subnet"] = str(new)
    out["lab"]["name"] = f"{data['lab']['name']}-s{k}"
    out["lab"]["bridge"] = f"{bridge_prefix}{k}"
    return out


# --- seats on disk ---------------------------------------------------------------

@dataclass(frozen=True)
class Seat:
    number: int
    dir: Path                # the seat's LAB_DIR: state, ssh_config, runs/, its Vagrant home
    topology: Topology       # validated; its path is the derived file in ``dir``
    document: dict[str, Any]  # the derived YAML document

    @property
    def topology_path(self) -> Path:
        return self.dir / "topology.yml"

    @property
    def vagrant_home(self) -> Path:
        """Vagrant's home for this seat only (see :func:`lab.providers.vagrant.seat_home`)."""
        return self.dir / "vagrant.d"

    def env(self) -> dict[str, str]:
        """The two variables that make every lab command act on this seat."""
        return {"LAB_TOPOLOGY": str(self.topology_path), "LAB_DIR": str(self.dir)}

    def enter(self) -> str:
        """One line a trainee pastes to work in this seat."""
        return (f"seat {self.number}: LAB_TOPOLOGY={self.topology_path} LAB_DIR={self.dir} invoke status"
                f"   |   invoke workshop.ssh {self.number} {self.topology.names[0]}")


@dataclass(frozen=True)
class Room:
    """How seats are derived: from which topology file, which base subnet and bridge prefix, where."""
    base: Path
    base_subnet: ipaddress.IPv4Network
    bridge_prefix: str
    dir: Path

    @classmethod
    def from_settings(cls, topo: Topology, base_subnet: str | None, bridge_prefix: str | None,
                      directory: str | os.PathLike | None) -> "Room":
        """``base_subnet`` "" = the topology's own subnet (seat 1 is the next network);
        ``bridge_prefix`` "" = the topology's bridge + "s" (plab0s1, ...)."""
        if base_subnet:
            try:
                net = ipaddress.IPv4Network(str(base_subnet))
            except ValueError:
                raise SeatError(f"base subnet {base_subnet!r} is not an IPv4 network such as "
                                "192.168.240.0/24") from None
        else:
            net = topo.subnet
        prefix = bridge_prefix or f"{topo.bridge}s"
        return cls(base=topo.path, base_subnet=net, bridge_prefix=prefix,
                   dir=Path(directory or topology.ROOT / ".workshop").resolve())

    def seat(self, k: int, base: Topology | None = None, document: dict | None = None) -> Seat:
        base = base or topology.load(self.base)
        document = document if document is not None else _read(self.base)
        derived = derive(document, k, self.base_subnet, self.bridge_prefix)
        seat_dir = self.dir / SEAT_DIR.format(k=k)
        try:
            topo = topology.parse(derived, seat_dir / "topology.yml")
        except TopologyError as e:
            raise SeatError(f"seat {k}: {e}") from None
        if topo.subnet.overlaps(base.subnet):
            raise SeatError(f"seat {k}: its subnet {topo.subnet} overlaps the base lab's {base.subnet}; "
                            "choose a base subnet outside it")
        if topo.bridge == base.bridge:
            raise SeatError(f"seat {k}: its bridge {topo.bridge} is the base lab's; choose another bridge prefix")
        return Seat(number=k, dir=seat_dir, topology=topo, document=derived)

    def seats(self, count: int) -> list[Seat]:
        """Seats 1..count, all derived and checked against each other; nothing is written."""
        if not isinstance(count, int) or not 1 <= count <= MAX_SEATS:
            raise SeatError(f"--seats {count!r}: must be a number from 1 to {MAX_SEATS}")
        base = topology.load(self.base)
        document = _read(self.base)
        out = [self.seat(k, base, document) for k in range(1, count + 1)]
        collisions(out)
        return out

    def existing(self) -> list[Seat]:
        return existing(self.dir)


def existing(directory: Path) -> list[Seat]:
    """The seats that have a folder under the room's directory (what ``down`` removes)."""
    if not directory.is_dir():
        return []
    found = []
    for d in directory.glob("seat*"):
        suffix = d.name[len("seat"):]
        if suffix.isdigit() and (d / "topology.yml").is_file():
            found.append(load_seat(int(suffix), d))
    return sorted(found, key=lambda s: s.number)


def collisions(seats: list[Seat]) -> None:
    """Refuse two seats sharing a subnet, name, bridge or folder."""
    seen: dict[str, int] = {}
    for s in seats:
        for kind, value in (("name", s.topology.name), ("bridge", s.topology.bridge),
                            ("folder", str(s.dir))):
            other = seen.get(f"{kind}:{value}")
            if other is not None:
                raise SeatError(f"seat {s.number}: {kind} {value} is also seat {other}'s")
            seen[f"{kind}:{value}"] = s.number
    for i, a in enumerate(seats):
        for b in seats[i + 1:]:
            if a.topology.subnet.overlaps(b.topology.subnet):
                raise SeatError(f"seat {b.number}: subnet {b.topology.subnet} overlaps seat {a.number}'s "
                                f"{a.topology.subnet}")


def write(seat: Seat, base: Path) -> Path:
    """Create the seat's folder and (re)write its derived topology file."""
    seat.dir.mkdir(parents=True, exist_ok=True)
    header = HEADER.format(k=seat.number, base=base, subnet=seat.topology.subnet, bridge=seat.topology.bridge)
    tmp = seat.topology_path.with_suffix(".tmp")
    tmp.write_text(header + yaml.safe_dump(seat.document, sort_keys=False, default_flow_style=None))
    tmp.replace(seat.topology_path)
    return seat.topology_path


def load_seat(k: int, seat_dir: Path) -> Seat:
    """A seat from its folder (its derived topology file, validated again)."""
    path = seat_dir / "topology.yml"
    try:
        topo = topology.load(path)
    except TopologyError as e:
        raise SeatError(f"seat {k}: {e}") from None
    return Seat(number=k, dir=seat_dir, topology=topo, document=_read(path))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SeatError(f"{path}: cannot read ({e})") from None
    if not isinstance(data, dict):
        raise SeatError(f"{path}: not a topology document")
    return data
