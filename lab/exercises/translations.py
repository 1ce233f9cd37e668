"""python -m lab.exercises.translations stale | stamp NAME... | said [--lang LANG]: keep translations current.

stale: drills whose translation is missing or older than their English; stamp: record the English a
translation was written from; said: the phrases drills show while they run that LANG lacks (as YAML
lines to fill in under ``said:``/``measures:``) and the entries no code uses any more."""
from __future__ import annotations

import sys

import yaml

from lab.exercises import DRILLS
from lab.i18n import LANGS, DEFAULT, problems, stamp


def main(argv: list[str]) -> int:
    lang = "zh"
    if "--lang" in argv:
        i = argv.index("--lang")
        lang = argv[i + 1]
        del argv[i:i + 2]
    if lang == DEFAULT or lang not in LANGS:
        print(f"i18n: --lang must be one of {', '.join(l for l in LANGS if l != DEFAULT)}", file=sys.stderr)
        return 2
    if argv[:1] == ["stale"]:
        found = problems(lang, list(DRILLS))
        for name, issues in found.items():
            print(f"{name}: {'; '.join(issues)}")
        return 1 if found else 0
    if argv[:1] == ["said"]:
        from lab.i18n import phrases
        found = phrases.templates()
        lacking = phrases.missing(lang, found)
        for section in phrases.SECTIONS:
            todo = [p for p in lacking if p.section == section]
            if todo:
                print(f"{section}:")
                for p in todo:
                    print(f"  {yaml.safe_dump(p.template, allow_unicode=True, width=10**6).strip().removesuffix('...').strip()}:   # {p.where}")
        for section, key in phrases.unused(lang, found):
            print(f"# unused in {lang}.yml {section}: {key!r}")
        return 1 if lacking else 0
    if argv[:1] == ["stamp"] and len(argv) > 1:
        names = list(DRILLS) if argv[1:] == ["--all"] else argv[1:]
        unknown = [n for n in names if n not in DRILLS]
        if unknown:
            print(f"i18n: unknown drill {', '.join(unknown)}", file=sys.stderr)
            return 2
        for name in stamp(lang, names):
            print(f"stamped {name}")
        return 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
