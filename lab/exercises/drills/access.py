"""Article §7: how clients reach the primary: multi-host URLs, two VIPs, haproxy."""
from __future__ import annotations

from typing import Callable

from lab.clients import arp, jdbc, multihost
from lab.exercises.api import steps as S
from lab.exercises.api.context import Lab
from lab.exercises.kit import actions as F
from lab.exercises.api.model import Drill, NotApplicable, drill
from lab.exercises.kit import haproxy_stats, sql

JDBC_BALANCED_CONNECTIONS = 12
VIP_LOG_TAG = "patroni-vip"        # the syslog tag of the lab's VIP callback (provision/templates/vip-callback.sh.j2)


def address(lab: Lab, member: str) -> str:
    return lab.topo.node(member).address


def first_answering(lab: Lab) -> str:
    """libpq's choice for target_session_attrs=any: the first member in URL order that answers."""
    for n in lab.topo.postgres_nodes:
        if lab.probe.postgres_up(n.member):
            return n.address
    return ""


@drill
class MultiHostUrl(Drill):
    name = "multihost-url"
    section = "§7.1 (多主机URL)"
    summary = "libpq/psycopg and JDBC multi-host URLs reach the right member before and after a switchover."
    story = """\
A multi-host URL lists every member; the driver tries them in order and keeps
the first whose role matches. libpq's target_session_attrs=read-write keeps
only a writable server (the primary); =any keeps the first that answers.
pgjdbc's targetServerType=primary does the same as read-write,
preferSecondary with loadBalanceHosts=true spreads connections over the
replicas, and any with loadBalanceHosts=true over every member that answers. The URLs are built from topology.yml; the drill prints them. Then
a switchover moves the primary, and the same URLs must find the new one."""
    differs = ("pgjdbc 42.x says primary/secondary (the article's master/slave are old aliases); libpq 14+ adds "
               "target_session_attrs=primary|standby|prefer-standby, libpq 16+ load_balance_hosts=random.")

    expected = """\
What to watch, before and after a switchover: libpq
target_session_attrs=read-write lands on the leader; target_session_attrs=any on
the first member of the URL that answers; JDBC targetServerType=primary on the
leader (3 of 3 connections); JDBC preferSecondary&loadBalanceHosts=true spreads
12 connections over both replicas and never the leader; JDBC
targetServerType=any&loadBalanceHosts=true spreads 12 connections over all
three members, the leader included. The URLs come from
topology.yml (lab/clients/); the JRE and driver are installed on the control
host with apt when missing (default-jre-headless, libpostgresql-jdbc-java), or
the drill says what to install and skips the JDBC part."""
    commands = [
        "on the control host: psql 'postgres://postgres@192.168.234.201:5432,192.168.234.202:5432,192.168.234.203:5432/postgres?target_session_attrs=read-write' -c 'select inet_server_addr(), pg_is_in_recovery()'",
        'on the control host: the same URL with target_session_attrs=any',
        "on the control host: java -cp /usr/share/java/postgresql.jar lab/clients/MultiHostProbe.java 'jdbc:postgresql://192.168.234.201:5432,192.168.234.202:5432,192.168.234.203:5432/postgres?targetServerType=primary' postgres 123456 3",
        'on the control host: the same probe with ?targetServerType=preferSecondary&loadBalanceHosts=true and a count of 12',
        'on the control host: the same probe with ?targetServerType=any&loadBalanceHosts=true and a count of 12',
        'on any member: sudo -u postgres patronictl -c /etc/patroni switchover pgsql --leader <leader> --candidate <replica> --force',
    ]
    def run(self, lab: Lab) -> None:
        topo = lab.topo
        lab.step("The URLs", "\n".join([multihost.libpq_url(topo, "read-write"), multihost.libpq_url(topo, "any"),
                                        jdbc.jdbc_url(topo, "primary"),
                                        jdbc.jdbc_url(topo, "preferSecondary", load_balance=True)]))
        self._java(lab)
        self._check(lab, "before the switchover")
        old, new, took = S.switchover(lab)
        lab.measure("switchover_s", took)
        lab.expect(S.replicas_stream(lab), "the replicas stream", within=90)
        self._check(lab, "after the switchover")

    def _java(self, lab: Lab) -> None:
        """The JDBC half of the claim needs Java and pgjdbc on the control host (installed when missing):
        without them the drill cannot check what it states, so it is not applicable, never a pass."""
        try:
            installed = jdbc.ensure_jdbc()
        except jdbc.JdbcUnavailable as e:
            raise NotApplicable(f"no Java runtime with the PostgreSQL JDBC driver on the control host: {e}") from None
        lab.note(f"installed on the control host: {', '.join(installed)}" if installed
                 else "a Java runtime and the PostgreSQL JDBC driver are present on the control host")

    def _check(self, lab: Lab, when: str) -> None:
        topo = lab.topo
        leader = lab.leader()
        replicas = sorted(address(lab, r) for r in lab.replicas())
        lab.step(f"Where the URLs land, {when}", f"Leader: {leader}.")
        S.on_control_host(lab, f"psql '{multihost.libpq_url(topo)}' -c 'select inet_server_addr(), pg_is_in_recovery()'")
        lab.expect(lambda: multihost.land(topo, "read-write") == multihost.Landing(address(lab, leader), False),
                   f"libpq read-write lands on {leader}", within=20)
        first = first_answering(lab)
        lab.expect(lambda: multihost.land(topo, "any").address == first,
                   f"libpq any lands on the first member in the URL ({first})", within=20)
        url = jdbc.jdbc_url(topo, "primary")
        S.on_control_host(lab, " ".join(jdbc.probe_command(url, "postgres", "...", 3)))
        lab.expect(lambda: jdbc.probe(topo, url, 3) == [multihost.Landing(address(lab, leader), False)] * 3,
                   f"JDBC targetServerType=primary lands on {leader} (3 of 3)", within=30, every=3)
        lb = jdbc.jdbc_url(topo, "preferSecondary", load_balance=True)
        S.on_control_host(lab, " ".join(jdbc.probe_command(lb, "postgres", "...", JDBC_BALANCED_CONNECTIONS)))
        seen, spread = jdbc_spread(lab, lb, replicas)
        lab.expect(spread, f"JDBC preferSecondary&loadBalanceHosts spreads {JDBC_BALANCED_CONNECTIONS} connections "
                           f"over both replicas, never the leader", within=30, every=3)
        lab.measure(f"jdbc_prefer_secondary_{when.replace(' ', '_')}", dict(seen))
        # §7.1's third URL: any member that answers, chosen at random (12 connections over 3 members all
        # land on one with probability 3/3^12; the poll retries the rare draw that misses a member)
        anyone = jdbc.jdbc_url(topo, "any", load_balance=True)
        S.on_control_host(lab, " ".join(jdbc.probe_command(anyone, "postgres", "...", JDBC_BALANCED_CONNECTIONS)))
        seen, spread = jdbc_spread(lab, anyone, sorted(n.address for n in topo.postgres_nodes))
        lab.expect(spread, f"JDBC targetServerType=any&loadBalanceHosts spreads {JDBC_BALANCED_CONNECTIONS} "
                           f"connections over every member, the leader included", within=30, every=3)
        lab.measure(f"jdbc_any_balanced_{when.replace(' ', '_')}", dict(seen))


def jdbc_spread(lab: Lab, url: str, addresses: list[str]) -> tuple[dict[str, int], Callable[[], bool]]:
    """A condition: JDBC_BALANCED_CONNECTIONS connections opened with ``url`` land on exactly ``addresses``,
    each at least once (a refused connection counts as a place of its own, so it breaks the condition);
    and the tally of the last try (address -> connections), filled in by the condition."""
    seen: dict[str, int] = {}

    def spread() -> bool:
        seen.clear()
        for item in jdbc.probe(lab.topo, url, JDBC_BALANCED_CONNECTIONS):
            key = item.address if isinstance(item, multihost.Landing) else f"error: {item}"
            seen[key] = seen.get(key, 0) + 1
        return sorted(seen) == sorted(addresses)
    return seen, spread


def callback_event(lab: Lab, node: str, word: str, since: float) -> float | None:
    """Epoch of the first callback log line containing ``word`` (added/removed/announced) after ``since``."""
    out = lab.shell.run(node, f"sudo journalctl -t {VIP_LOG_TAG} -o short-unix --no-pager --since @{int(since)}")
    for line in out.stdout.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and f" {word} " in f" {parts[3]} ":
            try:
                at = float(parts[0])
            except ValueError:
                continue
            if at >= since:
                return at
    return None


@drill
class CallbackVip(Drill):
    name = "callback-vip"
    section = "§7.2 (VIP通过Patroni回调脚本)"
    summary = "The read-write VIP follows a switchover and the client's ARP entry follows it; stopping the primary's Patroni leaves it on two nodes."
    story = """\
Patroni runs a callback on on_start, on_restart and on_role_change; the lab's
callback adds the read-write VIP on a new primary, announces it with
gratuitous ARP (so clients' ARP caches point at the new machine at once)
and removes it from a demoted member. The article's caveat: stopping Patroni
on the primary runs no callback, so the old node keeps the VIP while the
new leader takes it too: two holders, until someone removes it by hand."""
    differs = ("Patroni 4 passes role 'primary' to callbacks (1.6: 'master'); the lab's callback accepts both. "
               "The article's script would never move the VIP on Patroni 4.")

    expected = """\
What to watch: .210 on the leader's interface only, and the control host's ARP
entry for it (ip neigh) holds the leader's MAC. After the switchover .210 leaves
the old leader and appears on the new one (VIP move time measured from the
command, from the callback's own log); the ARP entry changes to the new
leader's MAC by the callback's gratuitous ARP, no cache flush needed; .210 is
writable. Measured here: during a switchover both nodes hold .210 for a few
seconds, because the old leader drops it only when it restarts as a replica
(on_role_change), after the new leader took it and announced it. Then the caveat:
stopping the primary's Patroni stops PostgreSQL but runs no callback, so .210
stays on that node while the new leader adds it too: two holders. The drill
removes it by hand and starts Patroni again; the node rejoins as a replica."""
    commands = [
        'on each PostgreSQL node: ip -4 -o addr show | grep -w 192.168.234.210',
        "on the control host: psql -h 192.168.234.210 -U postgres -c 'select 1'; ip neigh show 192.168.234.210",
        'on any member: sudo -u postgres patronictl -c /etc/patroni switchover pgsql --leader <leader> --candidate <replica> --force',
        'on the old and new leader: sudo journalctl -t patroni-vip -n 20',
        'on the new leader: sudo systemctl stop patroni   # the caveat',
        "on that node, to clean up: sudo ip addr del 192.168.234.210/32 dev $(ip -o -4 addr show to 192.168.234.210/32 | awk '{print $2}'); sudo systemctl start patroni",
    ]
    def run(self, lab: Lab) -> None:
        topo = lab.topo
        vip = topo.vips.read_write
        leader = lab.leader()
        lab.command(lab.node_of(leader), "ip -4 -o addr show | grep -w " + vip)
        lab.expect(S.rw_vip_only_on(lab, lab.node_of(leader)),
                   f"{vip} is on {lab.node_of(leader)} only", within=20, every=2)
        macs = {n.name: S.mac_of(lab, n.name) for n in topo.postgres_nodes}
        S.on_control_host(lab, f"psql -h {vip} -U postgres -c 'select 1'; ip neigh show {vip}")

        def arp_points_at(node: str):
            def check() -> bool:
                sql.whoami(topo, vip)           # a packet to the VIP keeps the entry fresh
                return arp.neighbour_mac(vip) == macs[node]
            return check
        lab.expect(arp_points_at(lab.node_of(leader)), f"the control host's ARP entry for {vip} is {lab.node_of(leader)}'s MAC",
                   within=15)

        lab.step("Switch over and watch the VIP move",
                 "The callback's own log (journalctl -t patroni-vip) times each step on each node.")
        since = S.node_epoch(lab, lab.node_of(leader))
        old, new, took = S.switchover(lab)
        lab.measure("switchover_s", took)
        lab.expect(S.rw_vip_only_on(lab, lab.node_of(new)),
                   f"{vip} left {lab.node_of(old)} and is on {lab.node_of(new)}", within=30, every=0.5)
        lab.command(lab.node_of(new), f"sudo journalctl -t {VIP_LOG_TAG} -o short-unix --since @{int(since)}")
        events: dict[str, float | None] = {}

        def logged() -> bool:
            # arping sends 3 announcements a second apart; the callback logs after the last one
            events.update(added=callback_event(lab, lab.node_of(new), "added", since),
                          announced=callback_event(lab, lab.node_of(new), "announced", since),
                          removed=callback_event(lab, lab.node_of(old), "removed", since))
            return all(v is not None for v in events.values())
        lab.expect(logged, f"the callbacks logged: {vip} added and announced on {lab.node_of(new)}, removed on "
                           f"{lab.node_of(old)}", within=20, every=1)
        added, announced, removed = events["added"], events["announced"], events["removed"]
        lab.measure("vip_move_s", None if added is None else round(added - since, 2))
        lab.measure("vip_announced_s", None if announced is None else round(announced - since, 2))
        lab.measure("vip_released_by_old_leader_s", None if removed is None else round(removed - since, 2))
        if added is not None and removed is not None and removed > added:
            lab.note(f"{vip} was on both nodes for {removed - added:.1f} s: the old leader drops it only when it "
                     "restarts as a replica (on_role_change), after the new leader took it; the gratuitous ARP "
                     "sends clients to the new one meanwhile")
        took = lab.expect(arp_points_at(lab.node_of(new)), f"the ARP entry for {vip} now holds {lab.node_of(new)}'s MAC",
                          within=15, every=0.5)
        lab.measure("arp_follows_after_vip_s", took)
        lab.expect(lambda: S.writable_through(lab, vip), f"a connection to {vip} is writable", within=15)

        lab.step("The caveat: stop Patroni on the primary",
                 "No callback runs on a stop, so the VIP stays while the new leader adds it too.")
        primary = new
        pnode = lab.node_of(primary)
        lab.mark("stop")
        lab.inject(F.stop_patroni(lab.facts, primary))
        lab.expect(S.writable_leader(lab, other_than=primary), "a replica is the writable leader", within=40)
        lab.measure("new_leader_after_stop_s", lab.since("stop"))
        successor = lab.node_of(lab.leader())
        lab.expect(lambda: sorted(lab.probe.vip_holders()["read_write"]) == sorted([pnode, successor]),
                   f"{vip} is on two nodes: {pnode} (stopped Patroni) and {successor} (new leader)", within=20, every=1)
        lab.measure("vip_holders_after_stop", sorted([pnode, successor]))
        iface = S.iface_of(lab, pnode)
        clean = f"sudo ip addr del {vip}/32 dev {iface}"
        lab.step("Clean up by hand", f"Remove {vip} from {pnode}, then start its Patroni again.")
        lab.command(pnode, clean)
        lab.run_on(pnode, clean)
        lab.expect(S.rw_vip_only_on(lab, successor), f"{vip} is on {successor} only",
                   within=10, every=1)
        S.undo_then_rejoined(lab, primary, within=90, measure="old_primary_rejoined_s")


@drill
class ReadOnlyVip(Drill):
    name = "readonly-vip"
    section = "§7.3 (VIP通过keepalived)"
    summary = "keepalived's read-only VIP sits on a replica, moves to the primary when the replicas are down, comes back."
    story = """\
keepalived on each PostgreSQL node asks its local Patroni /read-only (+10)
and /replica (+5). A running replica scores 115, the leader 110, a node
whose Patroni does not answer 100, so the read-only VIP lives on a replica;
with every replica down, the leader (still readable) takes it; when a
replica is back and streaming, it wins the VIP back (keepalived preempts)."""
    differs = "Same in Patroni 4 (the endpoints the article uses are unchanged)."

    expected = """\
What to watch: .211 on one replica's node (priority 100+10+5 beats the
leader's 100+10). With both replicas' Patroni stopped their checks fail and .211
moves to the leader (VIP move time measured); a connection to .211 reaches the
primary. With the replicas streaming again, .211 returns to a replica
(keepalived preempts). The leader keeps its role throughout."""
    commands = [
        'on each PostgreSQL node: ip -4 -o addr show | grep -w 192.168.234.211',
        "on the control host: psql -h 192.168.234.211 -U postgres -c 'select inet_server_addr(), pg_is_in_recovery()'",
        'on each replica: sudo systemctl stop patroni',
        'on each replica, to undo: sudo systemctl start patroni',
    ]
    def run(self, lab: Lab) -> None:
        vip = lab.topo.vips.read_only
        leader = lab.leader()
        replicas = lab.replicas()
        rnodes = [lab.node_of(r) for r in replicas]
        lab.expect(lambda: len(h := lab.probe.vip_holders()["read_only"]) == 1 and h[0] in rnodes,
                   f"{vip} is on one replica's node ({' or '.join(rnodes)})", within=30, every=2)
        lab.step("Stop Patroni on every replica")
        for r in replicas:
            lab.inject(F.stop_patroni(lab.facts, r))
        lab.mark("replicas_down")
        lab.expect(lambda: lab.probe.vip_holders()["read_only"] == [lab.node_of(leader)],
                   f"{vip} moves to the leader's node {lab.node_of(leader)}", within=30, every=0.5)
        lab.measure("vip_to_leader_s", lab.since("replicas_down"))
        lab.expect(lambda: S.writable_through(lab, vip), f"a connection to {vip} reaches the primary", within=10)
        lab.step("Start the replicas again")
        for _ in replicas:
            lab.undo()
        lab.mark("replicas_back")
        lab.expect(lambda: all(lab.probe.streaming(r) for r in replicas), "the replicas stream again", within=120)
        lab.expect(lambda: len(h := lab.probe.vip_holders()["read_only"]) == 1 and h[0] in rnodes,
                   f"{vip} is back on a replica", within=30, every=0.5)
        lab.measure("vip_back_on_replica_s", lab.since("replicas_back"))
        got = sql.whoami(lab.topo, vip)
        lab.expect(lambda: got is not None and got[1] is True, f"a connection to {vip} reaches a replica", within=1)


@drill
class Haproxy(Drill):
    name = "haproxy"
    section = "§7.4 (haproxy)"
    summary = "haproxy :5000 always reaches the primary (across a failover), :6000 round-robins the replicas; stats show UP/DOWN."
    story = """\
haproxy checks each member's Patroni REST API every 3 s: in the write
listener a server is UP when GET / answers 200 (the primary), in the read
listener when GET /replica does. After 3 failed checks a server is DOWN
(`fall 3`), after 2 good ones UP again (`rise 2`). The drill reads the stats
page as CSV, connects through haproxy's VIP, then stops the leader's Patroni
and measures how long haproxy takes to send writes to the new primary. Last it
tags a replica noloadbalance (§5.2's tag for a DR member): Patroni's /replica
says 503 for it, so the read listener stops sending it connections."""
    differs = "Same in Patroni 4. The lab's haproxy VIP is vips.haproxy (.212), not the article's .210."

    expected = """\
What to watch: :5000 lands on the leader; :6000 alternates between the two
replicas; the stats page (CSV at /;csv on :7000) shows in pgsql only the leader
UP and in pgsql_read only the replicas UP. Stop the leader's Patroni: a replica
is promoted; haproxy marks the old leader DOWN after fall 3 checks (inter 3s)
and the new one UP after rise 2 (haproxy detection time measured from the
stop); :5000 then lands on the new primary. The old leader rejoins and shows UP
in pgsql_read. Last, a replica tagged noloadbalance keeps streaming but answers
503 on /replica: pgsql_read marks it DOWN and :6000 lands only on the other
replica."""
    commands = [
        "on the control host: psql 'host=192.168.234.212 port=5000 user=postgres' -c 'select inet_server_addr(), pg_is_in_recovery()'",
        "on the control host: psql 'host=192.168.234.212 port=6000 user=postgres' -c 'select inet_server_addr()'   # several times",
        "on the control host: curl -s 'http://192.168.234.212:7000/;csv'   # or http://192.168.234.212:7000/ in a browser",
        'on the leader: sudo systemctl stop patroni',
        'on the same node, to undo: sudo systemctl start patroni',
        'on a replica: add to /etc/patroni/90-lab-drill.yml:  tags: {noloadbalance: true}; sudo systemctl reload patroni',
        "on the control host: curl -s 'http://192.168.234.212:7000/;csv'   # that replica DOWN in pgsql_read",
    ]
    def run(self, lab: Lab) -> None:
        topo = lab.topo
        hvip = topo.vips.haproxy
        rw, ro = topo.ports.haproxy_primary, topo.ports.haproxy_replicas
        proxy, proxy_read = topo.cluster.scope, f"{topo.cluster.scope}_read"
        leader = lab.leader()
        replicas = lab.replicas()
        S.on_control_host(lab, f"psql 'host={hvip} port={rw} user=postgres' -c 'select inet_server_addr(), pg_is_in_recovery()'")
        lab.expect(lambda: sql.whoami(topo, hvip, rw) == (address(lab, leader), False),
                   f":{rw} lands on the leader {leader}", within=20)
        landed: list[str] = []

        def round_robin() -> bool:
            landed.clear()
            for _ in range(4):
                got = sql.whoami(topo, hvip, ro)
                landed.append(got[0] if got else "none")
            return (sorted(set(landed)) == sorted(address(lab, r) for r in replicas)
                    and all(a != b for a, b in zip(landed, landed[1:])))
        S.on_control_host(lab, f"psql 'host={hvip} port={ro} user=postgres' -c 'select inet_server_addr()'  # 4 times")
        lab.expect(round_robin, f":{ro} alternates between the replicas {', '.join(replicas)}", within=20, every=2)
        lab.measure("replica_port_landings", list(landed))
        S.on_control_host(lab, f"curl -s 'http://{hvip}:{topo.ports.haproxy_stats}/;csv'")
        expect_rw = {m: m == leader for m in [n.member for n in topo.postgres_nodes]}
        lab.expect(lambda: haproxy_stats.backends(lab.topo, proxy) == expect_rw
                   and haproxy_stats.backends(lab.topo, proxy_read) == {m: not up for m, up in expect_rw.items()},
                   f"stats: only {leader} UP in {proxy}; only the replicas UP in {proxy_read}", within=20, every=2)

        lab.step("Stop the leader's Patroni", "A replica is promoted; haproxy must notice.")
        lab.inject(F.stop_patroni(lab.facts, leader))
        lab.expect(lambda: (lab.probe.leader() or leader) != leader, "a replica holds the leader key", within=40)
        new = lab.leader()
        took = lab.expect(lambda: haproxy_stats.backends(lab.topo, proxy).get(new) is True and haproxy_stats.backends(lab.topo, proxy).get(leader) is False,
                          f"stats: {new} UP and {leader} DOWN in {proxy}", within=40, every=0.5)
        lab.measure("haproxy_detection_s", lab.fault_to_last_met())
        lab.expect(lambda: sql.whoami(topo, hvip, rw) == (address(lab, new), False), f":{rw} lands on {new}, writable",
                   within=20, every=0.5)
        lab.measure("haproxy_writable_after_fault_s", lab.fault_to_last_met())
        lab.undo()
        S.rejoined(lab, leader, within=90)
        lab.expect(lambda: haproxy_stats.backends(lab.topo, proxy_read).get(leader) is True, f"stats: {leader} UP in {proxy_read}",
                   within=30, every=1)

        lab.step("noloadbalance: a replica leaves the read listener",
                 "§7.3: /replica answers 200 on a running replica without the tag noloadbalance (§5.2 tags a "
                 "remote DR member so); with the tag it answers 503, and haproxy's :6000 check drops it.")
        replicas = lab.replicas()
        quiet, rest = replicas[0], replicas[1:]
        S.set_local(lab, quiet, {"tags.noloadbalance": True},
                    why="the article's tags: {noloadbalance: true}; Patroni reloads tags without a restart")
        lab.command(lab.node_of(quiet), f"curl -s -o /dev/null -w '%{{http_code}}\\n' "
                                        f"http://127.0.0.1:{topo.ports.patroni}/replica   # 503")
        lab.mark("noloadbalance")
        lab.expect(lambda: lab.probe.rest(quiet, "/replica")[0] == 503 and lab.probe.streaming(quiet),
                   f"{quiet} still streams but answers 503 on /replica", within=20)
        lab.expect(lambda: haproxy_stats.backends(lab.topo, proxy_read) == {m: m in rest for m in expect_rw},
                   f"stats: {quiet} DOWN in {proxy_read} (fall 3 x inter 3 s), {', '.join(rest)} UP",
                   within=30, every=0.5)
        lab.measure("noloadbalance_out_of_read_listener_s", lab.since("noloadbalance"))
        wanted = sorted(address(lab, r) for r in rest)
        lab.expect(lambda: sorted({(sql.whoami(topo, hvip, ro) or ("none",))[0] for _ in range(4)}) == wanted,
                   f":{ro} lands only on {', '.join(rest)} (4 connections), never on {quiet}", within=20, every=2)


@drill
class HaproxyVip(Drill):
    name = "haproxy-vip"
    section = "§7.4 (haproxy + keepalived)"
    summary = "haproxy's own VIP (.212, the lab's deviation from the article's .210) survives losing haproxy on one node."
    story = """\
haproxy itself must not be a single point of failure: it runs on two nodes
and keepalived keeps haproxy's VIP on a node where `pgrep -x haproxy` finds
it (+10). Stopping haproxy where the VIP lives drops that node's priority;
the other node takes the VIP and clients through it keep reaching the
primary. The article reuses .210 for this VIP; the lab gives it its own
address so the callback VIP of §7.2 can live at the same time."""
    differs = "The lab's deviation: vips.haproxy (.212) instead of the article's .210."

    expected = """\
What to watch: .212 on exactly one haproxy node. With haproxy stopped there,
that node's priority drops by 10; the other haproxy node takes .212 (VIP move
time measured) and :5000 through .212 still reaches the primary. With haproxy
started again, exactly one node holds .212."""
    commands = [
        'on each haproxy node: ip -4 -o addr show | grep -w 192.168.234.212',
        'on the node holding it: sudo systemctl stop haproxy',
        "on the control host: psql 'host=192.168.234.212 port=5000 user=postgres' -c 'select inet_server_addr()'",
        'on the same node, to undo: sudo systemctl start haproxy',
    ]
    def run(self, lab: Lab) -> None:
        topo = lab.topo
        hvip, rw = topo.vips.haproxy, topo.ports.haproxy_primary
        names = [n.name for n in topo.haproxy_nodes]
        if len(names) < 2:
            raise NotApplicable(f"the topology has {len(names)} haproxy node(s): the VIP has nowhere to move "
                                "(the default lab has two)")
        lab.expect(lambda: len(h := lab.probe.vip_holders()["haproxy"]) == 1 and h[0] in names,
                   f"{hvip} is on one haproxy node", within=20, every=2)
        holder = lab.probe.vip_holders()["haproxy"][0]
        other = [n for n in names if n != holder]
        lab.inject(F.stop_service(lab.facts, holder, "haproxy", f"haproxy on {holder} stopped"))
        lab.expect(lambda: lab.probe.vip_holders()["haproxy"] in [[o] for o in other],
                   f"{hvip} moves to {' or '.join(other)}", within=30, every=0.5)
        lab.measure("haproxy_vip_move_s", lab.fault_to_last_met())
        leader = lab.leader()
        lab.expect(lambda: sql.whoami(topo, hvip, rw) == (address(lab, leader), False),
                   f":{rw} through {hvip} still reaches the primary {leader}", within=20, every=0.5)
        lab.measure("haproxy_path_back_s", lab.fault_to_last_met())
        lab.undo()
        lab.expect(lambda: lab.facts.unit_state(holder, "haproxy") == "active", f"haproxy runs on {holder} again", within=20)
        lab.expect(lambda: len(lab.probe.vip_holders()["haproxy"]) == 1, f"{hvip} is held by exactly one node", within=20)
