"""`invoke up --rotate-secrets`: new passwords everywhere, in an order that never locks Patroni out.

1. PostgreSQL first (ALTER ROLE on the main cluster's leader; the standby
   cluster gets it by replication): connections Patroni and the replicas hold
   stay up, and Patroni's next login already needs the new password.
2. The secrets file, then Patroni's configuration on every member (reload,
   never restart): superuser, replication, REST API and etcd passwords; then
   a wait until every member's REST API takes the new credentials.
3. etcd last: changing a user's password revokes its tokens, and by then
   Patroni already re-authenticates with the new one.

Passwords travel to the nodes on stdin (a script read by ``bash -s``), never
on a command line other users of the machine could list.
"""
from __future__ import annotations

from typing import Callable

from labcore import credentials, remote
from labcore import state as lab_state
from labcore.topology import Topology

Report = Callable[[str], None]


class RotationError(RuntimeError):
    """A rotation step failed; the message says what was changed already."""


def _run_script(topo: Topology, node: str, script: str) -> str:
    conn = remote.connect(topo, node)
    r = remote.run_as_root(conn, script)
    if r.exited != 0:
        tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-2:]
        raise RotationError(f"{node}: exit {r.exited}: {' | '.join(tail)}")
    return r.stdout


def _sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _leader(topo: Topology) -> str:
    from provision import waits
    return topo.node(waits.leader_of(topo, topo.postgres_nodes, timeout=60)).name


def _until_patroni_reloaded(topo: Topology, auth: tuple[str, str], report: Report, timeout: float = 60) -> None:
    """Patroni applies a reload in its next cycle (up to loop_wait later): wait until every member's
    REST API accepts the new credentials, which it takes together with the new etcd password.
    The probe is a restart request with an unknown filter: refused with 400 before anything acts."""
    from provision import waits

    members = topo.postgres_nodes + ([topo.standby_node] if topo.standby_node else [])
    for n in members:
        waits.until(f"{n.member}'s REST API to take the new credentials",
                    lambda n=n: remote.http(topo, n.address, topo.ports.patroni, "/restart", method="POST",
                                            body={"patroni_lab_rotation": True}, auth=auth)[0] == 400, timeout)
    report(f"rotate: Patroni uses the new credentials on {', '.join(n.member for n in members)}")


def rotate(topo: Topology, report: Report) -> dict[str, dict[str, str]]:
    """Replace the lab's secure-profile passwords in PostgreSQL, Patroni, etcd and the secrets file."""
    import provision
    from provision import platforms

    old = credentials.read_secrets()
    if old is None:
        raise RotationError(f"{credentials.secrets_path()} is missing: the current passwords are unknown")
    new = credentials.generate(topo)
    for key in new:                       # same users, new passwords
        new[key]["username"] = old[key]["username"]
    plat = platforms.for_lab(lab_state.load().platform, topo)
    if plat.dcs != "etcd3":
        # etcdctl v2 asks for a new password only interactively: keep etcd's, say so.
        new["etcd"], new["etcd_root"] = old["etcd"], old["etcd_root"]
        report("rotate: etcd passwords kept (v2 API; change them by hand with `etcdctl user passwd`)")

    leader = _leader(topo)
    sql = "SET password_encryption = 'scram-sha-256';\n" + "".join(
        f'ALTER ROLE "{new[k]["username"]}" PASSWORD {_sql_literal(new[k]["password"])};\n'
        for k in ("superuser", "replication"))
    _run_script(topo, leader, f"sudo -u postgres {plat.pg_bin}/psql -XAtq -v ON_ERROR_STOP=1 <<'SQL'\n{sql}SQL\n")
    report(f"rotate: PostgreSQL passwords changed on the leader ({leader}); the standby cluster replicates them")

    credentials.write_secrets(topo, new)
    creds = credentials.build(topo, "secure", source=credentials.control_source(topo), secrets=new)
    try:
        provision.run(topo, steps=["patroni", "standby"], report=report, credentials=creds)
    except Exception as e:
        raise RotationError(f"Patroni's configuration not updated everywhere ({e}); PostgreSQL already has "
                            f"the new passwords, saved in {credentials.secrets_path()}: run `invoke provision`") from e

    _until_patroni_reloaded(topo, (new["restapi"]["username"], new["restapi"]["password"]), report)

    if plat.dcs == "etcd3":
        etcd = topo.etcd_nodes[0].name
        ctl = f"etcdctl --endpoints=http://127.0.0.1:{topo.ports.etcd_client}"
        script = (f"export ETCDCTL_API=3 ETCDCTL_USER={old['etcd_root']['username']}:{old['etcd_root']['password']}\n"
                  f"printf '%s\\n' {new['etcd']['password']} | {ctl} user passwd {new['etcd']['username']} --interactive=false\n"
                  f"printf '%s\\n' {new['etcd_root']['password']} | {ctl} user passwd {new['etcd_root']['username']} "
                  "--interactive=false\n")
        _run_script(topo, etcd, script)
        report(f"rotate: etcd passwords changed on {etcd}")
    return new
