"""`invoke exercise`: the drills of article §5-§8 against the live lab; every run keeps its evidence in
its own folder ($LAB_DIR/runs/<UTC>-<drill|all>/, lab.exercises.observe.evidence); `--runs` lists them."""
from __future__ import annotations

import json
import time
from typing import Any

from invoke import Exit, task

from labcore import state as lab_state
from labcore.topology import TopologyError, load
from labcore import poll
from labcore.suggest import unknown
from lab.cli.positional import ModeTask


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
        w = r.watch or {}
        watch = f"{_fmt(w.get('samples_per_s'))}/s gap {_fmt(w.get('longest_gap_s'))}" if w else "-"
        rto = r.rto_s or {}
        cells = " ".join(f"{('never' if p in rto and rto[p] is None else _fmt(rto.get(p))):>15}" for p in paths)
        writes = r.writes or {}
        rows.append(f"{r.drill:24} {r.verdict:14} {cells} {_fmt(writes.get('lost')):>5} "
                    f"{_fmt(writes.get('after_fork')):>10} {_fmt(w.get('max_primaries_at_once')):>9} "
                    f"{watch:>14} {r.duration_s:>6g}s")
    return "\n".join(rows)


def _runs_table() -> str:
    """`invoke exercise --runs`: every run folder with the tally its run.json keeps."""
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


def command_scale(c: Any, option: Any) -> float:
    """The command's time multiplier, chosen once: --scale, else $LAB_TIMEOUT_SCALE, else invoke.yaml's
    exercise.timeout_scale, else 1. A bad value is a one-line DrillError. Not set yet: the caller sets
    it (labcore.poll.set_scale) once the input is known to be good."""
    from lab.exercises.api.timing import timeout_scale
    return timeout_scale((c.config.get("exercise") or {}).get("timeout_scale"), option=option)


LIST = "--list"
RUNS = "--runs"


# `invoke exercise --list` / `--runs`: the task has no such options, so Invoke's parser gives the token to
# the positional `drill` it still waits for (unknown flags fill missing positional arguments first).
# The exam's options are real options; given one, no drill is needed (lab.cli.positional.ModeTask).
@task(
    klass=ModeTask,
    positional=["drill"],
    help={
        "drill": "a drill name, several joined by commas or 'all' (with --auto), --list to list the drills, one line each, or --runs to "
                 "list the runs kept in $LAB_DIR/runs with their tally of verdicts",
        "auto": "inject the faults automatically (default: guided, waits for you at each step)",
        "scale": "multiply every time bound (slow providers, e.g. 2 for VMs); wins over $LAB_TIMEOUT_SCALE",
        "lang": "zh or en: the story, commands and verdicts in that language "
                "(default: $LAB_LANG, else the locale: LANG/LC_ALL zh* is zh)",
        "exam": "blind-fault exam: inject one drill's fault at random without naming it; the writer and the "
                "watch keep running until --done or --give-up",
        "from": "--exam: draw the fault from these drills only (comma-separated)",
        "seed": "--exam: the same seed draws the same fault (a whole room at once)",
        "answer": "name the exam's fault (a drill name); right or wrong, every answer is kept",
        "done": "end the exam once the lab is healthy again (says what is still off otherwise)",
        "hint": "one more line of the fault's story (hints are counted)",
        "give_up": "end the exam: show the fault and heal the lab",
    },
)
def exercise(c, drill, auto=False, scale=None, lang=None, exam=False, from_=None, seed=None, answer=None,
             done=False, hint=False, give_up=False):
    """Run a drill of the article on the live lab: guided (you inject the fault) or --auto; --list lists them,
    --runs lists past runs; --exam starts a blind-fault exam (--answer, --hint, --done, --give-up).
    Exits 1 when a drill failed or could not observe (fail, error); pass, differs and not-applicable exit 0.
    Every run keeps its evidence in $LAB_DIR/runs/<UTC>-<drill|all|N-drills|exam>/."""
    from lab.exercises import DRILLS, DrillError, Lab, lookup, run_drill
    from lab.i18n import current, drill_text, t

    # --lang: the command's language, set once by lab.cli.conventions before this runs
    modes = [m for m, on in (("--exam", exam), ("--answer", answer is not None), ("--done", done),
                             ("--hint", hint), ("--give-up", give_up)) if on]
    if modes or from_ is not None or seed is not None:
        _exam_command(c, drill, modes, from_, seed, answer, scale)
        return
    if drill == RUNS:
        print(_runs_table())
        return
    if drill == LIST:
        width = max(len(n) for n in DRILLS)
        for n, cls in DRILLS.items():
            print(f"{n:{width}}  {drill_text(n, 'summary', english=cls.summary)}")
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
    from lab.exercises.observe.verdict import exit_code

    command = " ".join(["invoke exercise", name] + (["--auto"] if auto else [])
                       + ([f"--scale {scale}"] if scale is not None else []))
    kind = name if len(names) == 1 else f"{len(names)}-drills"
    run = RunRecorder(kind, command=command, lab=topo.name, drills=[cls.name for cls in classes], scale=factor,
                      lang=current(), commit=git_commit())
    results_dir = lab_state.lab_dir() / "drills"
    started = time.monotonic()
    results = []
    for cls in classes:
        rec = run.drill(cls.name)
        try:
            results.append(run_drill(cls, Lab(topo, auto=auto, results_dir=results_dir, recorder=rec)))
        finally:
            rec.close()
        run.record_verdict(cls.name, results[-1].verdict)
    tally = run.finish()
    wall = round(time.monotonic() - started, 1)
    print("\n" + _table(results) + "\n\n" + " ".join(f"{k} {v}" for k, v in tally.items())
          + "\n" + t("wall_time", wall=wall, where=run.path))
    bad = [f"{r.drill} ({r.verdict})" for r in results if r.verdict in ("fail", "error")]
    if exit_code(tally):
        raise Exit(f"exercise: {', '.join(bad)}", code=1)


def _exam_command(c, drill: str, modes: list[str], from_, seed, answer, scale) -> None:
    """The exam's options: one mode at a time, --from/--seed only with --exam; bad input is one line."""
    from lab.exam import commands
    from lab.exam.pool import PoolError
    from lab.exam.record import ExamError
    from lab.exercises import DrillError, Lab

    if drill:
        raise Exit(f"exercise: {drill!r} with {' '.join(modes) or '--from/--seed'}: the exam's options take no "
                   "drill name (`--answer <drill>` names one)", code=2)
    if len(modes) != 1:
        raise Exit("exercise: " + (f"{' and '.join(modes)}: one exam option at a time" if modes else
                                   "--from and --seed go with --exam"), code=2)
    mode = modes[0]
    if mode != "--exam" and (from_ is not None or seed is not None):
        raise Exit(f"exercise: --from and --seed go with --exam, not {mode}", code=2)
    try:
        factor = command_scale(c, scale)
        if mode == "--answer":
            print(commands.answer(answer))
            return
        if mode == "--hint":
            print(commands.hint())
            return
        if mode == "--exam":          # the options first: bad input is refused before anything is asked
            from lab.exam import pool
            from lab.exercises import DRILLS
            pool.parse_from(from_, list(DRILLS))
            pool.parse_seed(seed)
        topo = load()
        lab_state.require("provisioned", action="run an exam")
        poll.set_scale(factor)
        background = commands.ProcessBackground()
        if mode == "--exam":
            print(commands.start(topo, background, from_=from_, seed=seed))
            return
        lab = Lab(topo, auto=True)
        if mode == "--done":
            ok, text = commands.done(lab, background)
            print(text)
            if not ok:
                raise Exit("exercise --done: the lab is not healthy yet; the exam goes on", code=1)
            return
        print(commands.give_up(lab, background))
    except (ExamError, PoolError, DrillError, TopologyError, lab_state.LabStateError) as e:
        raise Exit(f"exercise: {e}", code=2) from None


TASKS = [exercise]

exercise.modes = ("exam", "answer", "done", "hint", "give_up", "from_", "seed")
