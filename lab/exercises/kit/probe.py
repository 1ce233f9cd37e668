"""Who is who, right now: roles are read from the running lab, never stored.

Leader and replicas come from Patroni's REST API (GET /cluster, GET /patroni),
VIP holders from ``ip -o addr`` on each node, "is this a primary" from
``pg_is_in_recovery()`` on each node's own address.
"""
from __future__ import annotations

import base64
import json
from typing import Any

import math

from labcore import vips
from labcore import credentials, poll, remote
from lab.exercises.kit import sql
from lab.exercises.kit.shell import Shell
from labcore.topology import Topology

# Patroni 4 says "primary" where 3.x and older said "master".
PRIMARY_ROLES = ("leader", "primary", "master")


def answer_within(seconds: float) -> int:
    """How long a look waits for a node's answer: stretched with the lab's timeout scale, as every wait
    is (a PostgreSQL connection to a VM under TCG takes seconds), in whole seconds for libpq."""
    return math.ceil(poll.scaled(seconds))


class Probe:
    def __init__(self, topo: Topology, shell: Shell) -> None:
        self.topo = topo
        self.shell = shell
        self._etcd_api: str | None = None

    # --- Patroni's REST API ----------------------------------------------------

    def rest(self, member: str, path: str, *, method: str = "GET", body: Any = None,
             timeout: float = 3.0) -> tuple[int, Any]:
        """A request to a member's REST API. Unsafe methods carry the profile's credentials (the
        secure profile requires them); GETs go without, as keepalived's and haproxy's checks do."""
        n = self.topo.node(member)
        auth = credentials.current(self.topo).rest_auth() if method != "GET" else None
        return remote.http(self.topo, n.address, self.topo.ports.patroni, path,
                           method=method, body=body, timeout=poll.scaled(timeout), auth=auth)

    def cluster(self) -> dict | None:
        """GET /cluster from the first member that answers (any member knows the whole picture)."""
        for n in self.topo.postgres_nodes:
            status, body = self.rest(n.member, "/cluster")
            if status == 200 and isinstance(body, dict):
                return body
        return None

    def members(self) -> list[dict]:
        c = self.cluster()
        return list(c.get("members", [])) if c else []

    def leader(self) -> str | None:
        """The member holding the leader key, or None (no leader / DCS unreachable)."""
        for m in self.members():
            if m.get("role") in PRIMARY_ROLES:
                return m["name"]
        return None

    def replicas(self) -> list[str]:
        """Members other than the leader, in topology order (sync standbys first)."""
        lead = self.leader()
        ms = {m["name"]: m for m in self.members()}
        out = [n.member for n in self.topo.postgres_nodes if n.member != lead and n.member in ms]
        return sorted(out, key=lambda m: ms[m].get("role") != "sync_standby")

    def member_state(self, member: str) -> dict:
        """GET /patroni on one member ({} if its REST API does not answer)."""
        status, body = self.rest(member, "/patroni")
        return body if status in (200, 503) and isinstance(body, dict) else {}

    def running_versions(self) -> dict[str, str | None]:
        """The Patroni and PostgreSQL releases the members run, as their REST APIs say (``/patroni``:
        ``patroni.version``, ``server_version`` 150010 -> "15.10"); several joined by "+" (a cluster
        mid-upgrade), None where no member answered."""
        patroni, postgres = set(), set()
        for n in self.topo.postgres_nodes:
            st = self.member_state(n.member)
            if (st.get("patroni") or {}).get("version"):
                patroni.add(st["patroni"]["version"])
            if isinstance(st.get("server_version"), int):
                v = st["server_version"]
                postgres.add(f"{v // 10000}.{v % 10000}")
        return {"patroni": "+".join(sorted(patroni)) or None, "postgres": "+".join(sorted(postgres)) or None}

    def rest_alive(self, member: str) -> bool:
        status, _ = self.rest(member, "/liveness", timeout=2)
        return status == 200

    def streaming(self, member: str) -> bool:
        """The member is a replica whose WAL receiver is streaming (Patroni says so)."""
        return member in self.streaming_replicas()

    def streaming_replicas(self) -> set[str]:
        """The replicas whose WAL receiver streams. Patroni 3.0 and later say so in /cluster (state
        "streaming"); before, a replica is only "running" there, so it counts when a member it
        replicates from lists it as streaming in pg_stat_replication (each /patroni's ``replication``:
        the leader's, or a cascading source's)."""
        members = self.members()
        replicas = {m["name"]: m for m in members if m.get("role") not in PRIMARY_ROLES}
        if self.topo.patroni_release.at_least(3, 0):
            return {n for n, m in replicas.items() if m.get("state") == "streaming"}
        running = {n for n, m in replicas.items() if m.get("state") == "running"}
        seen: set[str] = set()
        for m in members:
            for r in self.member_state(m["name"]).get("replication") or []:
                if isinstance(r, dict) and r.get("state") == "streaming":
                    seen.add(r.get("application_name"))
        return running & seen

    def sync_standbys(self) -> list[str]:
        return [m["name"] for m in self.members() if m.get("role") == "sync_standby"]

    def dynamic_config(self) -> dict:
        for n in self.topo.postgres_nodes:
            status, body = self.rest(n.member, "/config")
            if status == 200 and isinstance(body, dict):
                return body
        return {}

    def patch_config(self, changes: dict) -> dict:
        """PATCH /config (the REST form of ``patronictl edit-config``); None removes a key."""
        last: Any = None
        for n in self.topo.postgres_nodes:
            status, body = self.rest(n.member, "/config", method="PATCH", body=changes, timeout=10)
            if status == 200 and isinstance(body, dict):
                return body
            last = (status, body)
        raise RuntimeError(f"PATCH /config {changes} refused by every member: {last}")

    # --- PostgreSQL ------------------------------------------------------------

    def in_recovery(self, member: str, timeout: int = 2) -> bool | None:
        """pg_is_in_recovery() on the member's own address; None if it does not answer."""
        rows = sql.query(self.topo, member, "SELECT pg_is_in_recovery()", timeout=answer_within(timeout),
                         statement_timeout_ms=3000)
        return bool(rows[0][0]) if rows else None

    def replication_clients(self, member: str) -> list[str]:
        """application_name of every WAL receiver streaming from ``member`` (pg_stat_replication)."""
        rows = sql.query(self.topo, member, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'",
                         timeout=answer_within(2), statement_timeout_ms=3000)
        return [r[0] for r in rows or []]

    def history_timeline(self, member: str) -> int | None:
        """The newest timeline whose history file is in the member's pg_wal (1 if none): a replica holding
        one newer than its leader's timeline was promoted itself and not rewound; it follows the leader
        only until its next reconnect ("highest timeline N of the primary is behind recovery timeline M")."""
        # No '%' in the text: the driver reads it as a placeholder (query always passes parameters),
        # and this query then failed on every member, which read as "not forked".
        rows = sql.query(self.topo, member, "SELECT max(name) FROM pg_ls_waldir() WHERE right(name, 8) = '.history'",
                         timeout=answer_within(2), statement_timeout_ms=3000)
        if not rows:
            return None
        return int(rows[0][0][:8], 16) if rows[0][0] else 1

    def current_timeline(self, member: str) -> int | None:
        """The timeline the member writes (a primary) or replays (a replica) now: from the WAL position,
        not pg_control, which lags a promotion until its checkpoint."""
        rows = sql.query(self.topo, member,
                         "SELECT CASE WHEN pg_is_in_recovery() THEN (SELECT received_tli FROM pg_stat_wal_receiver) "
                         "ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END",
                         timeout=answer_within(2), statement_timeout_ms=3000)
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def forked_replicas(self, leader: str, replicas: list[str]) -> dict[str, tuple[int | None, int | None]]:
        """Replicas whose own history goes past the leader's timeline: {member: (theirs, leader's)}.
        A timeline that could not be read is None: such a replica is listed too, as not known to be
        on the leader's timeline (no answer is not an answer of "no")."""
        lead_tl = self.current_timeline(leader)
        out: dict[str, tuple[int | None, int | None]] = {}
        for m in replicas:
            tl = self.history_timeline(m)
            if tl is None or lead_tl is None or tl > lead_tl:
                out[m] = (tl, lead_tl)
        return out

    @staticmethod
    def describe_fork(member: str, theirs: int | None, leaders: int | None) -> str:
        if leaders is None:
            return f"{member}: the leader's timeline could not be read"
        if theirs is None:
            return f"{member}: its timeline history could not be read"
        return f"{member} holds timeline {theirs}'s history, the leader is on {leaders}"

    def postgres_up(self, member: str) -> bool:
        return self.in_recovery(member) is not None

    def primaries(self) -> list[str]:
        """Members whose PostgreSQL answers and is not in recovery: more than one is a split brain."""
        return [n.member for n in self.topo.postgres_nodes if self.in_recovery(n.member) is False]

    def can_commit(self, member: str | None = None, timeout_ms: int = 3000, *,
                   address: str | None = None) -> tuple[bool, str]:
        """Try one write directly on ``member`` (or on ``address``, e.g. a VIP); (acknowledged?, why).
        A commit that waited for a synchronous standby and was cancelled is committed locally
        but NOT acknowledged."""
        connected = False
        try:
            with sql.connection(self.topo, address or self.topo.node(member).address, timeout=answer_within(2),
                                statement_timeout_ms=timeout_ms) as conn:
                connected = True
                with conn.cursor() as cur:
                    sql.cancel_after(conn, timeout_ms / 1000, cur.execute,
                                     "CREATE TABLE IF NOT EXISTS lab_drill_probe (at timestamptz)")
                    sql.cancel_after(conn, timeout_ms / 1000, cur.execute, "INSERT INTO lab_drill_probe VALUES (now())")
                if any("synchronous replication" in x for x in conn.notices):
                    return False, "commit waited for a synchronous standby and was cancelled (not acknowledged)"
                return True, "committed"
        except Exception as e:
            return (False, sql.first_line(e)) if connected else (False, f"no connection ({sql.first_line(e)})")

    # --- VIPs ------------------------------------------------------------------

    def vip_holders(self) -> dict[str, list[str]]:
        """VIP role -> nodes holding it (``ip -o -4 addr`` on every node)."""
        outputs = {}
        for n in self.topo.nodes:
            out = self.shell.run(n.name, vips.ADDRESSES_COMMAND, timeout=15)
            outputs[n.name] = out.stdout if out.ok else None
        return vips.holders(self.topo, outputs)

    # --- etcd ------------------------------------------------------------------

    def etcd_healthy(self) -> dict[str, bool]:
        out = {}
        for n in self.topo.etcd_nodes:
            status, body = remote.http(self.topo, n.address, self.topo.ports.etcd_client, "/health")
            out[n.name] = status == 200 and isinstance(body, dict) and str(body.get("health")) == "true"
        return out

    def dcs_key(self, name: str) -> Any:
        """A key of this cluster in etcd (e.g. "sync"), read the way ``etcdctl get`` would.
        Patroni's etcd3 keys are read through the v3 JSON gateway, its etcd (v2) keys through /v2/keys."""
        key = f"{self.topo.cluster.namespace.rstrip('/')}/{self.topo.cluster.scope}/{name}"
        port = self.topo.ports.etcd_client
        creds = credentials.current(self.topo).etcd_auth()
        for n in self.topo.etcd_nodes:
            if self._etcd_api in (None, "v3"):
                body = {"key": base64.b64encode(key.encode()).decode()}
                headers = etcd_token(self.topo, n.address, creds)
                status, resp = remote.http(self.topo, n.address, port, remote.etcd_v3(self.topo, n.address, "/kv/range"),
                                           method="POST", body=body,
                                           headers=headers)
                if status == 200 and isinstance(resp, dict) and resp.get("kvs"):
                    self._etcd_api = "v3"
                    return _json_or_text(base64.b64decode(resp["kvs"][0]["value"]).decode())
            if self._etcd_api in (None, "v2"):
                status, resp = remote.http(self.topo, n.address, port, f"/v2/keys{key}", auth=creds)
                if status == 200 and isinstance(resp, dict) and "node" in resp:
                    self._etcd_api = "v2"
                    return _json_or_text(resp["node"].get("value", ""))
        return None

    def leader_key(self) -> dict[str, Any]:
        """Who holds this cluster's leader key in etcd and how long its lease has left (the key
        expires when that reaches 0 without a renewal). ``leader`` None: no key; ``ttl_left`` None:
        not readable. Raises when no etcd member answers, so that "no answer" is never "no key"."""
        key = f"{self.topo.cluster.namespace.rstrip('/')}/{self.topo.cluster.scope}/leader"
        port = self.topo.ports.etcd_client
        creds = credentials.current(self.topo).etcd_auth()
        errors = []
        for n in self.topo.etcd_nodes:
            headers = etcd_token(self.topo, n.address, creds)
            if self._etcd_api in (None, "v3"):
                status, resp = remote.http(self.topo, n.address, port, remote.etcd_v3(self.topo, n.address, "/kv/range"),
                                           method="POST",
                                           body={"key": base64.b64encode(key.encode()).decode()}, headers=headers)
                kvs = (resp.get("kvs") or []) if status == 200 and isinstance(resp, dict) else None
                if kvs == [] and self._etcd_api == "v3":
                    return {"leader": None, "ttl_left": None}
                if kvs:
                    self._etcd_api = "v3"
                    holder = base64.b64decode(kvs[0]["value"]).decode()
                    lease = kvs[0].get("lease")
                    left = None
                    if lease:
                        st, ttl = remote.http(self.topo, n.address, port,
                                              remote.etcd_v3(self.topo, n.address, "/lease/timetolive"), method="POST",
                                              body={"ID": lease}, headers=headers)
                        left = float(ttl["TTL"]) if st == 200 and isinstance(ttl, dict) and "TTL" in ttl else None
                    return {"leader": holder, "ttl_left": left}
                if kvs is None:
                    errors.append(f"{n.name}: v3 answered {status}")
            if self._etcd_api in (None, "v2"):
                status, resp = remote.http(self.topo, n.address, port, f"/v2/keys{key}", auth=creds)
                if status == 404:             # absent from both APIs (or v2 known): no leader key
                    return {"leader": None, "ttl_left": None}
                if status == 200 and isinstance(resp, dict) and "node" in resp:
                    self._etcd_api = "v2"
                    node = resp["node"]
                    return {"leader": node.get("value"), "ttl_left": float(node["ttl"]) if "ttl" in node else None}
                errors.append(f"{n.name}: v2 answered {status}")
        raise RuntimeError("no etcd member answered for the leader key: " + "; ".join(errors))


def etcd_token(topo: Topology, address: str, auth: tuple[str, str] | None) -> dict[str, str] | None:
    """The header an authenticated v3 gateway request carries (etcd auth on), or None (auth off)."""
    if not auth:
        return None
    status, resp = remote.http(topo, address, topo.ports.etcd_client, remote.etcd_v3(topo, address, "/auth/authenticate"),
                               method="POST", body={"name": auth[0], "password": auth[1]})
    token = resp.get("token") if status == 200 and isinstance(resp, dict) else None
    return {"Authorization": token} if token else None


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw
