"""`invoke exercise`: the drills of article §5 against the live lab."""
from __future__ import annotations

import json
import time

from invoke import Exit, task

from labcore import state as lab_state
from labcore.topology import TopologyError, load
from labcore import poll
from labcore.suggest import unknown


def _table(results) -> str:
    rows = [f"{'drill':24} {'verdict':7} {'RTO vip':>8} {'RTO haproxy':>11} {'lost':>5} {'2 primaries':>11} {'time':>6}"]
    for r in results:
        rto = r.rto_s or {}
        fmt = lambda v: "-" if v is None and not rto else ("never" if v is None else f"{v:g}s")
        lost = r.writes.get("lost") if r.writes else None
        rows.append(f"{r.drill:24} {r.verdict:7} {fmt(rto.get('vip')):>8} {fmt(rto.get('haproxy')):>11} "
                    f"{'-' if lost is None else lost:>5} {str(r.split_brain.get('double_primary', '-')):>11} "
                    f"{r.duration_s:>5g}s")
    return "\n".join(rows)


LIST = "--list"


# `invoke exercise --list`: the task has no --list option, so Invoke's parser gives the token to the
# positional `drill` it still waits for (unknown flags fill missing positional arguments first).
@task(
    positional=["drill"],
    help={
        "drill": "a drill name, 'all' (with --auto), or --list to list the drills, one line each",
        "auto": "inject the faults automatically (default: guided, waits for you at each step)",
        "scale": "multiply every time bound (slow providers, e.g. 2 for VMs); wins over $LAB_TIMEOUT_SCALE",
        "lang": "zh or en: the story, commands and verdicts in that language "
                "(default: $LAB_LANG, else the locale: LANG/LC_ALL zh* is zh)",
    },
)
def exercise(c, drill, auto=False, scale=None, lang=None):
    """Run a drill of the article on the live lab: guided (you inject the fault) or --auto; --list lists them."""
    from lab.exercises import DRILLS, DrillError, Lab, lookup, run_drill
    from lab.exercises.i18n import LangError, drill_text, resolve_lang, t
    from lab.exercises.timing import timeout_scale

    try:
        language = resolve_lang(lang)
    except LangError as e:
        raise Exit(f"exercise: {e}", code=2)
    if drill == LIST:
        width = max(len(n) for n in DRILLS)
        for n, cls in DRILLS.items():
            print(f"{n:{width}}  {drill_text(n, 'summary', language, cls.summary)}")
        return
    name = drill
    if name not in DRILLS and name != "all":
        raise Exit(f"exercise: {unknown('drill', name, [*DRILLS, 'all'], listing='invoke exercise --list')}",
                   code=2)
    try:
        classes = lookup([name])
        factor = timeout_scale((c.config.get("exercise") or {}).get("timeout_scale"), option=scale)
    except DrillError as e:
        raise Exit(f"exercise: {e}", code=2)
    if name == "all" and not auto:
        raise Exit("exercise: 'all' runs only with --auto (guided drills are one at a time)", code=2)
    try:
        topo = load()
        lab_state.require("provisioned", action="run a drill")
    except (TopologyError, lab_state.LabStateError) as e:
        raise Exit(f"exercise: {e}", code=2)

    poll.set_scale(factor)           # every later wait of this command (not only the drills' bounds)
    results_dir = lab_state.lab_dir() / "drills"
    started = time.monotonic()
    results = [run_drill(cls, Lab(topo, auto=auto, scale=factor, results_dir=results_dir, lang=language))
               for cls in classes]
    wall = round(time.monotonic() - started, 1)
    print("\n" + _table(results) + "\n\n" + t("wall_time", language, wall=wall, where=results_dir))
    if len(results) > 1:
        (results_dir / "summary.json").write_text(json.dumps(
            {"wall_time_s": wall, "scale": factor,
             "results": {r.drill: {"verdict": r.verdict, "reason": r.reason, "rto_s": r.rto_s,
                                   "lost": (r.writes or {}).get("lost"),
                                   "double_primary": r.split_brain.get("double_primary"),
                                   "duration_s": r.duration_s, "metrics": r.metrics} for r in results}},
            indent=2, default=str) + "\n")
    failed = [r.drill for r in results if not r.passed]
    if failed:
        raise Exit(f"exercise: failed: {', '.join(failed)}", code=1)


TASKS = [exercise]
