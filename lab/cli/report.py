"""`invoke report [RUN]`: the report of a drill run, for a projector and for handing out."""
from __future__ import annotations

from invoke import Exit, task


# ``--run`` is an option, not a positional argument: Invoke requires every positional argument,
# and the usual call names no run at all.
@task(help={"run": "a run folder name (or its first characters, or a path); default: the latest run"})
def report(c, run=""):
    """Write the HTML report (self-contained) and a Markdown summary of a drill run."""
    from lab.report import render, runs

    try:
        folder = runs.find(run or None)
        loaded = runs.load(folder)
    except runs.RunError as e:
        raise Exit(f"report: {e}", code=2) from None
    written = render.write(loaded)
    tally = ", ".join(f"{d.name} {d.verdict}" for d in loaded.drills) or "no drill"
    print(f"report of {loaded.name} ({tally}):\n  {written.html}\n  {written.markdown}")


@task(iterable=["run"],
      help={"run": "a run folder (name, its first characters, or a path); repeat for several runs, the last "
                   "one naming a drill wins (a full run, then a re-run of a few drills)",
            "rto": "instead: a summary of `invoke exercise D --auto --repeat N` ($LAB_DIR/repeats/<file>.json) "
                   "for the measured table of docs/rto.md",
            "matrix": "instead: the version table of docs/drills/versions.md, one column per Patroni/PostgreSQL "
                      "pair the named runs ran on (scripts/version-matrix.sh names them)"})
def docs_tables(c, run=None, rto="", matrix=False):
    """Write the measured table of every drill into docs/drills/README.md and docs/zh/drills/README.md,
    from the result files of the named runs (between its markers; the rest of the page is kept)."""
    from lab.exercises import DRILLS
    from lab.exercises.pages import folder
    from lab.i18n import LANGS
    from lab.report import runs, tables

    if rto:
        import json
        from pathlib import Path

        from labcore import state as lab_state
        from labcore.topology import ROOT

        path = Path(rto) if Path(rto).exists() else lab_state.lab_dir() / "repeats" / rto
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise Exit(f"docs-tables: --rto {rto}: not a readable --repeat summary ({e})", code=2) from None
        changed = tables.write_rto(summary, path.name, ROOT / "docs")
        print(f"RTO table from {path.name}: " + (", ".join(str(p) for p in changed) if changed else "unchanged"))
        return
    if not run:
        raise Exit("docs-tables: name at least one run: --run RUN (`invoke exercise --runs` lists them)", code=2)
    try:
        loaded = [runs.load(runs.find(r)) for r in run]    # every run read before anything is written
    except runs.RunError as e:
        raise Exit(f"docs-tables: {e}", code=2) from None
    if matrix:
        changed = tables.write_matrix(loaded, list(DRILLS))
        columns = sorted({tables.pair_of(r)[2] for r in loaded})
        print(f"version table from {len(loaded)} runs ({'; '.join(columns)}): "
              + (", ".join(str(p) for p in changed) if changed else "unchanged"))
        return
    changed = tables.write(loaded, list(DRILLS), {lang: folder(lang) for lang in LANGS})
    absent = [r.name for r in tables.rows(loaded, list(DRILLS)) if r.drill is None]
    print(f"measured table from {', '.join(r.name for r in loaded)}: "
          + (", ".join(str(p) for p in changed) if changed else "unchanged")
          + (f"; not in these runs: {', '.join(absent)}" if absent else ""))


TASKS = [report, docs_tables]
