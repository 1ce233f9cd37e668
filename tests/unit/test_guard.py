"""The safety guard: only the lab's addresses, only through the lab's own interface.

`ip route get` asks the kernel's routing table; it sends no packet, so these
tests contact nothing. Only the loopback's route is read from the host (every host has
it, with or without a network); other routes are given to the guard by a stand-in.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from labcore import guard, topology
from labcore.state import State

GOOD = yaml.safe_load(topology.DEFAULT_PATH.read_text())


def topo_in(subnet_prefix: str, bridge: str = "plabt") -> topology.Topology:
    """The shipped topology moved to ``<subnet_prefix>.0/24``."""
    text = topology.DEFAULT_PATH.read_text().replace("192.168.234.", subnet_prefix + ".")
    data = yaml.safe_load(text)
    data["lab"]["bridge"] = bridge
    return topology.parse(data, Path("t.yml"))


# 198.51.100.0/24 is TEST-NET-2 (RFC 5737): never configured on a host interface.
UNROUTED = topo_in("198.51.100")


def up(interface: str) -> State:
    return State(phase="created", provider="docker", interface=interface)


def test_an_address_outside_the_topology_is_refused():
    with pytest.raises(guard.GuardError, match="not an address of the lab"):
        guard.check("198.51.100.99", UNROUTED, up("plabt"))


def test_nothing_is_contacted_while_the_lab_is_not_up():
    with pytest.raises(guard.GuardError, match="the lab is not up"):
        guard.check(UNROUTED.nodes[0].address, UNROUTED, State())


def fake_route_get(monkeypatch, answer: list[dict] | None) -> None:
    """`ip -j route get` answering ``answer`` (None: no route at all, as on a host without a network)."""
    real = subprocess.run

    def run(cmd, *a, **kw):
        if cmd[:4] == ["ip", "-j", "route", "get"]:
            if answer is None:
                raise subprocess.CalledProcessError(2, cmd, "", "RTNETLINK answers: Network is unreachable")
            return subprocess.CompletedProcess(cmd, 0, json.dumps(answer), "")
        return real(cmd, *a, **kw)
    monkeypatch.setattr(guard.subprocess, "run", run)


def test_an_address_routed_via_the_default_interface_is_refused(monkeypatch):
    # The subnet is on no host interface, so the kernel would send it out the default route
    # (what `ip -j route get` says on a host whose default route is via eth0).
    address = UNROUTED.nodes[0].address
    fake_route_get(monkeypatch, [{"dst": address, "gateway": "192.0.2.1", "dev": "eth0",
                                  "prefsrc": "192.0.2.2", "flags": [], "uid": 0, "cache": []}])
    assert guard.route_interface(address) == "eth0"
    with pytest.raises(guard.GuardError) as e:
        guard.check(address, UNROUTED, up("plabt"))
    assert "routes it via eth0" in str(e.value) and "not the lab network plabt" in str(e.value)


def test_an_address_the_host_cannot_route_at_all_is_refused(monkeypatch):
    address = UNROUTED.nodes[0].address
    fake_route_get(monkeypatch, None)
    assert guard.route_interface(address) is None
    with pytest.raises(guard.GuardError, match="routes it via no interface, not the lab network plabt"):
        guard.check(address, UNROUTED, up("plabt"))


def test_an_address_routed_through_the_lab_interface_is_allowed():
    # 127.0.0.0/8 is routed through lo on every host: a real route to compare with.
    loopback = topo_in("127.10.0")
    guard.check(loopback.nodes[1].address, loopback, up("lo"))
    guard.check(loopback.vips.read_write, loopback, up("lo"))


def fake_routes(monkeypatch, routes: list[dict]) -> None:
    real = subprocess.run

    def run(cmd, *a, **kw):
        if cmd[:4] == ["ip", "-j", "route", "show"]:
            return subprocess.CompletedProcess(cmd, 0, json.dumps(routes), "")
        return real(cmd, *a, **kw)
    monkeypatch.setattr(guard.subprocess, "run", run)


def test_creation_is_refused_when_the_subnet_is_already_routed_elsewhere(monkeypatch):
    fake_routes(monkeypatch, [{"dst": "default", "dev": "eth0"},
                              {"dst": "198.51.100.0/24", "dev": "wlan0"}])
    with pytest.raises(guard.GuardError) as e:
        guard.check_subnet_free(UNROUTED, "plabt")
    assert "198.51.100.0/24 is already routed via wlan0" in str(e.value)


def test_a_wider_route_over_the_subnet_also_counts(monkeypatch):
    fake_routes(monkeypatch, [{"dst": "198.51.0.0/16", "dev": "tun0"}])
    with pytest.raises(guard.GuardError, match="via tun0"):
        guard.check_subnet_free(UNROUTED, None)


def test_the_labs_own_bridge_left_from_an_earlier_run_is_accepted(monkeypatch):
    fake_routes(monkeypatch, [{"dst": "default", "dev": "eth0"},
                              {"dst": "198.51.100.0/24", "dev": "plabt"}])
    guard.check_subnet_free(UNROUTED, "plabt")


def test_a_free_subnet_passes_with_the_hosts_real_routes():
    assert guard.routes_overlapping(UNROUTED.subnet) == []
    guard.check_subnet_free(UNROUTED, "plabt")
