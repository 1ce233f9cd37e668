"""What only a VM shows: the leader's whole machine fails (article §5's failover when the host itself is
what breaks; §5.1's machine that hangs or restarts). The fault is typed on the control host, with
virsh, on the lab's own domain of the leader (lab.exercises.kit.machines). On containers there is no
machine to power off, unplug or reset: each drill says so and is not applicable."""
from __future__ import annotations

from lab.exercises.api import steps as S
from lab.exercises.api.context import Lab
from lab.exercises.kit import machines as M
from lab.exercises.kit.outcomes import Outcome
from lab.exercises.api.model import Drill, NotApplicable, drill

# A machine that was off or reset boots, starts Patroni (enabled at boot, as the article's
# `systemctl enable patroni`) and streams again: a minute with KVM, more under TCG (timeout scale).
BOOT_AND_REJOIN_S = 180
BOOT_ID = "cat /proc/sys/kernel/random/boot_id"


def _a_vm(lab: Lab) -> None:
    made_by = M.provider()
    if not M.is_vm(made_by):
        raise NotApplicable(f"the lab's nodes were made by the {made_by} provider, not VMs of this host: only "
                            "`invoke up --provider libvirt` gives the host a machine to power off, reset or unplug "
                            "(docs/vm.md)")


def _leaders_vm(lab: Lab) -> tuple[str, str, str]:
    """Not applicable unless the nodes are VMs; then the leader, its node and the node's boot id,
    said as who is who."""
    _a_vm(lab)
    leader = lab.leader()
    node = lab.node_of(leader)
    boot = lab.run_on(node, BOOT_ID).stdout.strip()
    lab.step("Who is who", f"Leader: {leader}, on the VM {M.domain_name(lab.topo, leader)}.")
    return leader, node, boot


def _journal_epoch(lab: Lab, member: str, words: str, since_epoch: float) -> float | None:
    """When (the node's clock) Patroni's journal on ``member`` first says ``words`` since ``since_epoch``."""
    out = lab.shell.run(lab.node_of(member), f"sudo journalctl -u patroni --since @{int(since_epoch)} -o short-unix "
                                             f"--no-pager | grep -i -m1 {words!r}")
    first = out.stdout.split()[:1] if out.ok else []
    try:
        return float(first[0]) if first else None
    except ValueError:
        return None


@drill
class PrimaryPoweredOff(Drill):
    name = "primary-power-off"
    vm_only = True
    ending = "key-expiry"
    commands = [
        "on the control host: virsh -c qemu:///system destroy <lab>_<leader's node>   # the power cord",
        "anywhere: patronictl -c /etc/patroni list   # the old leader is gone; a replica leads after ttl",
        "undo, on the control host: virsh -c qemu:///system start <lab>_<node>   # it boots and rejoins",
    ]
    section = "§5 (自动 failover: the leader's whole machine fails)"
    summary = "Power the leader's VM off hard: its key expires, a replica is promoted; never two primaries."
    story = """\
The whole machine under the leader stops at once, as when its power fails:
PostgreSQL, Patroni and the kernel with them, no shutdown, no last words to etcd.
Nobody releases the leader key; it expires after ttl seconds and a replica is
promoted, as in the article's failover. A machine that is off cannot be a second
primary, so unlike kill -9 of Patroni there is no double primary. Writes the old
primary acknowledged but had not yet sent to a replica are lost (asynchronous
replication, §5.2). Started again, the machine boots, Patroni starts at boot
and the old leader rejoins as a replica, rewound onto the new timeline if needed."""
    expected = ("The old leader stops answering at once; a replica is the writable leader within ttl + loop_wait "
                "(+ 20 s margin); the watch never sees two primaries; lost writes measured (not fixed); the "
                "machine, started again, boots and its member streams from the new leader.")
    differs = ("Same in Patroni 4. The lab's containers cannot show it (a container has no machine to power off); "
               "on them the drill is not applicable.")

    def run(self, lab: Lab) -> None:
        leader, _, _ = _leaders_vm(lab)
        t = lab.timing()
        lab.inject(M.power_off(lab.facts, leader))
        lab.expect_outcomes({leader: Outcome.UNREACHABLE}, f"{leader} answers nothing", within=10)
        new = S.new_primary_within(lab, leader, t.ttl + t.loop_wait + 20,
                                   "ttl (the key expires) + loop_wait + 20 s margin",
                                   how="a replica is promoted once the leader key expires")
        lab.step("The machine back", f"New leader: {new}. The old machine is started again.")
        S.undo_then_rejoined(lab, leader, within=BOOT_AND_REJOIN_S, measure="old_leader_rejoined_s",
                             how=f"boots and streams from {new}")


@drill
class PrimaryLinkDown(Drill):
    name = "primary-link-down"
    vm_only = True
    ending = "key-expiry"
    commands = [
        "on the control host: virsh -c qemu:///system domif-setlink <lab>_<leader's node> <its MAC> down",
        "anywhere else: patronictl -c /etc/patroni list   # a replica leads after ttl",
        "undo, on the control host: virsh -c qemu:///system domif-setlink <lab>_<node> <its MAC> up",
        "then on the old leader: sudo journalctl -u patroni   # 'demoting self because DCS is not accessible'",
    ]
    section = "§5 table, row 9 (主库无法连接etcd); §5.1 point 2"
    summary = "Unplug the leader's VM from the network: it demotes itself, a replica takes over; never two primaries."
    story = """\
The leader's machine keeps running, but its one network link goes dead: it can
reach neither etcd nor the other members, and no client can reach it. That is
the article's leader that cannot reach etcd (§5.1, point 2), with everything
else cut too. Its Patroni cannot renew the leader key and demotes its own
PostgreSQL after retry_timeout; the key expires after ttl and a replica is
promoted. Where the lab arms the kernel's watchdog, the loop blocked on etcd may
miss its deadline instead, and the watchdog resets the machine: also no second
primary. While the link is down nobody can look at the old leader, so the drill
reads its side afterwards: its journal (the demotion, on its own clock) or its
boot record (a reset), against the new leader's promotion in its journal."""
    expected = ("A replica is the writable leader within ttl + loop_wait (+ 30 s); once the link is back, the old "
                "leader's journal shows its demotion (or its boot record a watchdog reset) before the new leader's "
                "promotion; it then streams from the new leader.")
    differs = ("Same in Patroni 4 (failsafe_mode off, the default). Containers cannot lose their link while their "
               "processes run on (primary-etcd-cut shows the etcd half with iptables); on them the drill is not "
               "applicable.")

    def run(self, lab: Lab) -> None:
        leader, node, boot_before = _leaders_vm(lab)
        t = lab.timing()
        since = S.node_epoch(lab, node)
        lab.inject(M.link_down(lab.facts, leader))
        new = S.new_primary_within(lab, leader, t.ttl + t.loop_wait + 30, "ttl (the key expires) + loop_wait + 30 s",
                                   how="a replica is promoted once the leader key expires")
        lab.step("The link back", f"New leader: {new}. The link of {node} comes back; now its side can be read.")
        lab.undo()
        lab.expect(lambda: lab.shell.run(node, BOOT_ID).ok, f"{node} answers ssh again", within=BOOT_AND_REJOIN_S)
        promoted = _journal_epoch(lab, new, "promoted self to leader", since)
        reset = lab.run_on(node, BOOT_ID).stdout.strip() != boot_before
        if reset:
            up_s = float(lab.run_on(node, "cut -d' ' -f1 /proc/uptime").stdout.strip())
            stopped = S.node_epoch(lab, node) - up_s
            lab.measure("old_leader_end", "reset by its watchdog (a new boot)")
        else:
            stopped = _journal_epoch(lab, leader, "demot", since)
            lab.measure("old_leader_end", "demoted itself" if stopped is not None else "no record")
        lab.expect(lambda: stopped is not None and promoted is not None,
                   f"{node}'s journal or boot record dates the end of its primary, and {new}'s journal its promotion",
                   within=0)
        lab.measure("old_leader_ended_before_promotion_s", round(promoted - stopped, 1))
        lab.expect(lambda: stopped < promoted,
                   f"{leader} stopped being primary before {new} was promoted (the nodes' own clocks)", within=0)
        S.rejoined(lab, leader, within=BOOT_AND_REJOIN_S, how=f"streams from {new}")
        lab.measure("old_leader_rejoined_s", lab.fault_to_last_met())


@drill
class PrimaryMachineReset(Drill):
    name = "primary-reset"
    vm_only = True
    commands = [
        "on the control host: virsh -c qemu:///system reset <lab>_<leader's node>   # the reset button",
        "anywhere: patronictl -c /etc/patroni list   # a leader again: a replica, or the old one if it was back in time",
    ]
    section = "§5.1 (重启如果在5秒之内完成 …: a leader's machine that restarts)"
    summary = "Reset the leader's VM: it reboots and Patroni starts at boot; the cluster has one leader again."
    story = """\
The leader's machine restarts at once, as its reset button (or a watchdog, §5.1)
would do it. The article says what follows: a machine back within the key's
remaining time may take the leader lock again; otherwise the key expires and a
replica is promoted. Either way there must be a single writable leader soon,
never two, and the restarted machine must come back by itself: Patroni is
enabled at boot, starts PostgreSQL and rejoins."""
    expected = ("A writable leader within ttl + loop_wait (+ 20 s margin), the old one or a replica; the watch never "
                "sees two primaries; the reset machine boots and its member is back, streaming or leading.")
    differs = "Same in Patroni 4. Containers cannot be reset; on them the drill is not applicable."

    def run(self, lab: Lab) -> None:
        leader, node, boot_before = _leaders_vm(lab)
        t = lab.timing()
        lab.inject(M.reset(lab.facts, leader, lambda: not lab.probe.rest_alive(leader)))
        lab.expect(S.writable_leader(lab), "the cluster has a writable leader again", within=t.ttl + t.loop_wait + 20)
        lab.measure("leader_after_reset", lab.probe.leader())
        lab.expect(lambda: lab.shell.run(node, BOOT_ID).stdout.strip() not in ("", boot_before),
                   f"{node} booted again (a new boot id)", within=BOOT_AND_REJOIN_S)
        lab.expect(lambda: lab.probe.leader() == leader or S.streams(lab, leader)(),
                   f"{leader} is back: streaming, or leading", within=BOOT_AND_REJOIN_S)
        lab.measure("old_leader_back_s", lab.fault_to_last_met())
