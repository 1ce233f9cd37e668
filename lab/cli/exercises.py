"""`invoke exercise <drill>` (``exercise.run``), ``exercise.list``, ``exercise.runs``: the drills of
article §5-§8 against the live lab; every run keeps its evidence in its own folder
($LAB_DIR/runs/<UTC>-<drill|all>/, lab.exercises.observe.evidence); ``exercise.runs`` lists them.

The language (--lang) is the command's, set once by lab.cli.conventions before the task runs; the
time multiplier (--scale) is chosen here once and set in labcore.poll, which every wait reads."""
from __future__ import annotations

import json
import time
from typing import Any

from invoke import Exit, task

from labcore import state as lab_state
from labcore.topology import TopologyError, load
from labcore import poll
from labcore.suggest import unknown


def _fmt(v) -> str:
    return "-" if v is None else f"{v:g}"


def _table(results) -> str:
    """One line per drill: verdict, RTO per path (s), writes lost and acknowledged after the fork, the
    most primaries the watch saw at once, how well it saw (samples/s, longest gap)."""
    paths = sorted({p for r in results for p in (r.rto_s or {})}, key=lambda p: (p != "vip", p != "haproxy", p))
    head = (f"{'drill':24} {'verdict':14} " + " ".join(f"{'RTO ' + p:>15}" for p in paths)
            + f" {'lost':>5} {'after fork':>10} {'primaries':>9} {'watch':>14} {'time':>7}")
    rows = [head]
    for r in results:
        w = r.watch
        watch = f"{_fmt(w.samples_per_s)}/s gap {_fmt(w.longest_gap_s)}" if w else "-"
        rto = r.rto_s or {}
        cells = " ".join(f"{('never' if p in rto and rto[p] is None else _fmt(rto.get(p))):>15}" for p in paths)
        rows.append(f"{r.drill:24} {r.verdict:14} {cells} {_fmt(r.writes.lost if r.writes else None):>5} "
                    f"{_fmt(r.writes.after_fork if r.writes else None):>10} "
                    f"{_fmt(w.max_primaries_at_once if w else None):>9} {watch:>14} {r.duration_s:>6g}s")
    return "\n".join(rows)


def _runs_table() -> str:
    """`invoke exercise.runs`: every run folder with the tally its run.json keeps."""
    from lab.exam import score as exam_score
    from lab.exercises.observe.verdict import VERDICTS, tally
    from lab.report import runs

    folders = runs.list_runs()
    if not folders:
        return f"no runs yet in {runs.runs_dir()} (`invoke exercise <drill> --auto` makes one)"
    width = max(len(p.name) for p in folders)
    lines = [f"{'run':{width}}  " + " ".join(f"{v:>{max(len(v), 4)}}" for v in VERDICTS) + "  command"]
    for p in folders:
        try:
            meta = json.loads((p / "run.json").read_text())
        except (OSError, ValueError):
            lines.append(f"{p.name:{width}}  (run.json unreadable)")
            continue
        t = {**tally([]), **(meta.get("tally") or {})}
        lines.append(f"{p.name:{width}}  " + " ".join(f"{t[v]:>{max(len(v), 4)}}" for v in VERDICTS)
                     + f"  {meta.get('command', '')}" + ("" if meta.get("finished") else "  (unfinished)")
                     + (f"  [{exam_score.short(meta['score'])}]" if meta.get("score") else ""))
    return "\n".join(lines)


LANG_HELP = ("zh or en: the story, commands and verdicts in that language "
             "(default: $LAB_LANG, else the locale: LANG/LC_ALL zh* is zh)")
SCALE_HELP = "multiply every time bound (slow providers, e.g. 2 for VMs); wins over $LAB_TIMEOUT_SCALE"


def command_scale(c: Any, option: Any) -> float:
    """The command's time multiplier, chosen once: --scale, else $LAB_TIMEOUT_SCALE, else invoke.yaml's
    exercise.timeout_scale, else 1. A bad value is a one-line DrillError. Not set yet: the caller sets
    it (labcore.poll.set_scale) once the input is known to be good."""
    from lab.exercises.api.timing import timeout_scale
    return timeout_scale((c.config.get("exercise") or {}).get("timeout_scale"), option=option)


# What `invoke exercise --list` and the like used to be: the options of one many-mode task, now tasks
# of their own. Invoke hands an unknown flag to a positional argument it still waits for, so
# `invoke exercise --list` arrives here as drill="--list" and goes on to `exercise.list`.
# (`--answer <drill>` and `--exam --from/--seed` take values, which Invoke cannot hand on.)
OLD_SPELLINGS = {"--list": "exercise.list", "--runs": "exercise.runs", "--exam": "exam.start",
                 "--hint": "exam.hint", "--done": "exam.done", "--give-up": "exam.give-up",
                 "--answer": "exam.answer <drill>"}


@task(
    positional=["drill"],
    help={
        "drill": "a drill name, several joined by commas or 'all' (with --auto); `invoke exercise.list` lists them",
        "auto": "inject the faults automatically (default: guided, waits for you at each step)",
        "scale": SCALE_HELP,
        "lang": LANG_HELP,
        "repeat": "run the drill N times (with --auto), each a run of its own with the gate between; then the "
                  "p50/p95/max of each RTO and failover phase, and the lost writes summed",
    },
)
def run(c, drill, auto=False, scale=None, lang=None, repeat=1):
    """Run a drill of the article on the live lab (`invoke exercise <drill>`): guided (you inject the
    fault) or --auto. Exits 1 when a drill failed or could not observe (fail, error); pass, differs and
    not-applicable exit 0. Every run keeps its evidence in $LAB_DIR/runs/<UTC>-<drill|all|N-drills>/."""
    from lab.exercises import DRILLS, DrillError, Lab, lookup, run_drill
    from lab.exercises.kit.probe import Probe
    from lab.exercises.kit.shell import SshShell
    from lab.i18n import current, t

    if drill in OLD_SPELLINGS:
        _old_spelling(c, drill, scale)
        return
    name = drill
    # a,b,c: a few drills in one run (one report, one tally), e.g. the morning's three for a workshop
    names = [n.strip() for n in name.split(",")]
    for n in names:
        if n not in DRILLS and not (n == "all" and len(names) == 1):
            raise Exit(f"exercise: {unknown('drill', n, [*DRILLS, 'all'], listing='invoke exercise --list')}",
                       code=2)
    if len(set(names)) != len(names):
        raise Exit(f"exercise: drill named twice in {name!r}", code=2)
    try:
        classes = lookup(names)
        factor = command_scale(c, scale)
    except DrillError as e:
        raise Exit(f"exercise: {e}", code=2)
    try:
        repeat = int(repeat)
    except (TypeError, ValueError):
        raise Exit(f"exercise: --repeat {repeat!r}: a whole number of runs", code=2) from None
    if repeat < 1 or (repeat > 1 and (len(classes) > 1 or not auto)):
        raise Exit("exercise: --repeat N takes one drill, N >= 1, with --auto", code=2)
    if len(classes) > 1 and not auto:
        raise Exit(f"exercise: {'all' if name == 'all' else 'several drills'} run only with --auto "
                   "(guided drills are one at a time)", code=2)
    try:
        topo = load()
        lab_state.require("provisioned", action="run a drill")
    except (TopologyError, lab_state.LabStateError) as e:
        raise Exit(f"exercise: {e}", code=2)

    poll.set_scale(factor)           # every later wait of this command (not only the drills' bounds)
    from lab.exercises.observe.evidence import RunRecorder, git_commit
    from lab.exercises.observe.verdict import Verdict, exit_code

    command = " ".join(["invoke exercise", name] + (["--auto"] if auto else [])
                       + ([f"--scale {scale}"] if scale is not None else []))
    kind = name if len(names) == 1 else f"{len(names)}-drills"
    results_dir = lab_state.lab_dir() / "drills"
    running = Probe(topo, SshShell(topo)).running_versions()      # what the nodes run, for the run's record
    every: list = []
    failed = False
    for i in range(repeat):
        if repeat > 1:
            print(f"\n=== {name}: run {i + 1} of {repeat}")
        recorder = RunRecorder(kind, command=command + (f" --repeat {repeat}" if repeat > 1 else ""), lab=topo.name,
                               drills=[cls.name for cls in classes], scale=factor, lang=current(), commit=git_commit(),
                               versions=running)
        started = time.monotonic()
        results = []
        for cls in classes:
            rec = recorder.drill(cls.name)
            try:
                results.append(run_drill(cls, Lab(topo, auto=auto, results_dir=results_dir, recorder=rec)))
            finally:
                rec.close()
            recorder.record_verdict(cls.name, results[-1].verdict)
        tally = recorder.finish()
        wall = round(time.monotonic() - started, 1)
        print("\n" + _table(results) + "\n\n" + " ".join(f"{k} {v}" for k, v in tally.items())
              + "\n" + t("wall_time", wall=wall, where=recorder.path))
        every += results
        failed = failed or bool(exit_code(tally))
    if repeat > 1:
        _repeat_summary(every, name, repeat)
    bad = [f"{r.drill} ({r.verdict})" for r in every if r.verdict in (Verdict.FAIL, Verdict.ERROR)]
    if failed:
        raise Exit(f"exercise: {', '.join(bad)}", code=1)


def _repeat_summary(results: list, name: str, repeat: int) -> None:
    """The spread of N runs of one drill, printed and kept in $LAB_DIR/repeats/ (docs tables read it)."""
    import json
    from datetime import datetime, timezone

    from lab.exercises.observe import repeats

    summary = repeats.summarize([r.to_json() for r in results])
    print("\n" + "\n".join(repeats.lines(summary)))
    folder = lab_state.lab_dir() / "repeats"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{stamp}-{name}-x{repeat}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"summary kept in {path}")


def _old_spelling(c: Any, option: str, scale: Any) -> None:
    """`invoke exercise --list` and the other options that became tasks: run the task they became
    (with its defaults), or say in one line how it is typed now when it needs a value."""
    if option == "--list":
        list_(c)
    elif option == "--runs":
        runs(c)
    else:
        from lab.cli import exam
        if option == "--answer":
            raise Exit("exercise: --answer is `invoke exam.answer <drill>` now", code=2)
        if option == "--exam":
            exam.start(c, scale=scale)
            return
        {"--hint": exam.hint, "--done": exam.done, "--give-up": exam.give_up}[option](c)


@task(name="list", help={"lang": LANG_HELP})
def list_(c, lang=None):
    """List the drills, one line each: name and what the article claims (`invoke exercise --list`)."""
    from lab.exercises import DRILLS
    from lab.i18n import drill_text

    width = max(len(n) for n in DRILLS)
    for n, cls in DRILLS.items():
        print(f"{n:{width}}  {drill_text(n, 'summary', english=cls.summary)}")


@task
def runs(c):
    """List the runs kept in $LAB_DIR/runs with their tally of verdicts (`invoke exercise --runs`)."""
    print(_runs_table())


TASKS = [run, list_, runs]
DEFAULT = run          # `invoke exercise <drill>` is `invoke exercise.run <drill>`
