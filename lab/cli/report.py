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


TASKS = [report]
