"""The runner: one drill from gate to verdict. Gate, story, the drill's own steps while a writer
writes through every read-write path and a watch samples for a second primary, then restore, gate
again, and the accounting (RTO per path, acknowledged writes lost, split brain) in a Result."""
from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from labcore import remote
from lab.exercises import health, recovery, steps
from lab.exercises.context import Lab, indent
from lab.exercises.i18n import drill_text
from lab.exercises.kit.probe import Probe
from lab.exercises.kit.shell import SshShell
from lab.exercises.model import Drill, ExpectationFailed, Result
from lab.exercises.monitor import SplitBrainWatch
from labcore import poll
from lab.exercises.writer import Writer, ids_present


def _findings(found: list[health.Finding]) -> list[dict]:
    return [asdict(f) for f in found]


def _pg_connector(lab: Lab) -> Callable[[str, int], Any]:
    def connect(address: str, port: int):
        return remote.pg_connect(lab.topo, address, port, timeout=2,
                                 options="-c statement_timeout=3000", tcp_user_timeout=3000,
                                 keepalives=1, keepalives_idle=2, keepalives_interval=1, keepalives_count=2)
    return connect


def run_drill(cls: type[Drill], lab: Lab, *, writer: Writer | None = None,
              watch: SplitBrainWatch | None = None) -> Result:
    """Run one drill: gate, story, fault, expectations, restore, gate; always returns a Result."""
    d = cls()
    res = Result(cls.name, cls.section, mode="auto" if lab.auto else "guided", scale=lab.scale,
                 started=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    lab.result, lab.t_fault, lab.marks = res, None, {}
    start = lab.clock.monotonic()
    def text(field: str) -> str:      # the drill's own words, in the trainee's language
        return drill_text(cls.name, field, lab.lang, getattr(cls, field))
    lab.say("\n" + lab.tr("header", name=cls.name, section=text("section")) + "\n" + indent(text("summary")))
    lab.step(lab.tr("story"), text("story") + ("\n\n" + lab.tr("differs", text=text("differs")) if cls.differs else ""))

    ok, found = recovery.gate(lab, within=90)
    res.gate_before = _findings(found)
    if not ok:
        res.fail("the lab is not at its healthy baseline before the drill; nothing was touched:\n"
                 + health.describe(found))
        return _finish(lab, res, start)

    connect = _pg_connector(lab)
    if cls.writes and writer is None:
        writer = Writer(lab.writer_paths, connect, clock=lab.clock.monotonic)
    if watch is None:
        wp = lab.watch_probe or Probe(lab.topo, SshShell(lab.topo))
        watch = SplitBrainWatch(wp.primaries, wp.vip_holders, clock=lab.clock.monotonic)
    try:
        if cls.writes and writer is not None:
            try:
                c = connect(*lab.writer_paths[0][1:])
                writer.prepare(c)
                c.close()
            except Exception as e:
                raise ExpectationFailed(f"cannot prepare the writer's table through the VIP: {e}") from None
            writer.start()
        watch.start()
        lab.mark("start")
        d.run(lab)
    except ExpectationFailed as e:
        res.fail(str(e))
    except Exception as e:
        res.fail(f"{type(e).__name__}: {e}", verdict="error")
    finally:
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

    t0 = lab.t_fault if lab.t_fault is not None else lab.marks.get("start", start)
    res.split_brain = watch.summary(since=lab.marks.get("start", start))
    _judge_split_brain(cls, res)
    if writer is not None:
        _account_writes(lab, writer, res, t0)
        if cls.lossless and res.writes.get("lost") not in (0, None):
            res.fail(f"{res.writes['lost']} acknowledged write(s) lost in a drill that must lose none")
    return _finish(lab, res, start)


def _judge_split_brain(cls: type[Drill], res: Result) -> None:
    seen = res.split_brain.get("double_primary", False)
    if cls.split_brain is False and seen:
        res.fail(f"split brain: {', '.join(res.split_brain['double_primary_nodes'])} were primary at once")
    elif cls.split_brain is True and not seen:
        res.notes.append("the double primary the article warns of was not observed this time")


def _account_writes(lab: Lab, writer: Writer, res: Result, t0: float) -> None:
    for name, log in writer.logs.items():
        res.rto_s[name] = log.rto(t0)
    acked = writer.acknowledged()
    res.writes = {"attempted": sum(len(l.attempts) for l in writer.logs.values()),
                  "acknowledged": len(acked),
                  "sync_cancelled": sum(len(l.sync_cancelled) for l in writer.logs.values()),
                  "outages_s": {n: [(round(a - t0, 1), None if b is None else round(b - t0, 1))
                                    for a, b in l.outages(t0)] for n, l in writer.logs.items()},
                  "lost": None}
    try:
        leader = lab.leader()
        conn = _pg_connector(lab)(lab.topo.node(leader).address, lab.topo.ports.postgres)
        present = ids_present(conn, acked)
        conn.close()
        missing = writer.missing(present)
        res.writes.update(lost=len(missing), lost_ids=missing[:50], counted_on=leader)
    except Exception as e:
        res.notes.append(f"lost writes not counted: {e}")
    lab.say("   " + lab.tr("writes", acked=res.writes["acknowledged"], lost=res.writes["lost"],
                           rto=", ".join(f"{k} {v} s" for k, v in res.rto_s.items())))


def _finish(lab: Lab, res: Result, start: float) -> Result:
    res.duration_s = round(lab.clock.monotonic() - start, 1)
    sb = res.split_brain
    lab.say("\n" + lab.tr("verdict", drill=res.drill, verdict=lab.tr(f"verdict_{res.verdict}", default=res.verdict.upper()))
            + (lab.tr("reason", reason=res.reason) if res.reason else "")
            + ("\n    " + lab.tr("split_brain_seen", seen=sb.get("double_primary"),
                                  most=sb.get("max_primaries_at_once"), duration=res.duration_s) if sb else ""))
    if lab.results_dir is not None:
        save_result(res, lab.results_dir)
    return res


def save_result(res: Result, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / f"{res.drill}.json"
    p.write_text(json.dumps(asdict(res), indent=2, default=str) + "\n")
    return p
