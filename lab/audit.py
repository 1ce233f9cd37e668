"""`invoke audit`: what the running lab lets in without credentials, and its weak settings.

Every probe is harmless by construction:

- PostgreSQL: a login attempt with the article's password (a refused login changes nothing);
  settings read with the lab's own credentials.
- Patroni: an unsafe request without credentials whose body Patroni rejects before acting
  (``POST /restart`` with an unknown filter, ``POST /switchover`` without a leader, ...).
  Patroni checks access first: 401/403 means protected, 400 means it accepted an
  unauthenticated caller and only the body stopped it. ``/reinitialize`` is never probed:
  it acts even on a body it cannot parse.
- etcd: a write of a lab-owned scratch key outside Patroni's namespace, removed at once.

Nothing is restarted, no leader key is touched.
"""
from __future__ import annotations

import base64
import stat
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Callable

from labcore import credentials, guard, remote
from labcore import state as lab_state
from labcore.topology import Topology

ARTICLE_PASSWORD = "123456"
SCRATCH_KEY = "/patroni-lab-audit/scratch"
# (method, path, body) that Patroni refuses with 400 once access is granted, without acting.
UNSAFE_PROBES: tuple[tuple[str, str, Any], ...] = (
    ("POST", "/restart", {"patroni_lab_audit": True}),        # "Unknown filter for the scheduled restart"
    ("POST", "/switchover", {"candidate": "patroni-lab-audit"}),  # "...only from a specific leader"
    ("POST", "/failover", {"leader": "patroni-lab-audit"}),    # "...only to a specific candidate"
    ("PATCH", "/config", []),                                  # not a JSON object: 400
)


@dataclass
class Report:
    profile: str
    findings: list[tuple[str, str]] = field(default_factory=list)     # (name, where/what)
    open_reads: list[str] = field(default_factory=list)               # reachable without credentials, read-only
    unobserved: list[str] = field(default_factory=list)               # could not be checked

    def find(self, name: str, detail: str) -> None:
        self.findings.append((name, detail))


def _pg_login(topo: Topology, address: str, user: str, password: str) -> str:
    """'ok', 'refused' (authentication failed) or 'unreachable'."""
    import psycopg2

    guard.check(address, topo)
    try:
        psycopg2.connect(host=address, port=topo.ports.postgres, dbname="postgres", user=user,
                         password=password, connect_timeout=3).close()
        return "ok"
    except psycopg2.OperationalError as e:
        text = str(e)
        if "authentication failed" in text or "no pg_hba.conf entry" in text:
            return "refused"
        return "unreachable"


def _pg_members(topo: Topology) -> list:
    return topo.postgres_nodes + ([topo.standby_node] if topo.standby_node else [])


def check_postgres(topo: Topology, creds: credentials.Credentials, rep: Report) -> None:
    for n in _pg_members(topo):
        for role in ("superuser", "replication"):
            user = getattr(creds, role)["username"]
            got = _pg_login(topo, n.address, user, ARTICLE_PASSWORD)
            if got == "ok":
                rep.find("default-password", f"{user} logs in with the article's password on {n.name}:"
                                             f"{topo.ports.postgres}")
            elif got == "unreachable":
                rep.unobserved.append(f"PostgreSQL on {n.name}: no answer, default passwords not checked")
        try:
            with closing(remote.pg_connect(topo, n.address)) as conn, conn.cursor() as cur:
                cur.execute("SELECT current_setting('password_encryption')")
                if cur.fetchone()[0] != "scram-sha-256":
                    rep.find("md5-password-encryption", f"password_encryption is not scram-sha-256 on {n.name}")
                cur.execute("SELECT type, database, user_name, address, netmask, auth_method "
                            "FROM pg_hba_file_rules WHERE error IS NULL AND type <> 'local'")
                for typ, dbs, users, addr, mask, method in cur.fetchall():
                    rule = f"{typ} {','.join(dbs)} {','.join(users)} {addr}/{mask} {method}"
                    if method in ("md5", "password"):
                        rep.find("md5-in-pg_hba", f"{n.name}: {rule}")
                    if method == "trust":
                        rep.find("trust-in-pg_hba", f"{n.name}: {rule}")
                    if addr in ("0.0.0.0", "::", "all") and mask in ("0.0.0.0", "::", None):
                        rep.find("pg_hba-open-to-any-address", f"{n.name}: {rule}")
                cur.execute("SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%' ORDER BY 1")
                md5_roles = [r[0] for r in cur.fetchall()]
                if md5_roles:
                    rep.find("md5-hashed-passwords", f"{n.name}: {', '.join(md5_roles)}")
        except Exception as e:          # psycopg2 errors and the guard alike: say what could not be seen
            rep.unobserved.append(f"PostgreSQL settings on {n.name}: {str(e).strip().splitlines()[0]}")


def check_patroni(topo: Topology, rep: Report) -> None:
    port = topo.ports.patroni
    for n in _pg_members(topo):
        status, _ = remote.http(topo, n.address, port, "/patroni")
        if status == 0:
            rep.unobserved.append(f"Patroni REST API on {n.name}: no answer")
            continue
        rep.open_reads.append(f"http://{n.address}:{port}/patroni and the other GETs (health checks need them)")
        for method, path, body in UNSAFE_PROBES:
            status, text = remote.http(topo, n.address, port, path, method=method, body=body, timeout=5)
            if status in (401, 403):
                continue
            if status == 0:
                rep.unobserved.append(f"{method} {path} on {n.name}: no answer")
            else:
                rep.find("rest-unauthenticated-unsafe-endpoint",
                         f"{method} http://{n.address}:{port}{path} answered {status} without credentials")


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def check_etcd(topo: Topology, rep: Report) -> None:
    port = topo.ports.etcd_client
    for n in topo.etcd_nodes:
        status, _ = remote.http(topo, n.address, port, "/health")
        if status == 0:
            rep.unobserved.append(f"etcd on {n.name}: no answer")
            continue
        rep.open_reads.append(f"http://{n.address}:{port}/health")
        key = {"key": _b64(SCRATCH_KEY)}
        status, body = remote.http(topo, n.address, port, remote.etcd_v3(topo, n.address, "/kv/put"), method="POST",
                                   body={**key, "value": _b64("written without credentials")})
        if status == 404:      # an etcd that serves only v2 (el7's Patroni `etcd:`)
            status, body = remote.http(topo, n.address, port, f"/v2/keys{SCRATCH_KEY}?value=audit", method="PUT")
            if status in (200, 201):
                remote.http(topo, n.address, port, f"/v2/keys{SCRATCH_KEY}", method="DELETE")
                rep.find("etcd-unauthenticated-write", f"PUT http://{n.address}:{port}/v2/keys{SCRATCH_KEY}")
            continue
        if status == 200 and isinstance(body, dict) and "error" not in body:
            remote.http(topo, n.address, port, remote.etcd_v3(topo, n.address, "/kv/deleterange"), method="POST",
                        body=key)
            rep.find("etcd-unauthenticated-write",
                     f"http://{n.address}:{port} stored {SCRATCH_KEY} for an anonymous client "
                     f"(anyone could write {topo.cluster.namespace}{topo.cluster.scope}/leader)")


def check_haproxy(topo: Topology, rep: Report) -> None:
    status, _ = remote.http(topo, topo.vips.haproxy, topo.ports.haproxy_stats, "/;csv")
    if status == 200:
        rep.open_reads.append(f"http://{topo.vips.haproxy}:{topo.ports.haproxy_stats}/ (haproxy stats, read-only)")


def check_firewall(topo: Topology, rep: Report, platform: str | None) -> None:
    """open-ports mode is a table of the lab's own (nftables) or firewalld running (el7)."""
    probe = "firewall-cmd --state" if platform == "el7" else "nft list table inet patroni_lab"
    for n in topo.nodes:
        try:
            r = remote.connect(topo, n.name).run(f"sudo -n {probe}", hide=True, warn=True, timeout=20)
        except Exception as e:
            rep.unobserved.append(f"firewall on {n.name}: {str(e).strip().splitlines()[0] if str(e) else e}")
            continue
        if r.exited != 0:
            rep.find("firewall-off", f"{n.name}: no lab firewall ({probe} failed): every port open to every source")


def check_secrets_file(rep: Report) -> None:
    p = credentials.secrets_path()
    if p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077:
        rep.find("secrets-file-readable", f"{p} has mode {stat.S_IMODE(p.stat().st_mode):o}, not 600")


def run(topo: Topology, say: Callable[[str], None] = print) -> Report:
    st = lab_state.load()
    creds = credentials.current(topo)
    rep = Report(creds.profile)
    for what, check in (("PostgreSQL", lambda: check_postgres(topo, creds, rep)),
                        ("Patroni REST API", lambda: check_patroni(topo, rep)),
                        ("etcd", lambda: check_etcd(topo, rep)),
                        ("haproxy", lambda: check_haproxy(topo, rep)),
                        ("firewall", lambda: check_firewall(topo, rep, st.platform)),
                        ("secrets file", lambda: check_secrets_file(rep))):
        say(f"checking {what}")
        check()
    return rep


def render(rep: Report) -> list[str]:
    lines = [f"profile: {rep.profile}"]
    if rep.findings:
        lines.append(f"findings ({len(rep.findings)}):")
        lines += [f"  {name:38} {detail}" for name, detail in rep.findings]
    else:
        lines.append("findings: none")
    lines.append("reachable without credentials, read-only (by design):")
    lines += [f"  {x}" for x in dict.fromkeys(rep.open_reads)] or ["  nothing"]
    if rep.unobserved:
        lines.append("not observed (the audit could not see these):")
        lines += [f"  {x}" for x in rep.unobserved]
    return lines
