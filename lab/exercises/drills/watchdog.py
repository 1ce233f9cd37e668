"""Article §5.1: the watchdog fences a leader whose Patroni stopped working.

On VMs the watchdog is a real device (softdog, or the i6300esb of libvirt) that
resets the machine. In containers there is no device; the lab gives Patroni its
`testing` watchdog driver, whose pings go to a small fencing service that stops
PostgreSQL and Patroni when the pings stop: the same effect, a node that can no
longer write, without resetting a host shared with other containers.
"""
from __future__ import annotations

from lab.exercises.api import steps as S
from lab.exercises.api.context import Lab
from lab.exercises.kit import actions as F
from lab.exercises.kit.outcomes import Outcome
from lab.exercises.kit.patroni_config import PATRONI_CONFIG
from lab.exercises.api.model import Drill, NotApplicable, drill

MISSING_DEVICE = "/dev/lab-no-such-watchdog"
FENCER_LOG_TAG = "patroni-watchdog"   # the syslog tag of the containers' fencing service (watchdog-fencer.sh.j2)


@drill
class WatchdogFreeze(Drill):
    name = "watchdog-freeze"
    ending = "key-expiry"
    commands = [
        "on the leader: sudo cat /etc/patroni/20-watchdog.yml",
        'on the leader: sudo kill -STOP $(systemctl show -p MainPID --value patroni)',
        "on every node: sudo -u postgres psql -c 'select pg_is_in_recovery()'   # never two f",
        'undo: sudo kill -CONT ...; sudo systemctl start patroni (after a VM reboot: just wait)',
    ]
    section = "§5.1 (watchdog)"
    summary = "Freeze the leader's Patroni (SIGSTOP): the watchdog fences the node before its key expires."
    story = """\
A leader whose Patroni hangs (SIGSTOP here; a stuck host in life) still runs a
PostgreSQL that accepts writes, and after ttl a replica will be promoted: the
double primary of the kill -9 drill. With a watchdog, Patroni must ping the
device every loop; the watchdog's timeout is set to ttl - safety_margin, so a
Patroni that stops pinging gets its node fenced (rebooted on a VM; PostgreSQL
and Patroni stopped by the fencing service in containers) BEFORE the leader key
expires and BEFORE any replica can be promoted. No moment with two primaries."""
    expected = "The old leader's PostgreSQL stops within about ttl - safety_margin of the freeze, before a replica is promoted; the watch never sees two primaries."
    differs = ("Same in Patroni 4. In containers the device is Patroni's `testing` driver feeding a fencing "
               "service instead of /dev/watchdog.")

    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        t = lab.timing()
        wd = lab.facts.watchdog(leader)
        mode = str(wd.get("mode", "off")).lower()
        lab.measure("watchdog", {"mode": mode, "device": wd.get("device"), "driver": wd.get("driver", "default"),
                                 "safety_margin": wd.get("safety_margin", 5)})
        if mode in ("off", "false"):
            raise NotApplicable(f"no watchdog configured on {leader} (watchdog.mode is {mode}; the lab's "
                                "topology option watchdog_mode turns it on)")
        lab.step("Who is who", f"Leader: {leader}; its watchdog: {wd}.")
        margin = int(wd.get("safety_margin", 5))
        # in containers the fencing service kills the node's PostgreSQL and leaves its record; a VM resets
        fenced = [Outcome.FENCED] if wd.get("driver") == "testing" else [Outcome.UNREACHABLE, Outcome.STOPPED]
        lab.inject(F.freeze_patroni(lab.facts, leader, lab.probe.rest_alive))
        bound = t.ttl - margin + 3
        lab.expect_outcomes({leader: fenced}, f"{leader} is fenced by its watchdog", within=bound + 10)
        lab.within_bound("fenced_after_s", lab.fault_to_last_met(), bound,
                         "the watchdog timeout ttl - safety_margin (counted from the last keepalive, so at most that "
                         "after the freeze) + 3 s for the fencer's 1 s check and the probe; the key expires later")
        S.new_primary_within(lab, leader, t.ttl + t.loop_wait + 20, "ttl (the key expires) + loop_wait + 20 s",
                             how="a replica is promoted")

    def restore(self, lab: Lab) -> None:
        # the fenced node's Patroni was stopped by the fencing (or the VM rebooted): the undo started it
        old = [n.member for n in lab.topo.postgres_nodes if n.member != lab.probe.leader()]
        for m in old:
            S.rejoined(lab, m, within=150, how="streams", every=2)


@drill
class WatchdogRequired(Drill):
    name = "watchdog-required"
    commands = [
        'on a replica: set watchdog: {mode: required, device: /dev/lab-no-such-watchdog} in a new fragment /etc/patroni/90-lab-drill.yml; sudo systemctl reload patroni',
        'on it: curl -s http://localhost:8008/patroni   # "watchdog_failed": true',
        'anywhere: patronictl -c /etc/patroni switchover --leader <leader> --candidate <that replica> --force',
    ]
    section = "§5.1 (watchdog mode: required)"
    summary = "watchdog mode required without a usable device: the node reports watchdog_failed and never leads."
    story = """\
`mode: automatic` uses a watchdog when there is one and runs without one
otherwise. `mode: required` makes the watchdog a condition for leading: a node
that cannot open its device stays a replica, and GET /patroni says
watchdog_failed: true. The drill points one replica at a device that does not
exist and asks Patroni to switch over to it."""
    expected = "GET /patroni on the replica shows watchdog_failed: true; a switchover to it is refused and the leader stays."
    differs = "Same in Patroni 4."
    writes = False

    def run(self, lab: Lab) -> None:
        leader, replica = lab.leader(), lab.replicas()[0]
        lab.step("Who is who", f"Leader: {leader}. The replica we make require a watchdog: {replica}.")
        S.set_local(lab, replica, {"watchdog.mode": "required", "watchdog.device": MISSING_DEVICE,
                                "watchdog.driver": "default"},
                      why="a device that does not exist: no usable watchdog")
        lab.command(lab.node_of(replica), f"curl -s http://localhost:{lab.topo.ports.patroni}/patroni")
        lab.expect(lambda: lab.probe.member_state(replica).get("watchdog_failed") is True,
                   f"GET /patroni on {replica} shows watchdog_failed: true", within=40)
        lab.command(lab.node_of(leader), f"patronictl -c {PATRONI_CONFIG} switchover "
                                         f"--leader {leader} --candidate {replica} --force")
        status, body = lab.probe.rest(leader, "/switchover", method="POST",
                                      body={"leader": leader, "candidate": replica}, timeout=60)
        lab.measure("switchover_answer", f"{status} {str(body).strip()[:160]}")
        lab.hold(lambda: lab.probe.leader() == leader and lab.probe.in_recovery(replica) is True,
                 f"{leader} stays the leader; {replica} stays a replica", for_=20, every=2)


@drill
class LeaderPatroniRestart(Drill):
    name = "leader-patroni-restart"
    commands = [
        'on the leader: sudo kill -9 $(systemctl show -p MainPID --value patroni); sudo systemctl start patroni',
        'anywhere: patronictl -c /etc/patroni list   # same leader, same timeline',
        'on the leader: sudo cat /run/patroni-watchdog/state   # armed, never fired',
    ]
    section = "§5.1 (safety_margin: a leader back before its key expires)"
    summary = "Patroni on the leader dies and is started again at once: it keeps the leader lock, nothing fails over."
    story = """\
§5.1's arithmetic: with ttl 30, loop_wait 10 and safety_margin 5, the leader
renews its key every loop; a leader whose Patroni stops renewing is reset by
the watchdog 5 s before the key expires, and if it is back within those
seconds it may take the lock again; only an expired key lets a replica be
promoted. The drill gives the leader that chance in its simplest form: its
Patroni is killed (kill -9, PostgreSQL goes on as primary) and started again
at once. The restarted Patroni finds its PostgreSQL running as the primary
and the key still its own, renews it and carries on: no failover, no new
timeline, and the application writing through the VIP never notices."""
    expected = ("The restarted Patroni answers as the leader within ttl - loop_wait of the kill (before the key could "
                "expire); the same member stays the writable leader on the same timeline until ttl + loop_wait after "
                "the kill (past any expiry of the key it held); the watchdog, armed again by the new Patroni, never "
                "fires; every write path keeps writing; no acknowledged write lost.")
    differs = ("Same in Patroni 4. In containers Patroni's restart stands for the article's machine reset; the "
               "watchdog is the lab's fencing service.")
    lossless = True
    rto_zero = True      # PostgreSQL never stops: the write paths must not notice

    def run(self, lab: Lab) -> None:
        leader = lab.leader()
        t = lab.timing()
        timeline = lab.probe.member_state(leader).get("timeline")
        replicas = lab.replicas()
        lab.step("Who is who", f"Leader: {leader} on timeline {timeline}; ttl {t.ttl} s, loop_wait "
                               f"{t.loop_wait} s.")
        wd = lab.facts.watchdog(leader)
        fencer = wd.get("driver") == "testing" and str(wd.get("mode", "off")).lower() not in ("off", "false")
        since = S.node_epoch(lab, lab.node_of(leader))
        kill = F.kill_patroni(lab.facts, leader)
        killed = lab.inject(kill)
        lab.mark("restart")
        lab.undo(kill)       # started again at once, the 'back within the margin' of §5.1
        bound = t.ttl - t.loop_wait
        lab.expect(lambda: lab.probe.rest_alive(leader)
                   and lab.probe.member_state(leader).get("role") in ("primary", "master")
                   and lab.probe.leader() == leader,
                   f"the restarted Patroni on {leader} answers as the leader", within=bound, every=0.5)
        lab.within_bound("leader_again_after_kill_s", lab.since_t(killed), bound,
                         "ttl - loop_wait: the key was last renewed at most loop_wait before the kill, so it "
                         "cannot have expired before")
        if fencer:     # the containers' watchdog logs each arming; a VM's device has no such record
            lab.expect(lambda: lab.shell.run(lab.node_of(leader), f"sudo journalctl -t {FENCER_LOG_TAG} --since "
                                                                  f"@{int(since)} --no-pager | grep -q 'armed with'").ok,
                       f"the restarted Patroni arms {leader}'s watchdog again", within=15)
        past_expiry = t.ttl + t.loop_wait
        lab.hold(S.writable_leader(lab, leader), f"{leader} stays the writable leader (no replica is promoted)",
                 for_=max(past_expiry - lab.since_t(killed), 1), every=1)
        lab.measure("held_until_after_kill_s", lab.since_t(killed))
        lab.expect_outcomes({leader: Outcome.PRIMARY, **{r: Outcome.REPLICA for r in replicas}},
                            f"{leader} is the only primary, {', '.join(replicas)} replicas", within=10)
        lab.expect(lambda: lab.probe.member_state(leader).get("timeline") == timeline,
                   f"{leader} is still on timeline {timeline} (no promotion happened)", within=5)
