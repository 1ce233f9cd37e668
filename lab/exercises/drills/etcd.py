"""Article §5.3: what an unreachable etcd costs, and the two ways to soften it."""
from __future__ import annotations

from lab.exercises.api import steps as S
from lab.exercises.api.context import Lab
from lab.exercises.kit import actions as F
from lab.exercises.kit.patroni_config import PATRONI_UNIT
from lab.exercises.api.model import Drill, NotApplicable, drill

HUGE_RETRY_TIMEOUT = 864000000   # the article's "10,000 days"


@drill
class EtcdHugeRetryTimeout(Drill):
    name = "etcd-retry-timeout"
    commands = [
        "anywhere: patronictl -c /etc/patroni edit-config -s 'retry_timeout=864000000' -s 'synchronous_mode=true' --force",
        'on any node: sudo journalctl -u patroni | grep adjusting',
        'on the etcd node: sudo systemctl stop etcd',
        'undo: sudo systemctl start etcd; retry_timeout=null',
    ]
    section = "§5.3 (超大的retry_timeout)"
    summary = "The article's huge retry_timeout with synchronous mode, measured: Patroni 4 caps it, etcd down still demotes."
    story = """\
The article suggests, for many clusters sharing one etcd, a retry_timeout of
10,000 days plus synchronous mode: Patroni would keep retrying etcd instead of
demoting, and synchronous replication would prevent a double write. Patroni 3.2
and later enforce loop_wait + 2*retry_timeout <= ttl: a larger value is stored in
etcd but Patroni itself shrinks loop_wait to 1 and retry_timeout to
(ttl - loop_wait) / 2, and logs a warning. The drill sets the article's value,
stops etcd, and measures what really happens."""
    expected = "GET /config shows the huge value; Patroni logs that it adjusted it; with etcd stopped every PostgreSQL is still read-only within about ttl; writes resume after etcd returns."
    differs = ("The trick does not work in Patroni >= 3.2: the value is capped by loop_wait + 2*retry_timeout "
               "<= ttl. Use failsafe_mode (drill etcd-failsafe) instead.")

    def run(self, lab: Lab) -> None:
        lab.leader()
        t = lab.timing()
        S.set_config(lab, retry_timeout=HUGE_RETRY_TIMEOUT, synchronous_mode=True)
        lab.expect(lambda: lab.probe.dynamic_config().get("retry_timeout") == HUGE_RETRY_TIMEOUT,
                   "GET /config shows the article's retry_timeout", within=15)
        lab.expect(S.replicas_stream(lab), "replicas stream in synchronous mode", within=40)
        lab.expect(lambda: self._adjustment_logged(lab), "Patroni logs that it adjusted retry_timeout", within=30,
                   every=3)
        lab.measure("patroni_says", self._adjustment_logged(lab))
        S.stop_all_etcd(lab)
        S.expect_everyone_read_only(lab, t)
        lab.mark("etcd_back")
        S.start_all_etcd(lab)
        S.revive_patroni(lab)
        lab.expect(lambda: lab.probe.leader() and S.vip_commit(lab)[0], "writes commit again after etcd returns",
                   within=t.ttl + t.loop_wait + 40, every=2)
        lab.measure("writable_after_etcd_start_s", lab.since("etcd_back"))

    @staticmethod
    def _adjustment_logged(lab: Lab) -> str:
        """Patroni's own warning that it did not take the value as given ('' if none found)."""
        for n in lab.topo.postgres_nodes:
            out = lab.shell.run(n.name, f"sudo journalctl -u {PATRONI_UNIT} --since '-10min' --no-pager "
                                        "| grep -i 'violated the rule' | tail -n1")
            if out.ok and out.stdout.strip():
                return out.stdout.strip().split("WARNING: ", 1)[-1]
        return ""


@drill
class EtcdFailsafe(Drill):
    name = "etcd-failsafe"
    commands = [
        "anywhere: patronictl -c /etc/patroni edit-config -s 'failsafe_mode=true' --force",
        'on the etcd node: sudo systemctl stop etcd   # writes go on',
        'on a replica: sudo systemctl stop patroni   # the leader demotes',
        'undo: start both again; failsafe_mode=null',
    ]
    section = "§5.3 (failsafe_mode, Patroni >= 3.0)"
    summary = "failsafe_mode: with etcd down the primary keeps writing while it reaches every member; one member lost and it demotes."
    story = """\
Patroni 3.0 added failsafe_mode for the problem of §5.3. When etcd cannot be
reached, the leader asks every member it knows (the /failsafe key, written while
etcd was up) over the REST API (POST /failsafe). If ALL of them answer, no one
else can have become primary, so it keeps the primary role and writes go on. The
price: while etcd is down nothing can change (no failover, no switchover), and if
any one member does not answer, the leader demotes itself as before.

The drill shows both halves: etcd stopped, writes go on for longer than ttl;
then one replica's Patroni is stopped and the primary demotes."""
    expected = "With etcd down the leader stays writable for longer than ttl; after a replica's Patroni stops it demotes within about loop_wait + retry_timeout; writes resume when etcd returns."
    differs = "failsafe_mode does not exist in Patroni 1.6.5, the article's version."

    def run(self, lab: Lab) -> None:
        patroni = lab.topo.patroni_release
        if not patroni.failsafe_mode:
            raise NotApplicable(f"failsafe_mode arrived in Patroni 3.0; this lab runs Patroni {patroni.version}")
        leader = lab.leader()
        t = lab.timing()
        replica = lab.replicas()[0]
        S.set_config(lab, failsafe_mode=True)
        lab.expect(lambda: isinstance(lab.probe.dcs_key("failsafe"), dict) and
                   len(lab.probe.dcs_key("failsafe")) >= len(lab.topo.postgres_nodes),
                   "the /failsafe key lists every member", within=t.loop_wait * 2 + 20)
        lab.measure("failsafe_key", lab.probe.dcs_key("failsafe"))
        S.stop_all_etcd(lab)
        lab.hold(lambda: lab.probe.in_recovery(leader) is False and S.vip_commit(lab)[0],
                 f"{leader} stays primary and writes commit with etcd down", for_=t.ttl + t.loop_wait + 5, every=2)
        lab.step("The price", f"Stop Patroni on {replica}: the leader can no longer reach every member.")
        lab.mark("member_lost")
        lab.inject(F.stop_patroni(lab.facts, replica))
        took = lab.expect(lambda: lab.probe.in_recovery(leader) is True, f"{leader} demotes itself",
                          within=t.loop_wait + t.retry_timeout + 30)
        lab.measure("demoted_after_member_lost_s", took)
        lab.undo()   # the replica's Patroni
        lab.mark("etcd_back")
        S.start_all_etcd(lab)
        lab.expect(lambda: lab.probe.leader() and S.vip_commit(lab)[0], "writes commit again after etcd returns",
                   within=t.ttl + t.loop_wait + 40, every=2)
        lab.measure("writable_after_etcd_start_s", lab.since("etcd_back"))
