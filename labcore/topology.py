"""The lab's topology: loaded from one YAML file, validated once, read everywhere.

The schema is declarative (a table of keys and checks, like Patroni's
``validator.py``): every error names the offending key and value in one line,
and loading happens before anything is created, so bad input changes nothing.
"""
from __future__ import annotations

import ipaddress
import os
import re
import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import yaml

from labcore import strict_yaml, versions
from labcore.exitcodes import Refusal
from labcore.strict_yaml import Coerced, describe
from labcore.suggest import unknown

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / "topology.yml"

ROLES = ("postgres", "haproxy", "standby")
FIREWALL_MODES = ("article", "open-ports")
PROFILES = ("article", "secure")
WATCHDOG_MODES = ("off", "automatic", "required")


class TopologyError(Refusal, ValueError):
    """A topology file that cannot be used; the message is one line.

    ``line`` is the file's line the error is about, when known: :func:`load`
    prefixes the message with it and quotes that line.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class WrongType(ValueError):
    """A check's complete message for a value of the wrong type ("must be a number, got ...")."""


# --- the schema ---------------------------------------------------------------

def _need(ok: bool, v: Any, what: str) -> None:
    if not ok:
        raise WrongType(f"must be {what}, got {describe(v)}")


def _str(pattern: str = r".+") -> Callable[[Any], str]:
    def check(v: Any) -> str:
        _need(isinstance(v, str), v, "a string")
        if not re.fullmatch(pattern, v):
            raise ValueError(f"must be a string matching {pattern}")
        return v
    return check


def _ip(v: Any) -> ipaddress.IPv4Address:
    _need(isinstance(v, str), v, "an IPv4 address such as 192.168.234.201")
    try:
        return ipaddress.IPv4Address(v)
    except ValueError:
        raise ValueError("is not an IPv4 address") from None


def _net(v: Any) -> ipaddress.IPv4Network:
    _need(isinstance(v, str), v, "an IPv4 network such as 192.168.234.0/24")
    try:
        return ipaddress.IPv4Network(v)
    except ValueError:
        raise ValueError("is not an IPv4 network such as 192.168.234.0/24") from None


def _port(v: Any) -> int:
    _need(isinstance(v, int) and not isinstance(v, bool), v, "a number")
    if not 1 <= v <= 65535:
        raise ValueError("is not a port number (1-65535)")
    return v


def _bool(v: Any) -> bool:
    _need(isinstance(v, bool), v, "true or false")
    return v


_bool.takes_yaml_booleans = True     # `synchronous_mode: yes` means what it says


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        _need(isinstance(v, str), v, f"one of {', '.join(choices)}")
        if v not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return v
    return check


def _list_of(item: Callable[[Any], Any]) -> Callable[[Any], list]:
    def check(v: Any) -> list:
        _need(isinstance(v, list), v, "a list such as [node4]")
        return [item(x) for x in v]
    return check


def _roles(v: Any) -> list[str]:
    _need(isinstance(v, list) and bool(v), v, "a non-empty list such as [postgres, haproxy]")
    for r in v:
        if r == "etcd":
            raise WrongType("'etcd' is not a node role: list the node under etcd.members instead "
                            f"(roles: {', '.join(ROLES)})")
        if r not in ROLES:
            raise ValueError(f"has {unknown('role', str(r), ROLES)}")
    return list(v)


def _credentials(v: Any) -> dict:
    if not isinstance(v, dict) or set(v) != {"username", "password"}:
        raise WrongType(f"must be {{username: ..., password: ...}}, got {describe(v)}")
    for k, x in v.items():
        # A whole number prints back as typed (YAML's surprises are caught before this).
        _need(isinstance(x, str) or (isinstance(x, int) and not isinstance(x, bool)), x, f"{k}: a string")
    return {k: str(x) for k, x in v.items()}


def _release(v: Any) -> str:
    _need(isinstance(v, str), v, f'a quoted release number such as "{versions.DEFAULT_PATRONI}"')
    if not versions.VERSION.fullmatch(v):
        raise ValueError(f"must be a release number such as {versions.DEFAULT_PATRONI}")
    return v


def _postgres_major(v: Any) -> int:
    known = ", ".join(map(str, versions.POSTGRES))
    _need(isinstance(v, int) and not isinstance(v, bool), v, f"a PostgreSQL major: {known}")
    if v not in versions.POSTGRES:
        raise ValueError(f"must be one of {known} (each the PostgreSQL of a Debian release the lab builds nodes from)")
    return v


def _mapping(v: Any) -> dict:
    _need(isinstance(v, dict), v, "a mapping")
    return v


NAME = _str(r"[a-z][a-z0-9-]{0,30}")
MEMBER = _str(r"[a-z][a-z0-9_-]{0,30}")

# key -> check; a trailing "?" marks an optional key with its default.
SCHEMA: dict[str, dict[str, Any]] = {
    "lab": {"name": NAME, "subnet": _net, "bridge": _str(r"[a-z][a-z0-9_-]{0,14}")},
    "node": {"name": NAME, "address": _ip, "member": MEMBER, "roles": _roles},
    "vips": {"read_write": _ip, "read_only": _ip, "haproxy": _ip},
    "ports": {k: _port for k in ("postgres", "patroni", "etcd_client", "etcd_peer",
                                  "haproxy_primary", "haproxy_replicas", "haproxy_stats")},
    "cluster": {"scope": MEMBER, "namespace": _str(r"/([\w-]+/)*"), "standby_scope": MEMBER,
                "standby_slot": _str(r"[a-z0-9_]+"), "data_dir": _str(r"/\S+"),
                "superuser": _credentials, "replication": _credentials},
    "etcd": {"members": _list_of(NAME)},
    # profile: None = chosen by provider at `up` (labcore/credentials.py: secure on hosts, else article)
    "options": {"profile?": (None, _one_of(*PROFILES)),
                "firewall?": ("article", _one_of(*FIREWALL_MODES)),
                "watchdog_mode?": ("automatic", _one_of(*WATCHDOG_MODES)),
                "synchronous_mode?": (False, _bool),
                "replicatefrom?": ({}, _mapping),
                "patroni_version?": (versions.DEFAULT_PATRONI, _release),
                "postgres_version?": (versions.DEFAULT_POSTGRES, _postgres_major)},
}
TOP_LEVEL = ("lab", "nodes", "vips", "ports", "cluster", "etcd", "options")


def _coerced_in(value: Any, where: str) -> tuple[str, Coerced] | None:
    """The first value in ``value`` (recursively) that YAML read as something else than typed,
    with its key path."""
    if isinstance(value, Coerced):
        return where, value
    if isinstance(value, dict):
        inner = [(f"{where}.{k}", k) for k in value] + [(f"{where}.{k}", v) for k, v in value.items()]
    elif isinstance(value, list):
        inner = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    else:
        inner = []
    for path, v in inner:
        found = _coerced_in(v, path)
        if found:
            return found
    return None


def _as_typed(where: str, value: Any, check: Callable[[Any], Any]) -> Any:
    """``value``, or a TopologyError if YAML changed what the user typed where the check needs text."""
    found = _coerced_in(value, where)
    if found is None:
        return value
    path, c = found
    if c is value and isinstance(c.value, bool) and getattr(check, "takes_yaml_booleans", False):
        return c.value
    fix = f'"{c}"' if path.endswith("]") else f'{path.rsplit(".", 1)[-1]}: "{c}"'
    raise TopologyError(f"{path}: YAML reads {c} as {describe(c.value)}, not as the text you typed; "
                        f"write it in quotes: {fix}", line=c.line)


def _section(where: str, data: Any, schema: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TopologyError(f"{where}: must be a mapping, got {describe(data)}")
    lines = getattr(data, "lines", {})
    known = {k.rstrip("?") for k in schema}
    for key in data:
        if key not in known:
            raise TopologyError(f"{where}.{key}: {unknown('key', str(key), sorted(known))}",
                                line=lines.get(key))
    out: dict[str, Any] = {}
    for key, check in schema.items():
        name = key.rstrip("?")
        if name not in data:
            if key.endswith("?"):
                out[name] = check[0]
                continue
            raise TopologyError(f"{where}.{name}: missing")
        fn = check[1] if key.endswith("?") else check
        value = _as_typed(f"{where}.{name}", data[name], fn)
        try:
            out[name] = fn(value)
        except WrongType as e:
            raise TopologyError(f"{where}.{name}: {e}", line=lines.get(name)) from None
        except ValueError as e:
            raise TopologyError(f"{where}.{name}: {value!r} {e}", line=lines.get(name)) from None
    return out


# --- the model ----------------------------------------------------------------

class Section:
    """A topology section read by name (``topo.ports.patroni``). It is also a read-only mapping of its
    keys, for what iterates over them (every VIP role, every port), for a key held in a variable
    (``topo.vips[role]``) and for templates and JSON."""

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self)]

    def values(self) -> list[Any]:
        return [getattr(self, k) for k in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.keys() else default

    def as_dict(self) -> dict[str, Any]:
        return {k: v.as_dict() if isinstance(v, Section) else v for k, v in self.items()}


@dataclass(frozen=True)
class Vips(Section):
    read_write: str          # moved by the Patroni callback (§7.2)
    read_only: str           # keepalived on a replica (§7.3)
    haproxy: str             # haproxy's own keepalived VIP (§7.4)


@dataclass(frozen=True)
class Ports(Section):
    postgres: int
    patroni: int
    etcd_client: int
    etcd_peer: int
    haproxy_primary: int
    haproxy_replicas: int
    haproxy_stats: int


@dataclass(frozen=True)
class Login(Section):
    username: str
    password: str


@dataclass(frozen=True)
class Cluster(Section):
    scope: str
    namespace: str
    standby_scope: str
    standby_slot: str
    data_dir: str
    superuser: Login
    replication: Login


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    member: str
    roles: tuple[str, ...]
    etcd: bool = False

    def has(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class Topology:
    path: Path
    name: str
    subnet: ipaddress.IPv4Network
    bridge: str
    nodes: tuple[Node, ...]
    vips: Vips
    ports: Ports
    cluster: Cluster
    etcd_members: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        """A node by its name (node1) or its Patroni member name (pg1)."""
        for n in self.nodes:
            if name in (n.name, n.member):
                return n
        raise KeyError(unknown("node", name, self.names + [n.member for n in self.nodes]))

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def patroni_release(self) -> versions.PatroniRelease:
        """The Patroni the nodes run (options.patroni_version)."""
        return versions.PatroniRelease(self.options.get("patroni_version", versions.DEFAULT_PATRONI))

    @property
    def postgres_release(self) -> versions.PostgresRelease:
        """The PostgreSQL the nodes run, and the Debian release that ships it (options.postgres_version)."""
        return versions.POSTGRES[self.options.get("postgres_version", versions.DEFAULT_POSTGRES)]

    def with_role(self, role: str) -> list[Node]:
        return [n for n in self.nodes if n.has(role)]

    @property
    def postgres_nodes(self) -> list[Node]:
        return self.with_role("postgres")

    @property
    def haproxy_nodes(self) -> list[Node]:
        return self.with_role("haproxy")

    @property
    def standby_node(self) -> Node | None:
        found = self.with_role("standby")
        return found[0] if found else None

    @property
    def etcd_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.etcd]

    @property
    def gateway(self) -> str:
        """The host's own address on the lab network (first usable address)."""
        return str(next(self.subnet.hosts()))

    @cached_property
    def addresses(self) -> list[str]:
        """Every address the lab owns: node addresses, then VIPs."""
        return [n.address for n in self.nodes] + list(self.vips.values())

    def etcd_hosts(self) -> str:
        """host:port list for Patroni's etcd/etcd3 section."""
        port = self.ports.etcd_client
        return ",".join(f"{n.address}:{port}" for n in self.etcd_nodes)

    def as_dict(self) -> dict[str, Any]:
        """A plain view for templates and for the Vagrantfile's Ruby side."""
        return {
            "name": self.name, "subnet": str(self.subnet), "bridge": self.bridge,
            "gateway": self.gateway,
            "nodes": [n.__dict__ | {"roles": list(n.roles)} for n in self.nodes],
            "vips": self.vips.as_dict(), "ports": self.ports.as_dict(), "cluster": self.cluster.as_dict(),
            "etcd_members": list(self.etcd_members), "options": self.options,
        }


def parse(data: Any, path: Path = DEFAULT_PATH) -> Topology:
    """Validate an already-read YAML document and build the model: each check below raises a
    TopologyError naming the key at fault, before anything is built."""
    _check_top_level(data, path.name)
    lab = _section("lab", data["lab"], SCHEMA["lab"])
    if lab["subnet"].prefixlen > 29:
        raise TopologyError(f"lab.subnet: {lab['subnet']} is too small for a lab")
    vips = _section("vips", data["vips"], SCHEMA["vips"])
    ports = _section("ports", data["ports"], SCHEMA["ports"])
    cluster = _section("cluster", data["cluster"], SCHEMA["cluster"])
    etcd = _section("etcd", data["etcd"], SCHEMA["etcd"])
    options = _section("options", data.get("options") or {}, SCHEMA["options"])
    raw_nodes = data["nodes"]
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise TopologyError("nodes: must be a non-empty list")
    nodes_in = [_section(f"nodes[{i}]", n, SCHEMA["node"]) for i, n in enumerate(raw_nodes)]

    _check_addresses(lab["subnet"], nodes_in, vips, ports)
    _check_etcd_members(etcd["members"], {n["name"] for n in nodes_in})
    pg = _check_roles(nodes_in)
    _check_replicatefrom(options["replicatefrom"], {n["member"] for n in pg})
    _check_versions(options["patroni_version"], options["postgres_version"])

    nodes = tuple(Node(name=n["name"], address=str(n["address"]), member=n["member"],
                       roles=tuple(n["roles"]), etcd=n["name"] in etcd["members"])
                  for n in nodes_in)
    return Topology(path=path, name=lab["name"], subnet=lab["subnet"], bridge=lab["bridge"], nodes=nodes,
                    vips=Vips(**{k: str(v) for k, v in vips.items()}), ports=Ports(**ports),
                    cluster=Cluster(**{**cluster, "superuser": Login(**cluster["superuser"]),
                                       "replication": Login(**cluster["replication"])}),
                    etcd_members=tuple(etcd["members"]), options=options)


def _check_versions(patroni: str, postgres: int) -> None:
    why = versions.refusal(patroni, postgres)
    if why:
        raise TopologyError(f"options: {why}")


def _check_top_level(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise TopologyError(f"{where}: must be a mapping of {', '.join(TOP_LEVEL)}")
    for key in data:
        if key not in TOP_LEVEL:
            raise TopologyError(f"{where}: {key}: {unknown('key', str(key), TOP_LEVEL)}",
                                line=getattr(data, "lines", {}).get(key))
    for key in TOP_LEVEL:
        if key not in data and key != "options":
            raise TopologyError(f"{where}: {key}: missing")


def _check_addresses(subnet: ipaddress.IPv4Network, nodes_in: list[dict], vips: dict, ports: dict) -> None:
    """Every node address and VIP inside the subnet and usable, and no name, member, address or port twice."""
    def in_subnet(key: str, ip: ipaddress.IPv4Address) -> None:
        if ip not in subnet:
            raise TopologyError(f"{key}: {ip} is outside the lab subnet {subnet}")
        if ip in (subnet.network_address, subnet.broadcast_address):
            raise TopologyError(f"{key}: {ip} is the subnet's network or broadcast address")
        if str(ip) == str(next(subnet.hosts())):
            raise TopologyError(f"{key}: {ip} is reserved for the host side of the lab network")

    seen: dict[str, str] = {}

    def unique(kind: str, key: str, value: str) -> None:
        other = seen.get(f"{kind}:{value}")
        if other:
            raise TopologyError(f"{key}: {value} duplicates {other}")
        seen[f"{kind}:{value}"] = key

    for i, n in enumerate(nodes_in):
        key = f"nodes[{i}]"
        unique("name", f"{key}.name", n["name"])
        unique("member", f"{key}.member", n["member"])
        in_subnet(f"{key}.address", n["address"])
        unique("address", f"{key}.address", str(n["address"]))
    for role, ip in vips.items():
        in_subnet(f"vips.{role}", ip)
        other = seen.get(f"address:{ip}")
        if other and other.startswith("nodes["):   # another VIP falls to unique() below
            raise TopologyError(f"vips.{role}: {ip} equals {other}; a VIP must not be a node address")
        unique("address", f"vips.{role}", str(ip))
    for port, number in ports.items():
        unique("port", f"ports.{port}", str(number))


def _check_etcd_members(members: list[str], names: set[str]) -> None:
    if not members:
        raise TopologyError("etcd.members: [] needs at least one etcd member")
    for m in members:
        if m not in names:
            raise TopologyError(f"etcd.members: {m!r} is not a node (known: {', '.join(sorted(names))})")
    if len(set(members)) != len(members):
        raise TopologyError(f"etcd.members: {members} lists a node twice")


def _check_roles(nodes_in: list[dict]) -> list[dict]:
    """At least two postgres nodes, at most one standby node of its own; returns the postgres nodes."""
    pg = [n for n in nodes_in if "postgres" in n["roles"]]
    if len(pg) < 2:
        raise TopologyError(f"nodes: {len(pg)} node(s) with role postgres; a Patroni cluster needs at least 2")
    standby = [n for n in nodes_in if "standby" in n["roles"]]
    if len(standby) > 1:
        raise TopologyError(f"nodes: {', '.join(n['name'] for n in standby)} all have role standby; at most one may")
    for n in standby:
        if "postgres" in n["roles"]:
            raise TopologyError(f"nodes: {n['name']} has roles postgres and standby; a standby cluster member needs its own node")
    return pg


def _check_replicatefrom(replicatefrom: dict[str, str], pg_members: set[str]) -> None:
    for src, dst in replicatefrom.items():
        if src not in pg_members or dst not in pg_members or src == dst:
            raise TopologyError(
                f"options.replicatefrom: {src}: {dst} must name two different postgres members "
                f"({', '.join(sorted(pg_members))})")


def load(path: str | os.PathLike | None = None) -> Topology:
    """Read and validate the topology (``$LAB_TOPOLOGY`` or ``topology.yml``)."""
    p = Path(path or os.environ.get("LAB_TOPOLOGY") or DEFAULT_PATH)
    try:
        text = p.read_text()
    except OSError as e:
        raise TopologyError(f"{p}: cannot read ({e.strerror})") from None
    lines = text.splitlines()

    def at(line: int) -> str:
        quoted = re.sub(r"\s+#.*$", "", lines[line - 1]).strip() if 0 < line <= len(lines) else ""
        return f"{p.name} line {line} (`{quoted}`)"

    try:
        data = strict_yaml.load(text)
    except strict_yaml.DuplicateKey as e:
        raise TopologyError(f"{at(e.line)}: {e.key} given twice in one mapping "
                            f"(first on line {e.first}); keep one") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        place = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise TopologyError(f"{p.name}: not valid YAML{place}: {problem}") from None
    try:
        return parse(data, p)
    except TopologyError as e:
        if e.line is None:
            raise
        raise TopologyError(f"{at(e.line)}: {e}", line=e.line) from None
