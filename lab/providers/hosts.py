"""Bring your own machines: four existing hosts listed in an inventory file.

Nothing is created and nothing is ever destroyed. ``up`` checks that the
inventory names exactly the topology's nodes at the topology's addresses, that
the host routes all of them through one interface (recorded as the lab
interface, so the guard keeps working), that each answers on SSH with a user
that has password-less sudo, and which OS it runs (``/etc/os-release`` ->
the provisioning platform).

Inventory (YAML), found in this order: the provider setting ``inventory``
(invoke.yaml ``lab.inventory``), ``$LAB_INVENTORY``, ``hosts.yml`` beside the
topology file. See ``examples/hosts.example.yml``.
"""
from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from labcore import guard
from labcore import state as lab_state
from lab.providers.base import Machines, Provider, ProviderError, Report, SshHost
from labcore.topology import Topology

HOST_KEYS = {"address", "user", "key", "port"}
SSH_TIMEOUT = 10


@dataclass(frozen=True)
class Entry:
    node: str
    address: str
    user: str
    key: str
    port: int = 22


# --- the inventory ----------------------------------------------------------------

def inventory_path(topo: Topology, settings: Mapping[str, Any] | None = None) -> Path:
    given = (settings or {}).get("inventory") or os.environ.get("LAB_INVENTORY")
    return Path(given).expanduser() if given else topo.path.with_name("hosts.yml")


def load_inventory(path: Path, topo: Topology) -> dict[str, Entry]:
    """Read and check the inventory; every error is one line naming the file and key."""
    where = path.name
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ProviderError(f"hosts: inventory {path} cannot be read ({e.strerror}); "
                            f"copy examples/hosts.example.yml there or set LAB_INVENTORY") from None
    except yaml.YAMLError as e:
        raise ProviderError(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict):
        raise ProviderError(f"{where}: must be a mapping with `hosts:` (node name -> address, user, key)")
    unknown = set(data) - {"defaults", "hosts"}
    if unknown:
        raise ProviderError(f"{where}: {sorted(unknown)[0]}: unknown key (known: defaults, hosts)")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict) or set(defaults) - (HOST_KEYS - {"address"}):
        raise ProviderError(f"{where}: defaults: must be a mapping of user, key, port")
    hosts: dict[str, Any] = data["hosts"]
    missing = [n for n in topo.names if n not in hosts]
    if missing:
        raise ProviderError(f"{where}: hosts: {', '.join(missing)} missing (the topology has {', '.join(topo.names)})")
    extra = [n for n in hosts if n not in topo.names]
    if extra:
        raise ProviderError(f"{where}: hosts.{extra[0]}: not a node of the topology ({', '.join(topo.names)})")

    out: dict[str, Entry] = {}
    for name in topo.names:
        raw = hosts[name] or {}
        if not isinstance(raw, dict):
            raise ProviderError(f"{where}: hosts.{name}: must be a mapping of address, user, key, port")
        bad = set(raw) - HOST_KEYS
        if bad:
            raise ProviderError(f"{where}: hosts.{name}.{sorted(bad)[0]}: unknown key (known: {', '.join(sorted(HOST_KEYS))})")
        item = {**defaults, **raw}
        for key in ("address", "user", "key"):
            if not item.get(key):
                raise ProviderError(f"{where}: hosts.{name}.{key}: missing (and no default)")
        address = str(item["address"])
        expected = topo.node(name).address
        if address != expected:
            raise ProviderError(f"{where}: hosts.{name}.address: {address} is not {name}'s topology address "
                                f"{expected}; the lab only talks to the topology's addresses")
        port = item.get("port", 22)
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise ProviderError(f"{where}: hosts.{name}.port: {port!r} must be a port number 1-65535")
        key = Path(str(item["key"])).expanduser()
        if not key.is_absolute():
            key = (path.parent / key).resolve()
        if not key.is_file():
            raise ProviderError(f"{where}: hosts.{name}.key: {key} is not a readable private key file")
        out[name] = Entry(node=name, address=address, user=str(item["user"]), key=str(key), port=port)
    return out


# --- routes, SSH, OS ------------------------------------------------------------------

def route(address: str) -> dict[str, Any]:
    """The host's route to ``address`` (``ip route get``; no packet is sent)."""
    try:
        out = subprocess.run(["ip", "-j", "route", "get", address], capture_output=True, text=True,
                             timeout=5, check=True).stdout
        routes = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}
    return routes[0] if routes else {}


def routes_to(address: str) -> list[dict[str, Any]]:
    """Every route of the main table covering ``address`` (no packet is sent)."""
    try:
        out = subprocess.run(["ip", "-j", "route", "show", "match", address], capture_output=True,
                             text=True, timeout=5, check=True).stdout
        return json.loads(out or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return []


def specific_route(address: str) -> dict[str, Any] | None:
    """The most specific route to ``address`` other than the default route."""
    best: tuple[int, dict[str, Any]] | None = None
    for r in routes_to(address):
        dst = r.get("dst", "default")
        if dst == "default":
            continue
        prefix = ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False).prefixlen
        if best is None or prefix > best[0]:
            best = (prefix, r)
    return best[1] if best else None


def lab_interface(entries: Mapping[str, Entry]) -> str:
    """The one interface the host uses for every inventory address, or a ProviderError."""
    devs: dict[str, list[str]] = {}
    for e in entries.values():
        r = route(e.address)
        dev = r.get("dev")
        if not dev:
            raise ProviderError(f"hosts: {e.node} ({e.address}) has no route from this host")
        if dev == "lo" or r.get("type") == "local":
            raise ProviderError(f"hosts: {e.node} ({e.address}) is this host itself; "
                                f"run the lab from a separate control machine")
        if not specific_route(e.address):
            # Never send lab traffic wherever the default gateway leads.
            raise ProviderError(f"hosts: {e.node} ({e.address}) is reached only through the default route; "
                                f"the machines must be on a network this host routes explicitly "
                                f"(a connected interface, or `ip route add <subnet> via <router>`)")
        devs.setdefault(dev, []).append(e.node)
    if len(devs) > 1:
        split = "; ".join(f"{', '.join(nodes)} via {dev}" for dev, nodes in devs.items())
        raise ProviderError(f"hosts: the nodes are reached through different interfaces ({split}); "
                            f"the lab needs one network for all of them")
    return next(iter(devs))


def ssh_run(entry: Entry, command: str, timeout: float = 30) -> tuple[int, str]:
    """Run one command over SSH as the inventory user; (exit status, stdout)."""
    import paramiko

    client = paramiko.SSHClient()
    # Lab machines are rebuilt often; their host keys are not pinned (as in .lab/ssh_config).
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(entry.address, port=entry.port, username=entry.user, key_filename=entry.key,
                       timeout=SSH_TIMEOUT, banner_timeout=SSH_TIMEOUT, auth_timeout=SSH_TIMEOUT,
                       allow_agent=False, look_for_keys=False)
        _, stdout, _ = client.exec_command(command, timeout=timeout)
        text = stdout.read().decode(errors="replace")
        return stdout.channel.recv_exit_status(), text
    finally:
        client.close()


def parse_os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip().strip('"').strip("'")
    return out


def platform_of(os_release: Mapping[str, str]) -> str | None:
    """The provisioning platform for an /etc/os-release, or None when unsupported."""
    ids = {os_release.get("ID", "")} | set(os_release.get("ID_LIKE", "").split())
    major = os_release.get("VERSION_ID", "").split(".")[0]
    if "debian" in ids and os_release.get("ID") == "debian" and major == "12":
        return "debian12"
    if ids & {"rhel", "centos", "fedora"} and major == "7":
        return "el7"
    return None


def check_host(entry: Entry, topo: Topology, interface: str) -> str:
    """Guarded reachability, sudo and OS check of one host; returns its platform."""
    # The state is not written yet: check against the interface preflight found.
    guard.check(entry.address, topo, lab_state.State(phase="created", interface=interface))
    try:
        with socket.create_connection((entry.address, entry.port), timeout=SSH_TIMEOUT):
            pass
    except OSError as e:
        raise ProviderError(f"hosts: {entry.node} ({entry.address}:{entry.port}) does not answer on SSH ({e})") from None
    try:
        status, text = ssh_run(entry, "cat /etc/os-release && sudo -n true && echo SUDO-OK")
    except Exception as e:  # paramiko raises many kinds; all mean "cannot log in"
        raise ProviderError(f"hosts: {entry.node}: ssh as {entry.user} with {entry.key} failed "
                            f"({type(e).__name__}: {e})") from None
    if status != 0 or "SUDO-OK" not in text:
        raise ProviderError(f"hosts: {entry.node}: {entry.user} cannot run sudo without a password "
                            f"(add `{entry.user} ALL=(ALL) NOPASSWD:ALL` to sudoers)")
    info = parse_os_release(text)
    platform = platform_of(info)
    if not platform:
        raise ProviderError(f"hosts: {entry.node} runs {info.get('PRETTY_NAME', 'an unknown OS')}; "
                            f"supported: Debian 12 (debian12), CentOS/RHEL 7 (el7)")
    return platform


# --- the provider ---------------------------------------------------------------------

class HostsProvider(Provider):
    name = "hosts"

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})
        self.entries: dict[str, Entry] = {}
        self.interface: str | None = None

    def preflight(self, topo: Topology) -> None:
        self.entries = load_inventory(inventory_path(topo, self.settings), topo)
        self.interface = lab_interface(self.entries)

    def expected_interface(self, topo: Topology) -> str | None:
        """The interface preflight found: the hosts' network already exists, on it."""
        return self.interface

    def create(self, topo: Topology, report: Report) -> Machines:
        if not self.entries or not self.interface:
            self.preflight(topo)
        assert self.interface is not None
        report(f"hosts: using existing machines from {inventory_path(topo, self.settings)} "
               f"(nothing is created); lab interface {self.interface}")
        platforms: dict[str, str] = {}
        for e in self.entries.values():
            platforms[e.node] = check_host(e, topo, self.interface)
            report(f"hosts: {e.node} {e.address} reachable as {e.user}, platform {platforms[e.node]}")
        if len(set(platforms.values())) > 1:
            mixed = ", ".join(f"{n}={p}" for n, p in platforms.items())
            raise ProviderError(f"hosts: the machines run different platforms ({mixed}); use one OS for all")
        return Machines(interface=self.interface, platform=next(iter(platforms.values())),
                        hosts={e.node: SshHost(hostname=e.address, user=e.user, key=e.key, port=e.port)
                               for e in self.entries.values()})

    def destroy(self, topo: Topology, report: Report) -> None:
        report(f"hosts: nothing destroyed; the {len(topo.nodes)} existing machines "
               f"({', '.join(n.address for n in topo.nodes)}) keep running with what was installed on them")


def provider(name: str, settings: Mapping[str, Any]) -> HostsProvider:
    return HostsProvider(settings)
