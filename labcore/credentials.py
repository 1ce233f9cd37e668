"""The lab's security profile and the credentials that go with it.

Two profiles (``options.profile`` in the topology):

- ``article``: the article's settings are the lesson: superuser and replication
  passwords from the topology (``123456``), md5 from anywhere, Patroni's REST API
  and etcd without authentication. Harmless on a private Docker bridge.
- ``secure``: for machines others can reach (the ``hosts`` provider's default):
  passwords generated once per lab and kept in ``$LAB_DIR/secrets.yml`` (mode
  0600), scram-sha-256, pg_hba and the firewall limited to the lab's networks,
  basic auth on Patroni's unsafe REST endpoints, etcd with authentication.

Everything that logs in somewhere (provisioning templates, the drills, the
audit) asks :func:`for_lab` for the credentials of the active profile; nothing
else reads the topology's passwords or the secrets file.
"""
from __future__ import annotations

import ipaddress
import json
import os
import secrets as _random
import string
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labcore import state as lab_state
from labcore.topology import Topology

PROFILES = ("article", "secure")
SECRETS_FILE = "secrets.yml"
# Letters and digits only: safe unquoted in YAML, shell, libpq key=value strings and URLs.
ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 24
# Users the secure profile adds; the superuser and replication names stay the topology's.
RESTAPI_USER = "patroni"
ETCD_ROOT_USER = "root"
ETCD_PATRONI_USER = "patroni"


class CredentialsError(RuntimeError):
    """The secrets file is unreadable or incomplete; the message says which file and what to do."""


@dataclass(frozen=True)
class Credentials:
    """Who logs in where, for one lab in one profile. ``None`` = no authentication there."""
    profile: str
    superuser: dict[str, str]
    replication: dict[str, str]
    restapi: dict[str, str] | None = None
    etcd: dict[str, str] | None = None          # Patroni's etcd user
    etcd_root: dict[str, str] | None = None
    trusted: tuple[str, ...] = field(default=())  # networks allowed to the lab's ports (secure)

    @property
    def secure(self) -> bool:
        return self.profile == "secure"

    def rest_auth(self) -> tuple[str, str] | None:
        """(user, password) for Patroni's unsafe REST endpoints, or None when they are open."""
        return (self.restapi["username"], self.restapi["password"]) if self.restapi else None

    def etcd_auth(self) -> tuple[str, str] | None:
        return (self.etcd["username"], self.etcd["password"]) if self.etcd else None


# --- which profile ------------------------------------------------------------

def choose(topo: Topology, provider: str | None) -> tuple[str, str]:
    """(profile, why): the topology's ``options.profile``, else ``secure`` on the hosts provider."""
    explicit = topo.options.get("profile")
    if explicit:
        return explicit, f"options.profile in {topo.path.name}"
    if provider == "hosts":
        return "secure", ("default for the hosts provider: your machines sit on a network others can "
                          "reach (set options.profile: article to teach with the article's passwords)")
    return "article", (f"default for the {provider or 'docker'} provider: the article's settings on the lab's "
                       "private network (set options.profile: secure for generated passwords and closed endpoints)")


def active_profile(topo: Topology, st: lab_state.State | None = None) -> str:
    """The profile the running lab was provisioned with (recorded by provisioning), else the one it would get."""
    st = st or lab_state.load()
    return st.profile or choose(topo, st.provider)[0]


# --- the secrets file ---------------------------------------------------------

def secrets_path() -> Path:
    return lab_state.lab_dir(create=False) / SECRETS_FILE


def password() -> str:
    return "".join(_random.choice(ALPHABET) for _ in range(PASSWORD_LENGTH))


def generate(topo: Topology) -> dict[str, dict[str, str]]:
    """A fresh set of passwords (usernames: the topology's for PostgreSQL, fixed ones for the rest)."""
    return {
        "superuser": {"username": topo.cluster.superuser.username, "password": password()},
        "replication": {"username": topo.cluster.replication.username, "password": password()},
        "restapi": {"username": RESTAPI_USER, "password": password()},
        "etcd_root": {"username": ETCD_ROOT_USER, "password": password()},
        "etcd": {"username": ETCD_PATRONI_USER, "password": password()},
    }


def write_secrets(topo: Topology, data: dict[str, dict[str, str]]) -> Path:
    """Write the secrets file with mode 0600 from the start (never readable by others, not even briefly)."""
    p = secrets_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"# Passwords of the lab {topo.name} (secure profile), generated by patroni-lab.\n"
                "# `invoke secrets` prints them; `invoke up --rotate-secrets` replaces them everywhere.\n")
        yaml.safe_dump(data, f, sort_keys=True)
    tmp.replace(p)
    return p


def read_secrets() -> dict[str, dict[str, str]] | None:
    p = secrets_path()
    if not p.exists():
        return None
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise CredentialsError(f"{p}: unreadable ({e}); restore it, or remove it and run `invoke rebuild`") from None
    wanted = ("superuser", "replication", "restapi", "etcd_root", "etcd")
    if not isinstance(data, dict) or any(
            not isinstance(data.get(k), dict) or not data[k].get("username") or not data[k].get("password")
            for k in wanted):
        raise CredentialsError(f"{p}: must hold {', '.join(wanted)} with username and password each")
    return {k: {"username": str(data[k]["username"]), "password": str(data[k]["password"])} for k in wanted}


def ensure_secrets(topo: Topology) -> dict[str, dict[str, str]]:
    """The lab's secrets, generated and written once on first use."""
    data = read_secrets()
    if data is None:
        data = generate(topo)
        write_secrets(topo, data)
    return data


# --- the networks the secure profile admits ---------------------------------------

def control_source(topo: Topology) -> str | None:
    """The address this host uses toward the lab (``ip route get``; sends nothing)."""
    try:
        out = subprocess.run(["ip", "-j", "route", "get", topo.nodes[0].address], capture_output=True,
                             text=True, timeout=5, check=True).stdout
        routes = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return routes[0].get("prefsrc") if routes else None


def trusted_networks(topo: Topology, source: str | None) -> tuple[str, ...]:
    """The lab subnet (nodes, VIPs, the docker host's gateway), plus the control host when it
    reaches the lab through a router from outside the subnet (hosts provider)."""
    nets = [str(topo.subnet)]
    if source:
        ip = ipaddress.ip_address(source)
        if ip.version == 4 and ip not in topo.subnet:
            nets.append(f"{ip}/32")
    return tuple(nets)


# --- the one entry point ------------------------------------------------------------

def build(topo: Topology, profile: str, *, source: str | None = None,
          secrets: dict[str, dict[str, str]] | None = None) -> Credentials:
    """Credentials for ``profile``; ``secrets`` (secure) default to the lab's secrets file, created if absent."""
    trusted = trusted_networks(topo, source)
    if profile == "article":
        return Credentials("article", dict(topo.cluster.superuser), dict(topo.cluster.replication),
                           trusted=trusted)
    data = secrets if secrets is not None else ensure_secrets(topo)
    return Credentials("secure", data["superuser"], data["replication"], data["restapi"], data["etcd"],
                       data["etcd_root"], trusted=trusted)


def for_lab(topo: Topology, st: lab_state.State | None = None) -> Credentials:
    """The running lab's credentials for its active profile (what drills, audit and clients use)."""
    profile = _profile_with_secrets(topo, st or lab_state.load())
    return build(topo, profile, source=control_source(topo) if profile == "secure" else None)


def _profile_with_secrets(topo: Topology, st: lab_state.State) -> str:
    profile = active_profile(topo, st)
    if profile == "secure" and read_secrets() is None:
        raise CredentialsError(f"{secrets_path()} is missing: the secure lab's passwords are unknown here; "
                               "restore the file, or `invoke rebuild` for new machines and new passwords")
    return profile


def current(topo: Topology) -> Credentials:
    """:func:`for_lab` without the network facts, cached while the state and secrets files stay the
    same: clients call it for every connection (drills probe several times a second)."""
    def stamp(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0
    key = (str(topo.path), str(lab_state.path()), stamp(lab_state.path()), stamp(secrets_path()))
    if _current.get("key") != key:
        _current.update(key=key, creds=build(topo, _profile_with_secrets(topo, lab_state.load())))
    return _current["creds"]


_current: dict[str, Any] = {}


def describe(creds: Credentials, show: bool) -> list[str]:
    """Lines for `invoke secrets`: who logs in where, passwords only when ``show``."""
    def pw(entry: dict[str, str]) -> str:
        return entry["password"] if show else "*" * 8

    lines = [f"profile: {creds.profile}"]
    rows: list[tuple[str, dict[str, str] | None]] = [
        ("PostgreSQL superuser", creds.superuser), ("PostgreSQL replication", creds.replication),
        ("Patroni REST API (unsafe endpoints)", creds.restapi), ("etcd, Patroni's user", creds.etcd),
        ("etcd root", creds.etcd_root)]
    for what, entry in rows:
        lines.append(f"  {what:36} " + (f"{entry['username']} / {pw(entry)}" if entry else "no authentication"))
    return lines


def as_env(creds: Credentials) -> dict[str, Any]:
    """Environment a trainee's shell on the control host can export (libpq and etcdctl read them)."""
    env = {"PGUSER": creds.superuser["username"], "PGPASSWORD": creds.superuser["password"]}
    if creds.etcd_root:
        env["ETCDCTL_USER"] = f"{creds.etcd_root['username']}:{creds.etcd_root['password']}"
    return env
