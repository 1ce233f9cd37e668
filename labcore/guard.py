"""The safety guard: the lab talks only to its own addresses, through its own network.

Every connection the lab makes (ssh, HTTP to Patroni's REST API, PostgreSQL)
first passes :func:`check`. An address is allowed only if it belongs to the
topology AND the host routes it through the interface of the lab network that
the provider recorded when it built the machines. If the lab is not up, or the
user's own LAN uses the same subnet, nothing is sent.
"""
from __future__ import annotations

import ipaddress
import json
import subprocess

from labcore import state as lab_state
from labcore.exitcodes import Refusal
from labcore.topology import Topology


class GuardError(Refusal, RuntimeError):
    """A connection the guard refused; the message says why and what to do."""


def route_interface(address: str) -> str | None:
    """The interface the host would use to reach ``address`` (``ip route get``); no packet is sent."""
    try:
        out = subprocess.run(["ip", "-j", "route", "get", address], capture_output=True,
                             text=True, timeout=5, check=True).stdout
        routes = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return routes[0].get("dev") if routes else None


def check(address: str, topo: Topology, state: lab_state.State | None = None) -> None:
    """Raise GuardError unless ``address`` is the lab's and routed through the lab network."""
    if address not in topo.addresses:
        raise GuardError(f"refusing to contact {address}: it is not an address of the lab "
                         f"({topo.path.name} lists {', '.join(topo.addresses)})")
    state = state or lab_state.load()
    if not state.is_up or not state.interface:
        raise GuardError(f"refusing to contact {address}: the lab is not up (run `invoke up`)")
    dev = route_interface(address)
    if dev != state.interface:
        raise GuardError(
            f"refusing to contact {address}: the host routes it via {dev or 'no interface'}, "
            f"not the lab network {state.interface}; is another network using {topo.subnet}?")


def routes_overlapping(subnet: ipaddress.IPv4Network) -> list[tuple[str, str | None]]:
    """(destination, interface) of every host route, other than the default, that covers part of ``subnet``."""
    try:
        out = subprocess.run(["ip", "-j", "route", "show"], capture_output=True, text=True,
                             timeout=5, check=True).stdout
        routes = json.loads(out or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    found = []
    for r in routes:
        dst = r.get("dst", "")
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue        # "default" and the like
        if net.version == 4 and net.overlaps(subnet):
            found.append((dst, r.get("dev")))
    return found


def check_subnet_free(topo: Topology, interface: str | None) -> None:
    """Before anything is created: refuse if the lab subnet is already routed via another interface.

    ``interface`` is the lab's own interface when it is known beforehand (the
    docker bridge, or the one recorded in the state); None means no route may exist yet.
    """
    for dst, dev in routes_overlapping(topo.subnet):
        if interface is None or dev != interface:
            raise GuardError(
                f"refusing to create the lab: {topo.subnet} is already routed via {dev} ({dst}), "
                f"not the lab network{' ' + interface if interface else ''}; "
                f"choose another lab.subnet in {topo.path.name}")
