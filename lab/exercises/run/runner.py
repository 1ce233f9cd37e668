"""The runner: one drill from gate to verdict. Gate, story, the drill's own steps while a writer
writes through every read-write path and a watch samples every member twice a second, then
restore, gate again, and the judgement: the verdict (lab.exercises.observe.verdict) from the checks, the
watch (blind -> error; a forbidden double primary -> fail), the write figures (lab.exercises.observe.writes:
lost or uncountable writes in a lossless drill, refused writes where the write path must not
notice the fault) and the article's bounds. Every sample, write, mark and check goes to the drill's
evidence as it happens when a recorder is given (lab.exercises.observe.evidence)."""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from labcore import vips
from labcore import poll, remote
from lab.exercises.run import health, recovery
from lab.exercises.api import steps
from lab.exercises.api.context import Lab, indent
from lab.i18n import drill_text
from lab.exercises.kit.outcomes import lab_member_probe
from lab.exercises.kit.probe import Probe
from lab.exercises.kit.shell import SshShell
from lab.exercises.api.model import Drill, ExpectationFailed, NotApplicable, Result
from lab.exercises.observe.verdict import Bound, Verdict, judge_split_brain, judge_writes
from lab.exercises.observe.watch import Watch, WatchRule, WatchSummary, blind_reason
from lab.exercises.observe import band
from lab.exercises.observe import phases as phases_of
from lab.exercises.observe.writer import CADENCE_S, Writer, WritePath, ids_present, surviving_history
from lab.exercises.observe.writes import Survivor, parse_history, rto_by_path, write_figures

WATCH_RULE = WatchRule(max_missed_share=0.2, max_gap_s=2.0)
# A look at every member twice a second, each answer awaited 1.5 s; on slow machines (the timeout
# scale) the looks come as much less often, but an answer is awaited no longer than one look's
# interval: a VM that is off or reset never answers, and waiting for it would stall every look.
WATCH_INTERVAL_S, WATCH_DEADLINE_S = 0.5, 1.5


def watch_rule() -> WatchRule:
    """WATCH_RULE for this lab: slow machines (VMs under TCG, the timeout scale) are looked at as
    much less often as everything else waits longer, so the gap a verdict tolerates stretches too."""
    return replace(WATCH_RULE, max_gap_s=poll.scaled(WATCH_RULE.max_gap_s))
# A write path that must not notice the fault: no refused write, and no wait between two
# acknowledgements longer than the writer's cadence plus this margin (a loaded 2-core host).
ACK_GAP_MARGIN_S = 1.0


class _CannotObserve(Exception):
    """The lab could not set up what the verdict needs to see (an error, not a fail)."""


def _findings(found: list[health.Finding]) -> list[dict]:
    return [asdict(f) for f in found]


def _pg_connector(lab: Lab) -> Callable[[str, int], Any]:
    def connect(address: str, port: int):
        return remote.pg_connect(lab.topo, address, port, timeout=2,
                                 options="-c statement_timeout=3000", tcp_user_timeout=3000,
                                 keepalives=1, keepalives_idle=2, keepalives_interval=1, keepalives_count=2)
    return connect


def patroni_view(probe: Probe) -> dict[str, Any]:
    """Patroni's own picture (GET /cluster from the first member that answers), as a ``patroni`` event."""
    members = probe.members()
    leader = next((m["name"] for m in members if m.get("role") in ("leader", "primary", "master")), None)
    return {"leader": leader, "members": [{"name": m.get("name"), "role": m.get("role"), "state": m.get("state"),
                                           "timeline": m.get("timeline"), "lag": m.get("lag")} for m in members]}


def haproxy_view(topo) -> dict[str, Any]:
    """haproxy's backends through its VIP: member -> UP or DOWN, for :5000 (primary) and :6000 (replicas)."""
    from lab.exercises.kit import haproxy_stats

    stats = haproxy_stats.read(topo)
    servers = {n.member: (n.member, n.address) for n in topo.postgres_nodes}
    return {"primary": {m: "UP" if up else "DOWN" for m, up in
                        haproxy_stats.servers_up(stats, topo.cluster.scope, servers).items()},
            "replicas": {m: "UP" if up else "DOWN" for m, up in
                         haproxy_stats.servers_up(stats, f"{topo.cluster.scope}_read", servers).items()}}


def lab_watch(lab: Lab) -> Watch:
    """The watch on the real lab: its own ssh sessions and connections (the drill's thread keeps its own)."""
    topo = lab.topo
    since = datetime.fromisoformat(lab.result.started) if lab.result else None
    member_shell, vip_shell = SshShell(topo), SshShell(topo)
    probe = lab_member_probe(topo, lab.facts, member_shell, since=since)

    def vip_probe(node: str) -> set[str]:
        out = vip_shell.run(node, vips.ADDRESSES_COMMAND, timeout=5)
        if not out.ok:
            raise RuntimeError(out.stderr.strip() or f"exit {out.rc}")
        mine = vips.addresses(out.stdout)
        return {role for role, vip in topo.vips.items() if vip in mine}

    rest = lab.watch_probe or Probe(topo, SshShell(topo))
    # the failover's phases (observe.phases) read etcd's leader key and haproxy's backends from these
    views = {"dcs": rest.leader_key, "haproxy": lambda: haproxy_view(topo)}
    return Watch([n.member for n in topo.postgres_nodes], probe, vip_nodes=[n.name for n in topo.nodes],
                 vip_probe=vip_probe, vip_roles=list(topo.vips), patroni_view=lambda: patroni_view(rest), views=views,
                 interval=poll.scaled(WATCH_INTERVAL_S), deadline=max(WATCH_DEADLINE_S, poll.scaled(WATCH_INTERVAL_S)),
                 clock=lab.clock.monotonic, record=lab.recorder.event if lab.recorder else None)


def lab_writer(lab: Lab, watch: Watch) -> Writer:
    """The writer on the real lab: one thread per read-write path, each write told to the evidence."""
    addresses = {n.address: n.member for n in lab.topo.postgres_nodes}
    return Writer([p if isinstance(p, WritePath) else WritePath(*p) for p in lab.writer_paths], _pg_connector(lab),
                  clock=lab.clock.monotonic,
                  identify=lambda address, started: addresses.get(address) or watch.server_of(started),
                  on_attempt=(lambda a: lab.recorder.event("write", at=a.end, **a.event()))
                  if lab.recorder else None)


def run_drill(cls: type[Drill], lab: Lab, *, writer: Writer | None = None, watch: Watch | None = None,
              recorder: Any = None) -> Result:
    """Run one drill: gate, story, fault, expectations, restore, gate, judgement; always returns a Result.
    ``recorder``: a lab.exercises.observe.evidence.DrillRecorder for this drill's events (or the Lab's own)."""
    d = cls()
    lab.recorder = recorder or lab.recorder
    res = Result(cls.name, cls.section, claim=cls.expected, mode="auto" if lab.auto else "guided", scale=lab.scale,
                 started=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    lab.result, lab.t_fault, lab.marks = res, None, {}
    lab.t_start = lab.recorder.t0 if lab.recorder else lab.clock.monotonic()
    start = lab.t_start
    def text(field: str) -> str:      # the drill's own words, in the trainee's language
        return drill_text(cls.name, field, english=getattr(cls, field))
    lab.say("\n" + lab.tr("header", name=cls.name, section=text("section")) + "\n" + indent(text("summary")))
    lab.step(lab.tr("story"), text("story") + ("\n\n" + lab.tr("differs", text=text("differs")) if cls.differs else ""))

    ok, found = recovery.gate(lab, within=90)
    res.gate_before = _findings(found)
    gated = lab.clock.monotonic()
    res.phases_s = {"gate": round(gated - start, 1)}
    if not ok:
        res.error("the lab is not at its healthy baseline before the drill; nothing was touched "
                  "(`invoke heal` brings it back):\n"
                  + health.describe(found))
        return _finish(lab, res, start)

    connect = _pg_connector(lab)
    if watch is None:
        watch = lab_watch(lab)
    if cls.writes and writer is None:
        writer = lab_writer(lab, watch)
    run_end = start
    try:
        watch.start()
        if cls.writes and writer is not None:
            try:
                c = connect(*lab.writer_paths[0][1:3])
                writer.prepare(c)
                c.close()
            except Exception as e:
                raise _CannotObserve(f"cannot prepare the writer's table through the VIP: {e}") from None
            writer.start()
        d.run(lab)
    except NotApplicable as e:
        res.not_applicable(str(e))
    except _CannotObserve as e:
        res.error(str(e))
    except ExpectationFailed as e:
        res.fail(str(e))
    except Exception as e:
        res.error(f"{type(e).__name__}: {e}")
    finally:
        run_end = lab.mark("restore", "undo the faults and changes, back to the baseline")
        lab.step(lab.tr("restore"), lab.tr("restore_text"))
        for err in lab.undo_everything():
            res.fail(err)
        steps.revive_patroni(lab)
        try:
            d.restore(lab)
        except Exception as e:
            res.fail(f"restore: {e}")
        ok, found = recovery.gate(lab, within=180)
        if not ok:
            lab.note("baseline not reached after restore; repairing:\n" + health.describe(found))
            recovery.repair(lab)
            ok, found = recovery.gate(lab, within=180)
        res.gate_after = _findings(found)
        if writer is not None and ok:
            # haproxy's health checks lag the cluster by a few intervals: let every path come back
            if not poll.until(writer.all_paths_writing, lab.bound(60), 1.0, lab.clock)[0]:
                res.fail("a read-write path did not accept writes again after the restore")
        watch.stop()
        if writer is not None:
            writer.stop()
        if not ok:
            res.fail("the drill could not restore the healthy baseline:\n" + health.describe(found))

    t0 = lab.t_fault if lab.t_fault is not None else start
    res.fault_at_s = None if lab.t_fault is None else round(lab.t_fault - start, 3)
    res.phases_s = phases(start, gated, lab.t_fault, run_end, lab.clock.monotonic())
    # a drill without a fault is watched from the watch's start: before it (the gate) nothing is looked at
    _judge_watch(cls, res, watch, t0 if lab.t_fault is not None else (watch.started_at or gated), run_end, start)
    if writer is not None and res.verdict != Verdict.NOT_APPLICABLE:
        _account_writes(lab, writer, res, t0, rto_until=run_end if cls.restore_moves_leader else None)
        judge_writes(res, cls.lossless)
        if cls.rto_zero:
            _judge_untouched_writes(res)
    if cls.ending and lab.t_fault is not None and lab.recorder is not None:
        _explain_failover(lab, cls, res)
    return _finish(lab, res, start)


def _explain_failover(lab: Lab, cls: type[Drill], res: Result) -> None:
    """The failover split into its phases (from the drill's own events) and the band the live settings
    predict per path; a measured RTO outside its band is a note that says so, never a silent pass."""
    timing = lab.timing()
    cfg = ""
    hap = lab.topo.haproxy_nodes[0].name if lab.topo.haproxy_nodes else None
    if hap:
        out = lab.shell.run(hap, "sudo cat /etc/haproxy/haproxy.cfg", timeout=10)
        cfg = out.stdout if out.ok else ""
    inter, rise = band.haproxy_checks(cfg, lab.topo.cluster.scope) or (None, None)
    settings = band.Settings(ttl=timing.ttl, loop_wait=timing.loop_wait, retry_timeout=timing.retry_timeout,
                             **({"haproxy_inter": inter, "haproxy_rise": rise} if inter else {}),
                             writer_cadence=CADENCE_S)
    events = [json.loads(line) for line in (lab.recorder.folder / "events.jsonl").read_text().splitlines() if line]
    t0 = lab.recorder.t(lab.t_fault)
    found = phases_of.derive(events, ttl=timing.ttl, node_of={n.member: n.name for n in lab.topo.postgres_nodes})
    bands = band.predict(band.Ending(cls.ending), settings)
    res.failover = {"ending": cls.ending, "fault_t": t0, "phases": [p.to_json() for p in found],
                    "band": {k: b.to_json() for k, b in bands.items()},
                    "settings": {**settings.__dict__, "haproxy_read": inter is not None}}
    res.notes += band.outside({p: res.rto_s.get(p) for p in bands}, bands)
    # each part of the failover against the one setting that decides it: a whole RTO's band is as wide
    # as the leader race is uncertain, a part's is not
    res.notes += band.gaps_outside({p.name: p.t for p in found}, settings)
    lab.say("\n".join([lab.tr("failover_phases")] + [
        f"  {p.name:20} {'unknown' if p.t is None else f'{p.t:+7.1f} s'}  {p.seen}" for p in found]
        + [f"  band {k:8} {b.low:g}-{b.high:g} s (avg {b.mid:g}): measured "
           f"{'-' if res.rto_s.get(k) is None else res.rto_s[k]}" for k, b in bands.items()]))


def phases(start: float, gated: float, fault: float | None, restore: float, end: float) -> dict[str, float | None]:
    """Seconds of each part of a drill: the health gate, the setup before the fault, the fault
    window (fault to the restore mark; None without a fault), the restore (undo, repairs, gate again)."""
    r = lambda a, b: round(b - a, 1)
    return {"gate": r(start, gated), "setup": r(gated, fault if fault is not None else restore),
            "fault_window": r(fault, restore) if fault is not None else None, "restore": r(restore, end)}


def _judge_watch(cls: type[Drill], res: Result, watch: Watch, t0: float, run_end: float, start: float) -> None:
    """The watch over the fault window (fault to restore) decides whether the drill could see; over the
    whole drill, whether two primaries were seen."""
    window = _on_drill_time(watch.summary(t0, run_end), start)
    rule = watch_rule()
    res.watch = replace(_on_drill_time(watch.summary(start, watch.stopped_at), start), fault_window=window,
                        rule=rule)
    res.split_brain = res.watch.split_brain()
    if res.verdict == Verdict.NOT_APPLICABLE:
        return
    blind = blind_reason(window, rule)
    if blind:
        res.error(f"{blind} (fault window {window.window_s[1] - window.window_s[0]:.1f} s): "
                  "the verdict cannot rest on it")
    judge_split_brain(res, cls.split_brain)


def watch_was_blind(res: Result) -> bool:
    """The verdict is an error because the watch could not see the fault window (not a fact about the
    lab: running the drill again may see it)."""
    w = res.watch
    return (res.verdict == Verdict.ERROR and w is not None and w.fault_window is not None
            and blind_reason(w.fault_window, w.rule or WATCH_RULE) is not None)


def _on_drill_time(summary: WatchSummary, start: float) -> WatchSummary:
    """A watch summary whose times are seconds from the drill's start mark (the events' ``t``)."""
    shift = lambda x: None if x is None else round(x - start, 3)
    return replace(summary, window_s=[round(x - start, 3) for x in summary.window_s],
                   first_double_primary_at=shift(summary.first_double_primary_at),
                   longest_gap_from=shift(summary.longest_gap_from))


def _account_writes(lab: Lab, writer: Writer, res: Result, t0: float, rto_until: float | None = None) -> None:
    """Figures per path from the writer's log, against the history of the timeline that survived and
    the ids found on the final primary."""
    survivor = present = counted_on = None
    why: list[str] = []
    acked = writer.acknowledged()
    try:
        leader = lab.leader()
        conn = _pg_connector(lab)(lab.topo.node(leader).address, lab.topo.ports.postgres)
        try:
            try:
                timeline, history = surviving_history(conn)
                survivor = Survivor(timeline, parse_history(history))
            except Exception as e:
                why.append(f"the surviving timeline's history could not be read: {e}")
            present = ids_present(conn, acked)
            counted_on = leader
        finally:
            conn.close()
    except Exception as e:
        why.append(f"the final primary could not be asked: {e}")
    res.writes = write_figures(writer.attempts(), t0, survivor=survivor, present=present, counted_on=counted_on,
                               uncounted_reason="; ".join(why) or None, rto_until=rto_until)
    for w in why:
        res.notes.append(w)
    res.rto_s = rto_by_path(res.writes)
    lab.say("   " + lab.tr("writes", acked=res.writes.acknowledged, lost=res.writes.lost,
                           after_fork=res.writes.after_fork, paths="; ".join(
                               lab.tr("write_path", path=p, refused=f.outage_s, rto=f.rto_s,
                                      survivor=f.to_surviving_timeline_s) for p, f in res.writes.paths.items())))


def _judge_untouched_writes(res: Result) -> None:
    """A fault on a replica: every path keeps writing (RTO 0 within the writer's cadence)."""
    bound = round(CADENCE_S + ACK_GAP_MARGIN_S, 2)
    paths = res.writes.paths if res.writes else {}
    gaps = [f.longest_ack_gap_s for f in paths.values() if f.longest_ack_gap_s is not None]
    refused = sum(f.refused for f in paths.values())
    res.bounds["write_paths_untouched"] = Bound(
        seen_s=max(gaps, default=None), bound_s=bound, ok=not refused and all(g <= bound for g in gaps),
        derived=f"no refused write; between two acknowledgements at most the writer's cadence {CADENCE_S:g} s "
                f"+ {ACK_GAP_MARGIN_S:g} s",
        per_path={p: {"refused": f.refused, "longest_ack_gap_s": f.longest_ack_gap_s} for p, f in paths.items()})
    for p, f in paths.items():
        if f.refused:
            res.fail(f"the {p} path refused {f.refused} write(s) ({f.outage_s:g} s) for a fault the "
                     "article says the application does not notice")
        elif f.longest_ack_gap_s is not None and f.longest_ack_gap_s > bound:
            res.fail(f"the {p} path waited {f.longest_ack_gap_s:g} s between two acknowledged writes "
                     f"(more than {bound:g} s) for a fault the article says the application does not notice")


def _finish(lab: Lab, res: Result, start: float) -> Result:
    res.duration_s = round(lab.clock.monotonic() - start, 1)
    if res.fault_at_s is not None:       # checks measured from the fault, as the article states its bounds
        for c in res.checks:
            c.start, c.end = round(c.start - res.fault_at_s, 3), round(c.end - res.fault_at_s, 3)
        for oc in res.outcomes:
            oc.start, oc.end = round(oc.start - res.fault_at_s, 3), round(oc.end - res.fault_at_s, 3)
    w = res.watch
    lab.say("\n" + lab.tr("verdict", drill=res.drill, verdict=lab.tr(f"verdict_{res.verdict}", default=res.verdict.upper()))
            + (lab.tr("reason", reason=lab.said(res.reason)) if res.reason else "")
            + ("\n    " + lab.tr("split_brain_seen", samples=w.samples, rate=w.samples_per_s,
                                  gap=w.longest_gap_s, most=w.max_primaries_at_once,
                                  duration=res.duration_s) if w else ""))
    if lab.recorder is not None:
        lab.recorder.mark("end", res.verdict)
        lab.recorder.verdict(res.verdict, res.reason)
        lab.recorder.result(res.to_json())
    if lab.results_dir is not None:
        save_result(res, lab.results_dir)
    return res


def save_result(res: Result, directory: Path) -> Path:
    """The latest result of each drill, by name (``.lab/drills/<name>.json``); the run folders keep them all."""
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / f"{res.drill}.json"
    p.write_text(json.dumps(res.to_json(), indent=2, default=str) + "\n")
    return p
