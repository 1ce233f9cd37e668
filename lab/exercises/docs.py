"""docs/drills/: one page per drill, written from the drill itself so text and code never drift.

    python -m lab.exercises.docs      # rewrite docs/drills/<name>.md and the index block of README.md
"""
from __future__ import annotations

import sys
from pathlib import Path

from lab.exercises import DRILLS
from lab.exercises.model import Drill
from lab.topology import ROOT

DOCS = ROOT / "docs" / "drills"
BEGIN, END = "<!-- drills:begin (generated) -->", "<!-- drills:end -->"


def page(d: type[Drill]) -> str:
    judged = {False: "must not happen (the drill fails if the watch sees two primaries)",
              True: "expected: the article warns of it; the drill measures it",
              None: "measured, not judged (the fault itself makes a second primary)"}[d.split_brain]
    lines = [f"# {d.name}", "", f"Article {d.section}. {d.summary}", "", "## Story", "", d.story.strip(), "",
             "## Commands", "", "Run it: `invoke exercise " + d.name + "` (guided: it shows each command, "
             "waits for you to type it on the node, and watches) or `invoke exercise " + d.name + " --auto`.",
             "Open a shell on a node with `ssh -F .lab/ssh_config node2`.", ""]
    lines += [f"- {where}: `{cmd}`" for where, _, cmd in (c.partition(": ") for c in d.commands)] + ["", "## Expected result", "", d.expected.strip(), "",
              f"- Split brain: {judged}.",
              f"- Lost acknowledged writes: {'must be 0' if d.lossless else 'measured'}.",
              f"- Writer through the VIP and haproxy: {'yes (RTO per path)' if d.writes else 'no'}.", "",
              "## What differs from the article", "", d.differs.strip(), ""]
    return "\n".join(lines)


def index_block() -> str:
    rows = ["| drill | article | what it shows |", "| --- | --- | --- |"]
    rows += [f"| [{n}]({n}.md) | {d.section} | {d.summary} |" for n, d in DRILLS.items()]
    return "\n".join([BEGIN, *rows, END])


def readme(current: str) -> str:
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        return head + index_block() + rest.split(END, 1)[1]
    return current.rstrip() + "\n\n" + index_block() + "\n"


def expected_files() -> dict[Path, str]:
    out = {DOCS / f"{n}.md": page(d) for n, d in DRILLS.items()}
    readme_path = DOCS / "README.md"
    out[readme_path] = readme(readme_path.read_text() if readme_path.exists() else "# Drills\n")
    return out


def main() -> int:
    DOCS.mkdir(parents=True, exist_ok=True)
    for path, text in expected_files().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
