"""Article §6: running the cluster day to day with patronictl and Patroni's REST API."""
from __future__ import annotations

from labcore import versions
from lab.exercises.api import steps as S
from lab.exercises.api.context import Lab
from lab.exercises.kit import actions as F
from lab.exercises.api.model import Drill, ExpectationFailed, NotApplicable, drill
from lab.exercises.kit import ctl, endpoints, sql
from lab.exercises.kit import patroni_release as releases

NEW_MAX_CONNECTIONS = 300          # the article's example value
DEBUG_SETTING = ("log_min_messages", "debug1")


@drill
class Parameters(Drill):
    name = "parameters"
    section = "§6.1 (修改PostgreSQL参数)"
    summary = "edit-config max_connections=300: every member Pending restart; patronictl restart; live everywhere, same leader."
    story = """\
Some settings may differ per node: a debug log level switched on for a while
on one replica is a per-node change, made with ALTER SYSTEM on that node.
Others must be the same on every member, and max_connections is one of them
(a replica must allow at least as many as its primary). Those belong in the
cluster-wide configuration Patroni keeps in etcd: `patronictl edit-config`.
max_connections only changes at server start, so Patroni flags every member
"Pending restart" until `patronictl restart` restarts them one by one. A
restart is not a failover: the leader stays the leader, on the same timeline."""
    differs = ("Patroni 4 also reports pending_restart_reason (old->new value). patronictl restart and edit-config "
               "ask for confirmation; scripts pass --force. Raising max_connections needs one restart of all members; "
               "lowering it (the drill's restore) needs the primary restarted first: a replica never runs with less "
               "than the primary's value, so replicas restarted first stay pending restart.")

    expected = """\
What to watch: after ALTER SYSTEM only that replica reports debug1 (SHOW
log_min_messages on each member). After edit-config every member's GET /patroni
shows "pending_restart": true (and pending_restart_reason max_connections
100->300), `patronictl list` shows * under Pending restart, and SHOW
max_connections still gives the old value. After `patronictl restart` every
member says 300, nobody is pending, the same member leads on the same timeline.
The writer may see one short interruption while the primary restarts.
Restore: the old value goes back with edit-config and `restart --pending`."""
    commands = [
        'on a replica: sudo -u postgres psql -c "ALTER SYSTEM SET log_min_messages = \'debug1\'" -c \'SELECT pg_reload_conf()\'',
        "on every member: sudo -u postgres psql -Atc 'SHOW log_min_messages'",
        "on that replica, to undo: sudo -u postgres psql -c 'ALTER SYSTEM RESET log_min_messages' -c 'SELECT pg_reload_conf()'",
        'on any member: sudo -u postgres patronictl -c /etc/patroni edit-config pgsql --force -p max_connections=300',
        'on any member: sudo -u postgres patronictl -c /etc/patroni list   # Pending restart: *',
        'on any member: curl -s http://127.0.0.1:8008/patroni | python3 -m json.tool   # pending_restart',
        'on any member: sudo -u postgres patronictl -c /etc/patroni restart pgsql --force',
        "on every member: sudo -u postgres psql -Atc 'SHOW max_connections'   # 300",
        'on any member, to undo: sudo -u postgres patronictl -c /etc/patroni edit-config pgsql --force -p max_connections=null',
        'on any member, to undo (lowering: the primary first): sudo -u postgres patronictl -c /etc/patroni restart pgsql <leader> --force',
        'on any member, then: sudo -u postgres patronictl -c /etc/patroni restart pgsql --pending --force',
    ]
    def run(self, lab: Lab) -> None:
        topo, scope = lab.topo, S.scope(lab)
        leader = lab.leader()
        replica = lab.replicas()[0]
        rnode = lab.node_of(replica)
        timeline = lab.probe.member_state(leader).get("timeline")
        self.original = (lab.probe.dynamic_config().get("postgresql") or {}).get("parameters", {}).get("max_connections")
        before = {m: sql.setting(topo, m, "max_connections") for m in S.members(lab)}
        lab.measure("max_connections_before", before)

        name, value = DEBUG_SETTING
        lab.step("The per-node way: ALTER SYSTEM on one replica",
                 f"{name} = {value} on {replica} only, then a reload (no restart needed for this one).")
        others = {m: sql.setting(topo, m, name) for m in S.members(lab) if m != replica}
        cmd = S.psql(lab, rnode, f"ALTER SYSTEM SET {name} = '{value}'", "SELECT pg_reload_conf()")
        self.reset_debug = (rnode, S.psql(lab, rnode, f"ALTER SYSTEM RESET {name}", "SELECT pg_reload_conf()"))
        lab.command(rnode, cmd)
        lab.run_on(rnode, cmd)
        lab.expect(lambda: sql.setting(topo, replica, name) == value
                   and all(sql.setting(topo, m, name) == v for m, v in others.items()),
                   f"{name} is {value} on {replica} and unchanged on {', '.join(others)}", within=15)
        lab.run_on(*self.reset_debug)
        lab.command(rnode, self.reset_debug[1], "undone at once: it was only to show the difference")
        self.reset_debug = None

        lab.step("The cluster-wide way: patronictl edit-config",
                 f"max_connections = {NEW_MAX_CONNECTIONS} in the DCS; every member must show Pending restart.")
        self.changed = True
        # put back in restore (edit-config + restart --pending)
        edit = F.edit_config_pg(lab.node_of(leader), scope, f"max_connections={NEW_MAX_CONNECTIONS} set cluster-wide",
                                observed=lambda: all(lab.probe.member_state(m).get("pending_restart")
                                                     for m in S.members(lab)),
                                max_connections=NEW_MAX_CONNECTIONS)
        lab.perform(edit, observe_within=lab.timing().loop_wait + 20)
        lab.command(lab.node_of(leader), ctl.patronictl("list", scope), "column 'Pending restart' shows *")
        reasons = {m: lab.probe.member_state(m).get("pending_restart_reason") for m in S.members(lab)}
        lab.measure("pending_restart_reason", reasons)
        lab.hold(lambda: all(sql.setting(topo, m, "max_connections") == before[m] for m in S.members(lab)),
                 "the running value has not changed yet (it needs a restart)", for_=2)

        lab.step("patronictl restart", "Patroni restarts each member; the leader keeps its role.")
        restart = ctl.restart(scope)
        lab.command(lab.node_of(leader), restart)
        lab.mark("restart")
        lab.run_on(lab.node_of(leader), restart, timeout=300)
        lab.expect(lambda: all(sql.setting(topo, m, "max_connections") == str(NEW_MAX_CONNECTIONS)
                                      for m in S.members(lab))
                   and not any(lab.probe.member_state(m).get("pending_restart") for m in S.members(lab)),
                   f"every member runs max_connections={NEW_MAX_CONNECTIONS}, none pending", within=90)
        lab.measure("restart_all_members_s", lab.since("restart"))
        lab.expect(lambda: lab.probe.leader() == leader and lab.probe.member_state(leader).get("timeline") == timeline,
                   f"{leader} still leads on timeline {timeline} (no failover)", within=30)
        lab.expect(S.replicas_stream(lab), "the replicas stream again", within=60)

    def restore(self, lab: Lab) -> None:
        leader = lab.probe.leader() or lab.topo.postgres_nodes[0].member
        node = lab.node_of(leader)
        if getattr(self, "reset_debug", None):
            lab.shell.run(*self.reset_debug)
        if getattr(self, "changed", False):
            scope = S.scope(lab)
            value = "null" if self.original is None else self.original
            lab.run_on(node, ctl.patronictl("edit-config", scope, "--force", "--quiet", "-p", f"max_connections={value}"))
            lab.expect(lambda: any(lab.probe.member_state(m).get("pending_restart") for m in S.members(lab))
                       or all(sql.setting(lab.topo, m, "max_connections") != str(NEW_MAX_CONNECTIONS)
                              for m in S.members(lab)),
                       "the old max_connections is back in the DCS (members pending restart)", within=40)
            # Lowering it: the primary first. A replica keeps at least the primary's running value
            # (PostgreSQL refuses less) until it has replayed the primary's parameter change, so a
            # replica restarted too early stays pending: restart what is pending until nothing is.
            lab.command(node, ctl.restart(scope, leader), "lowering max_connections: the primary first")
            lab.command(node, ctl.restart(scope, pending=True), "then whatever is still pending")
            lab.expect(lambda: S.restart_pending(lab), "no member is pending restart (primary first, then the replicas)",
                       within=180, every=10)
            lab.expect(S.replicas_stream(lab), "the replicas stream", within=60)


@drill
class RestApi(Drill):
    name = "rest-api"
    section = "§6.2 (查看Patroni节点状态), §7.3 health endpoints"
    summary = "GET /patroni on every member, field by field; the health endpoints answer 200/503 by role."
    story = """\
`patronictl list` is a summary. GET /patroni on a member says what that member
thinks of itself: its role, PostgreSQL's state, timeline, WAL positions, and
flags such as watchdog_failed (it cannot be promoted) or pending_restart.
Load balancers and keepalived ask the health endpoints instead, which answer
only 200 (yes) or 503 (no): /primary, /replica, /read-only, /sync, /async,
/health, /liveness, /readiness, /leader. The drill asks every member every
endpoint and compares the answers with the roles it has just read. Last, the
claim of §7.3 that keepalived's check_leader rests on: GET / and GET /leader
answer 200 on the running leader only, 503 everywhere else."""
    differs = ("Patroni 4 says role 'primary' (1.6: 'master') and adds fields (patroni.name, replication_state, "
               "dcs_last_seen); /liveness and /readiness are newer than the article.")
    expected = """\
What to watch in GET /patroni: role (primary on the leader, the article's
master; replica elsewhere), state (running), timeline (one value on every
member, +1 per promotion), xlog (location on the primary; received_location,
replayed_location, replayed_timestamp, paused on replicas), watchdog_failed
(true = the watchdog is required but unusable, the member cannot lead),
pending_restart (a changed setting waits for a restart). Exactly one member is
primary, all run on one timeline.
Health endpoints (200 yes / 503 no): leader 200 on /primary /read-only /health
/liveness /readiness /leader, 503 on /replica /sync /async; an asynchronous
replica 200 on /replica /read-only /async /health /liveness /readiness, 503 on
/primary /sync /leader; a synchronous standby swaps /sync and /async; node4's
standby leader 200 on /leader /standby-leader /read-only /health, 503 on
/primary /replica. The drill prints the whole table. GET / (as /primary) and
GET /leader: 200 on the leader, 503 on each of the main cluster's replicas."""
    commands = [
        'on each member: curl -s http://127.0.0.1:8008/patroni | python3 -m json.tool',
        "on each member: for p in primary replica read-only sync async health liveness readiness leader; do printf '%-10s ' $p; curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:8008/$p; done",
        "on node4: curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:8008/standby-leader",
        "on each member: curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:8008/   # and /leader: 200 on the leader only",
    ]
    writes = False

    def run(self, lab: Lab) -> None:
        cluster = {m["name"]: m for m in lab.probe.members()}
        lab.step("GET /patroni on each member", "Fields: role, state, timeline, xlog, watchdog_failed, pending_restart.")
        states = {}
        for m in S.members(lab):
            node = lab.node_of(m)
            lab.command(node, f"curl -s http://127.0.0.1:{lab.topo.ports.patroni}/patroni | python3 -m json.tool")
            st = lab.probe.member_state(m)
            states[m] = st
            summary = {k: st.get(k) for k in ("role", "state", "timeline", "xlog")}
            summary["watchdog_failed"] = st.get("watchdog_failed", False)
            summary["pending_restart"] = st.get("pending_restart", False)
            summary["patroni_version"] = (st.get("patroni") or {}).get("version")
            lab.say(f"   {m}: {summary}")
        lab.measure("patroni_fields", {m: {k: s.get(k) for k in ("role", "state", "timeline")} for m, s in states.items()})
        roles = [s.get("role") for s in states.values()]
        lab.expect(lambda: roles.count("primary") == 1 or roles.count("master") == 1,
                   "exactly one member says role primary", within=1)
        lab.expect(lambda: all(s.get("state") == "running" for s in states.values()), "every member is running", within=1)
        lab.expect(lambda: len({s.get("timeline") for s in states.values()}) == 1,
                   "all members are on one timeline", within=1)
        lab.expect(lambda: not any(s.get("watchdog_failed") for s in states.values())
                   or lab.topo.options.get("watchdog_mode") == "required",
                   "no member reports watchdog_failed (unless the watchdog is required and missing)", within=1)

        lab.step("The health endpoints", "Every member, every endpoint; 200 = yes, 503 = no.")
        lab.command(lab.topo.postgres_nodes[0].name,
                    "for p in " + " ".join(endpoints.ENDPOINTS) + "; do printf '%-10s ' $p; curl -s -o /dev/null "
                    f"-w '%{{http_code}}\\n' http://127.0.0.1:{lab.topo.ports.patroni}/$p; done")
        rows: dict[str, tuple[str, dict[str, int]]] = {}

        def answers(member: str, eps: tuple[str, ...]) -> dict[str, int]:
            return {ep: lab.probe.rest(member, f"/{ep}")[0] for ep in eps}

        def all_as_expected() -> bool:
            rows.clear()
            for m in S.members(lab):
                rows[m] = (endpoints.role_of(cluster.get(m, {})), answers(m, endpoints.ENDPOINTS))
            sb = lab.topo.standby_node
            if sb is not None:
                rows[sb.member] = ("standby_leader", answers(sb.member, endpoints.STANDBY_ENDPOINTS))
            return all(not endpoints.mismatches(role, got) for role, got in rows.values())
        try:
            lab.expect(all_as_expected, "every member answers every endpoint as its role says", within=20, every=2)
        finally:
            lab.say(endpoints.table(rows, endpoints.ENDPOINTS + ("standby-leader",)))
            bad = {m: endpoints.mismatches(r, a) for m, (r, a) in rows.items() if endpoints.mismatches(r, a)}
            if bad:
                lab.note(f"unexpected answers: {bad}")
        lab.measure("health_endpoints", {m: a for m, (_, a) in rows.items()})

        leader = lab.leader()
        lab.step("GET / and GET /leader (§7.3)",
                 f"200 only on the running leader ({leader}), 503 on every other member: the check keepalived's "
                 "check_leader script and haproxy's write listener rely on.")
        lab.command(lab.node_of(leader), "for p in '' leader primary; do printf '/%-9s ' $p; curl -s -o /dev/null "
                    f"-w '%{{http_code}}\\n' http://127.0.0.1:{lab.topo.ports.patroni}/$p; done")
        got: dict[str, dict[str, int]] = {}

        def leader_only() -> bool:
            got.clear()
            got.update({m: {ep: lab.probe.rest(m, f"/{ep}")[0] for ep in endpoints.LEADER_ONLY} for m in S.members(lab)})
            return not endpoints.leader_only_mismatches(got, leader)
        try:
            lab.expect(leader_only, f"GET /, /leader and /primary answer 200 on {leader} only and 503 on every "
                                    "other member", within=20, every=2)
        finally:
            wrong = endpoints.leader_only_mismatches(got, leader)
            if wrong:
                lab.note(f"answers that break the claim: {'; '.join(wrong)}")
        lab.measure("leader_only_endpoints", {m: {f"/{ep}": c for ep, c in eps.items()} for m, eps in got.items()})


@drill
class Switchover(Drill):
    name = "switchover"
    section = "§6 (patronictl switchover, history)"
    summary = "patronictl switchover to a chosen replica: it leads on a new timeline, the old leader follows, history grows."
    story = """\
Planned maintenance on the leader's machine: hand the primary over first. A
switchover is clean: the leader stops accepting writes, its replicas catch up,
the chosen candidate is promoted, the old leader restarts as its replica. No
acknowledged write is lost. `patronictl history` records every promotion:
timeline, LSN, reason, time, new leader."""
    differs = "Patroni 4: --leader (or --primary) replaces --master; --force skips the questions."
    expected = """\
What to watch: the candidate's GET /patroni turns role primary within seconds
(switchover time measured from the command), its timeline is one higher; the
old leader shuts down cleanly and comes back as its replica without pg_rewind;
`patronictl history` has one more line (old timeline, LSN, reason, time, new
leader). No acknowledged write is lost (the writer pauses, then goes on)."""
    commands = [
        'on any member: sudo -u postgres patronictl -c /etc/patroni history pgsql',
        'on any member: sudo -u postgres patronictl -c /etc/patroni switchover pgsql --leader <leader> --candidate <replica> --force',
        'on any member: sudo -u postgres patronictl -c /etc/patroni list',
        'on any member: sudo -u postgres patronictl -c /etc/patroni history pgsql   # one line more',
    ]
    lossless = True

    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        candidate = S.pick_candidate(lab)
        tl = lab.probe.member_state(leader).get("timeline")
        scope = S.scope(lab)
        lab.command(lab.node_of(leader), ctl.patronictl("history", scope))
        before = S.history_length(lab, leader)
        lab.measure("history_lines_before", before)
        lab.step("Switch over", f"From {leader} to {candidate}, chosen now from GET /cluster.")
        old, new, took = S.switchover(lab, candidate)
        lab.measure("switchover_s", took)
        lab.expect(lambda: lab.probe.member_state(new).get("timeline") == (tl or 0) + 1,
                   f"{new} runs on timeline {(tl or 0) + 1}", within=10)
        took = S.rejoined(lab, old, within=60, how=f"streams from {new}")
        lab.measure("old_leader_streaming_s", took)
        S.haproxy_reaches(lab, new)
        lab.measure("haproxy_follows_s", lab.since("switchover"))
        lab.command(lab.node_of(new), ctl.patronictl("history", scope))

        def grew() -> bool:
            out = lab.shell.run(lab.node_of(new), ctl.history(scope))
            lines = ctl.parse_history(out.stdout) if out.ok else []
            return len(lines) == before + 1 and lines[-1].get("New Leader") in (new, "", None)
        lab.expect(grew, f"patronictl history has one more line (promotion of {new})", within=20)


@drill
class Failover(Drill):
    name = "failover"
    section = "§6 (patronictl failover)"
    summary = "patronictl failover --candidate: promote a chosen replica by hand; the former leader rejoins."
    story = """\
`failover` is the manual override: promote this replica now. Unlike
switchover it does not need a healthy leader, so it is what you type when
automatic failover cannot choose (maintenance mode, or no member is healthy
enough). With a healthy leader Patroni still performs it, politely: the old
leader is demoted first."""
    differs = "Patroni 4: failover takes only --candidate (no --master/--leader); --force skips the questions."

    expected = """\
What to watch: the candidate is the writable leader (failover time measured),
the timeline goes up by one, `patronictl history` grows, the former leader
rejoins as a replica."""
    commands = [
        'on any member: sudo -u postgres patronictl -c /etc/patroni failover pgsql --candidate <replica> --force',
        'on any member: sudo -u postgres patronictl -c /etc/patroni history pgsql',
        'on any member: sudo -u postgres patronictl -c /etc/patroni list',
    ]
    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        candidate = S.pick_candidate(lab)
        scope = S.scope(lab)
        before = S.history_length(lab, leader)
        lab.step("Fail over by hand", f"Promote {candidate}; {leader} leads now.")
        op = F.failover(lab.node_of(candidate), scope, candidate, observed=S.writable_leader(lab, candidate))
        lab.mark("failover")
        try:
            lab.perform(op, observe_within=60)
        except ExpectationFailed as e:
            raise ExpectationFailed(f"failover: {candidate} is not the writable leader ({e})") from None
        lab.measure("failover_s", lab.since("failover"))
        lab.expect(lambda: S.history_length(lab, candidate) == before + 1, "history has one more line", within=20)
        S.rejoined(lab, leader, within=90)
        lab.measure("former_leader_streaming_s", lab.since("failover"))
        S.haproxy_reaches(lab, candidate)
        lab.measure("haproxy_follows_s", lab.since("failover"))


@drill
class Pause(Drill):
    name = "pause"
    section = "§6 (patronictl pause / resume)"
    summary = "Maintenance mode: the primary's PostgreSQL is down and no replica is promoted until resume."
    story = """\
`patronictl pause` puts the cluster in maintenance mode: Patroni keeps
watching but changes nothing: it does not restart a stopped PostgreSQL and
does not fail over. That is what you want while you stop the primary on
purpose (a minor upgrade, a change Patroni does not manage). Without the
pause, a replica would be promoted within ttl + loop_wait seconds; the drill
waits longer than that and checks that nobody was. `resume` hands control back."""
    differs = "Patroni 4: pause/resume --wait wait until every member has seen the change."

    expected = """\
What to watch: `patronictl list` ends with "Maintenance mode: on"; the leader's
PostgreSQL is stopped and stays stopped (Patroni does not restart it while
paused), and no replica is promoted for ttl + loop_wait + 5 seconds, longer than
an unpaused cluster would take to fail over. Writes fail meanwhile. After
resume, Patroni starts PostgreSQL again (or the replicas elect a leader): one
writable leader and streaming replicas."""
    commands = [
        'on any member: sudo -u postgres patronictl -c /etc/patroni pause pgsql --wait',
        'on the leader: sudo -u postgres /usr/lib/postgresql/15/bin/pg_ctl stop -D /pgsql/data -m fast',
        'on any member: sudo -u postgres patronictl -c /etc/patroni list   # Maintenance mode: on; leader stopped',
        'on any member: sudo -u postgres patronictl -c /etc/patroni resume pgsql --wait',
    ]
    def run(self, lab: Lab) -> None:
        scope = S.scope(lab)
        leader = lab.leader()
        t = lab.timing()
        lnode = lab.node_of(leader)
        pause = F.pause(lnode, scope, observed=lambda: bool((lab.probe.cluster() or {}).get("pause")))
        lab.perform(pause)
        lab.command(lnode, ctl.patronictl("list", scope), "the footer says: Maintenance mode: on")
        stop = F.stop_postgres(lab.facts, leader, lab.probe.postgres_up)
        stop.undo = "true  # Patroni starts it again after resume"
        lab.inject(stop)
        window = t.ttl + t.loop_wait + 5
        took = lab.hold(lambda: not lab.probe.postgres_up(leader)
                        and not [m for m in lab.probe.primaries() if m != leader]
                        and lab.probe.leader() in (leader, None),
                        f"{leader}'s PostgreSQL stays down and no replica is promoted", for_=window, every=2)
        lab.measure("held_without_failover_s", took)
        lab.mark("resume")
        lab.undo(pause)
        lab.expect(S.writable_leader(lab),
                   "after resume, a writable leader", within=t.loop_wait + 60)
        lab.measure("writable_after_resume_s", lab.since("resume"))
        lab.measure("leader_after_resume", lab.probe.leader())
        lab.expect(S.replicas_stream(lab, at_least=len(S.members(lab)) - 1), "every other member streams", within=120)


@drill
class Reinit(Drill):
    name = "reinit"
    section = "§6 (patronictl reinit)"
    summary = "patronictl reinit rebuilds a replica's data directory from scratch; it streams again, the leader is untouched."
    story = """\
A replica whose data directory is damaged, or diverged beyond pg_rewind, is
rebuilt with `patronictl reinit`: Patroni stops it, deletes its data
directory and takes a fresh base backup. A marker file in the old data
directory shows that it really was rebuilt."""
    differs = "Patroni 4: --wait blocks until the rebuild is done; --from-leader forces the leader as the source."

    expected = """\
What to watch: the replica goes stopped -> creating replica -> streaming; the
marker file left in its old data directory is gone; postmaster_start_time in
its GET /patroni changes; the leader is untouched and the writer never stops."""
    commands = [
        'on a replica: sudo -u postgres touch /pgsql/data/lab_reinit_marker',
        'on any member: sudo -u postgres patronictl -c /etc/patroni reinit pgsql <replica> --force --wait',
        'on the replica: ls /pgsql/data/lab_reinit_marker   # gone',
        'on any member: sudo -u postgres patronictl -c /etc/patroni list',
    ]
    def run(self, lab: Lab) -> None:
        scope = S.scope(lab)
        leader = lab.leader()
        replica = lab.replicas()[-1]
        node = lab.node_of(replica)
        data_dir = lab.topo.cluster.data_dir
        marker = f"{data_dir}/lab_reinit_marker"
        lab.step("Mark the old data directory", f"{marker} on {replica}.")
        lab.command(node, f"sudo -u postgres touch {marker}")
        lab.run_on(node, f"sudo -u postgres touch {marker}")
        started = lab.probe.member_state(replica).get("postmaster_start_time")
        op = F.reinit(node, scope, replica, observed=lambda: not lab.shell.run(node, f"sudo test -e {marker}").ok)
        lab.mark("reinit")
        lab.perform(op, observe_within=240)
        S.rejoined(lab, replica, within=180, how="streams again")
        lab.measure("reinit_to_streaming_s", lab.since("reinit"))
        lab.expect(lambda: lab.probe.member_state(replica).get("postmaster_start_time") not in (None, started),
                   f"{replica}'s PostgreSQL is a new instance (postmaster_start_time changed)", within=10)
        lab.expect(lambda: lab.probe.leader() == leader, f"{leader} still leads", within=5)


@drill
class PatroniUpgrade(Drill):
    name = "patroni-upgrade"
    section = "§6 (Patroni upgraded in place; the article installs it in §4)"
    summary = "Patroni upgraded in place with writes running: replicas one by one, a switchover, then the old leader."
    story = """\
Patroni is a Python program beside PostgreSQL, so a new release is installed
without touching the data: into the same virtualenv, then Patroni restarted.
Restarting Patroni restarts its PostgreSQL, which a replica survives and a
leader does not, so the order matters: every replica first, one at a time,
each streaming again before the next; then a switchover hands the primary to
an upgraded replica; then the old leader, now a replica, is upgraded too.
Writes stop only for the switchover. Members of two releases run together for
a while, which Patroni supports between neighbouring major releases."""
    expected = """\
What to watch: each replica comes back within a couple of minutes running the
new release and streams again; the leader keeps writing meanwhile; the
switchover is the only outage (seconds, no acknowledged write lost); at the end
every member reports the new release and the cluster has one leader. The
drill puts the topology's release back afterwards, the same way."""
    commands = [
        'on each replica: sudo /opt/patroni/bin/pip install --no-index --find-links <wheels> "patroni[etcd3]==<new>"',
        'on each replica: sudo systemctl restart patroni   # then wait until it streams again',
        'on the leader: sudo -u postgres patronictl -c /etc/patroni switchover pgsql --candidate <upgraded replica> --force',
        'on the old leader: the same pip install and restart',
        'anywhere: curl -s http://<member>:8008/patroni   # "patroni": {"version": ...}',
    ]
    differs = ("Beyond the article, which installs one release (§4). Patroni supports an upgrade to the next major "
               "release only from 3.0.0 on, so the drill upgrades a 3.x lab to the lab's newest release.")
    lossless = True
    restore_moves_leader = True      # the old release goes back with a switchover of its own

    def run(self, lab: Lab) -> None:
        now = lab.topo.patroni_release
        newest = versions.PatroniRelease(versions.DEFAULT_PATRONI)
        if not newest.at_least(*versions.parse(now.version)) or newest == now:
            raise NotApplicable(f"this lab runs Patroni {now.version} and the newest the lab carries is {newest.version}: "
                                "set options.patroni_version to an older release (docs/versions.md) to upgrade from it")
        if not now.at_least(3, 0):
            raise NotApplicable(f"this lab runs Patroni {now.version}: Patroni's 3.0 release notes say an upgrade to "
                                "the next major release works reliably only from 3.0.0 on (go through a 3.x first)")
        plat = releases.platform(lab.topo)
        if not plat.uses_wheelhouse:
            raise NotApplicable(f"the {plat.name} nodes install Patroni with pip from PyPI, not from the lab's wheels")
        members = S.members(lab)
        lab.step("Stage the new release", f"Patroni {newest.version}'s wheels on every member, nothing installed yet.")
        for m in members:
            out = releases.stage(lab.shell, lab.node_of(m), newest, plat)
            if not out.ok:
                raise ExpectationFailed(f"staging Patroni {newest.version} on {m}: {(out.stderr or out.stdout).strip()}")
        lab.on_restore(f"Patroni {now.version} again on every member", lambda: S.roll_patroni(lab, now, newest))
        lab.measure("versions_before", lab.probe.running_versions())
        lab.step("Roll it", "Replicas one by one, a switchover to an upgraded replica, then the old leader.")
        steps = S.roll_patroni(lab, newest, now)
        lab.measure("versions_at_each_step", steps)
        lab.expect(lambda: all(S.member_runs(lab, m, newest) for m in members),
                   f"every member runs Patroni {newest.version}", within=10)
        lab.expect(S.writable_leader(lab), "one writable leader", within=30)
