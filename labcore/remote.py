"""Every way the lab reaches its nodes, each behind the safety guard.

ssh goes through Fabric with ``.lab/ssh_config`` (the same file people use
as ``ssh -F .lab/ssh_config node1``); HTTP and PostgreSQL connections go to
topology addresses only.
"""
from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from functools import lru_cache
from typing import Any

from fabric import Config, Connection

from labcore import guard
from labcore import state as lab_state
from labcore.topology import Topology


def ssh_config_path() -> str:
    return str(lab_state.lab_dir() / "ssh_config")


def connect(topo: Topology, node: str) -> Connection:
    """A Fabric connection to ``node`` (name or member), after the guard's check."""
    n = topo.node(node)
    guard.check(n.address, topo)
    return _connection(n.name, ssh_config_path())


@lru_cache(maxsize=None)
def _connection(name: str, ssh_config: str) -> Connection:
    return new_connection(name, ssh_config)


def new_connection(name: str, ssh_config: str | None = None) -> Connection:
    """The project's one Fabric connection factory: a fresh, unshared connection to node ``name``
    (callers that talk from several threads keep one each). The caller has checked the guard."""
    # No lab command forwards the caller's stdin to a node; mirroring it breaks
    # under CI and pytest, where stdin is closed or captured.
    cfg = Config(runtime_ssh_path=ssh_config or ssh_config_path(), overrides={"run": {"in_stream": False}})
    cfg.load_ssh_config()
    return _KeptAlive(name, config=cfg, connect_timeout=10)


class _KeptAlive(Connection):
    """A connection that sends an SSH keepalive every 15 s. Without one, a command running when its
    machine is reset (a VM's watchdog, a power-off drill) waits forever: the host's side of the TCP
    connection stays open and nothing ever arrives. With it, the reset machine answers the next
    keepalive with a TCP reset and the command ends with an error."""

    def open(self) -> Any:
        result = super().open()
        if self.transport is not None:
            self.transport.set_keepalive(15)
        return result


class _WholeStream(io.StringIO):
    """A script as a stream that Fabric reads in one piece. For a stream that is not a terminal,
    invoke asks for one byte per 10 ms poll: a 20 KB provisioning script would take 200 s."""

    def read(self, size: int | None = -1) -> str:
        return super().read()


def run_as_root(conn: Connection, script: str, **kwargs: Any) -> Any:
    """Run ``script`` with root's bash on the node, the script sent on stdin (``bash -s``). Nothing of
    it is on a command line, where any user of the node sees it in ``ps``: provisioning writes
    configurations that carry passwords. ``echo`` inside the script is bash's builtin, never a process."""
    return conn.run("sudo -n bash -s", in_stream=_WholeStream(script), hide=True, warn=True, **kwargs)


def http(topo: Topology, address: str, port: int, path: str, *, method: str = "GET",
         body: Any = None, timeout: float = 3.0, auth: tuple[str, str] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One HTTP request to a lab address; returns (status, parsed JSON or text). Status 0 = no answer.
    ``auth`` = (user, password) for basic auth (Patroni's unsafe endpoints in the secure profile)."""
    guard.check(address, topo)
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json", **(headers or {})}
    if auth:
        sent["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    req = urllib.request.Request(f"http://{address}:{port}{path}", data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0, None
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


_GATEWAYS: dict[tuple[str, int], str] = {}


def etcd_v3(topo: Topology, address: str, path: str) -> str:
    """The path of a v3 JSON gateway call on this etcd (``/kv/range`` -> ``/v3/kv/range``). etcd 3.4 and
    later serve ``/v3``; 3.3 (Debian 11's) only ``/v3beta``, where a ``/v3`` request is a 404 that would
    read as "no such key". The prefix comes from the server's /version, asked once per address."""
    known = (address, topo.postgres_release.major)     # a lab rebuilt on another release asks again
    if known not in _GATEWAYS:
        status, body = http(topo, address, topo.ports.etcd_client, "/version")
        server = body.get("etcdserver", "") if status == 200 and isinstance(body, dict) else ""
        if not server:
            return f"/v3{path}"          # no answer: not cached, the caller's request fails on its own
        _GATEWAYS[known] = gateway_prefix(server)
    return f"{_GATEWAYS[known]}{path}"


def gateway_prefix(server_version: str) -> str:
    """``3.3.25`` -> ``/v3beta``; ``3.2.x`` -> ``/v3alpha``; 3.4 and later -> ``/v3``."""
    major_minor = tuple(int(x) for x in server_version.split(".")[:2])
    return "/v3alpha" if major_minor < (3, 3) else "/v3beta" if major_minor < (3, 4) else "/v3"


def pg_connect(topo: Topology, address: str, port: int | None = None, *, dbname: str = "postgres",
               timeout: int = 3, **kw: Any):
    """A psycopg2 connection to a lab address as the cluster's superuser (of the lab's profile)."""
    import psycopg2

    from labcore import credentials

    guard.check(address, topo)
    su = credentials.current(topo).superuser
    return psycopg2.connect(host=address, port=port or topo.ports.postgres, dbname=dbname,
                            user=su["username"], password=su["password"],
                            connect_timeout=timeout, **kw)
