"""docs/drills/ and docs/zh/drills/: one page per drill and language, written from the drill
itself (English) and its translation (lab/i18n/<lang>.yml), so text and code never drift.

    python -m lab.exercises.pages      # rewrite every drill page and the index block of each README.md
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lab.exercises import DRILLS
from lab.i18n import DEFAULT, LANGS, commands, current, drill_text, language, t, unbreak_cjk
from labcore.topology import ROOT

DOCS = ROOT / "docs" / "drills"
BEGIN, END = "<!-- drills:begin (generated) -->", "<!-- drills:end -->"


def folder(lang: str) -> Path:
    return DOCS if lang == DEFAULT else ROOT / "docs" / lang / "drills"


def page(d: Any) -> str:
    """The page of drill class ``d`` in the current language."""
    def tr(key: str, **fields: Any) -> str:
        return t(key, **fields)

    def text(field: str) -> str:
        return unbreak_cjk(str(drill_text(d.name, field, english=getattr(d, field))).strip())

    judged = tr({False: "page_split_brain_false", True: "page_split_brain_true",
                 None: "page_split_brain_none"}[d.split_brain])
    lines = [f"# {d.name}", "", tr("page_other_lang", name=d.name), "",
             tr("page_article", section=text("section"), summary=text("summary")), "",
             f"## {tr('page_story')}", "", text("story"), "",
             f"## {tr('page_commands')}", "", tr("page_run", name=d.name), tr("page_shell"), ""]
    sep = ": " if current() == DEFAULT else "："
    for where, code, comment in commands(d.name, list(d.commands)):
        lines.append(f"- {where}{sep}`{code}" + (f"   # {comment}" if comment else "") + "`")
    lines += ["", f"## {tr('page_profile')}", "", *[f"- {tr(k)}" for k in profile_notes(d.commands)]]
    lines += ["", f"## {tr('page_expected')}", "", text("expected"), "",
              f"- {tr('page_split_brain', judged=judged)}",
              f"- {tr('page_lossless', rule=tr('page_lossless_true' if d.lossless else 'page_lossless_false'))}",
              f"- {tr('page_writes', rule=tr('page_writes_true' if d.writes else 'page_writes_false'))}", "",
              f"## {tr('page_differs')}", "", text("differs"), ""]
    return "\n".join(lines)


def profile_notes(commands: Any) -> list[str]:
    """Which of the trainee's commands change in the secure profile (docs/security.md), by what they run."""
    text = " ".join(str(c) for c in commands)
    keys = []
    if "psql -h" in text or "psql '" in text or "jdbc:" in text:
        keys.append("page_profile_sql")
    if "etcdctl" in text:
        keys.append("page_profile_etcd")
    if "curl" in text and any(m in text for m in ("-X POST", "-XPOST", "-X PATCH", "-XPATCH")):
        keys.append("page_profile_rest")
    if "patronictl" in text:
        keys.append("page_profile_ctl")
    return keys or ["page_profile_same"]


def index_block() -> str:
    rows = [t("index_head"), "| --- | --- | --- |"]
    rows += [f"| [{n}]({n}.md) | {drill_text(n, 'section', english=d.section)} | "
             f"{drill_text(n, 'summary', english=d.summary)} |" for n, d in DRILLS.items()]
    return "\n".join([BEGIN, *rows, END])


def readme(text: str) -> str:
    """``text`` (a README.md) with its index block in the current language."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + index_block() + rest.split(END, 1)[1]
    return text.rstrip() + "\n\n" + index_block() + "\n"


def expected_files() -> dict[Path, str]:
    """Every generated file with the text it must have, in every language."""
    out: dict[Path, str] = {}
    for lang in LANGS:
        where = folder(lang)
        readme_path = where / "README.md"
        with language(lang):           # each language's pages, whatever the command speaks
            out.update({where / f"{n}.md": page(d) for n, d in DRILLS.items()})
            out[readme_path] = readme(readme_path.read_text(encoding="utf-8") if readme_path.exists()
                                      else "# Drills\n")
    return out


def main() -> int:
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
