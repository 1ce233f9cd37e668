"""The drills' words in English and Chinese.

The English text of a drill lives in the drill itself (its ``summary``,
``story``, ...); every other language is data: ``<lang>.yml`` beside this file,
keyed by drill *name* (stable when modules move) and field, plus the ``ui``
strings the runner and the page generator print (``en.yml`` holds the English
ones). Each translated drill records a short fingerprint of the English it was
written from (``source:``), so a changed drill shows up as a stale translation
instead of silently drifting:

    python -m lab.exercises.translations stale          # which drills need their Chinese updated
    python -m lab.exercises.translations stamp NAME...  # after updating them: record the new English

What a drill says while it runs (expectations, part titles, faults, notes, measured labels) is
translated by the English template it was written with: lab/i18n/phrases.py, the ``said:``
and ``measures:`` sections of ``<lang>.yml``, and ``python -m lab.exercises.translations said`` for what
is missing.

Chinese follows the article's own terms (主库, 备库, 脑裂, 读写VIP, ...).

The language spoken is one value per command, not a parameter: the CLI sets it once
(``command_language``, from --lang, else $LAB_LANG, else the locale) and every ``t()``,
``drill_text()``, ``commands()`` and phrase translation reads it (``current()``). Code that must
speak another language for a while (a report drawn in the language of its run, the page generator
writing both languages) does so in a ``with language(lang):`` block, which holds for that thread
(or task) only. Threads started during a command speak the command's language.
"""
from __future__ import annotations

import contextvars
import hashlib
import os
import re
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import yaml

HERE = Path(__file__).parent
LANGS = ("en", "zh")
DEFAULT = "en"
# the translatable fields of a drill, as the Drill class names them
FIELDS = ("section", "summary", "story", "expected", "differs", "commands")
ENV = "LAB_LANG"


class LangError(ValueError):
    """An unknown language name; the message is one line."""


def check_lang(value: str, origin: str = "--lang") -> str:
    lang = value.strip().lower()
    if lang not in LANGS:
        raise LangError(f"{origin}: unknown language {value!r} (choose one of {', '.join(LANGS)})")
    return lang


def resolve_lang(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The language to speak: ``explicit`` (--lang), else $LAB_LANG, else the locale
    (the first of LC_ALL, LC_MESSAGES, LANG that is set, as POSIX reads them: zh* is Chinese),
    else English."""
    env = os.environ if environ is None else environ
    if explicit:
        return check_lang(explicit)
    if env.get(ENV):
        return check_lang(env[ENV], f"${ENV}")
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if env.get(var):
            return "zh" if env[var].lower().startswith("zh") else DEFAULT
    return DEFAULT


# A ``language()`` block of this thread or task. A new thread starts with an empty context (it does
# not inherit this), which is why the command's language is also kept process-wide below.
_block: contextvars.ContextVar[str] = contextvars.ContextVar("lab_lang")
# The command's language (command_language): what every thread speaks outside a language() block.
_command: str | None = None


def current() -> str:
    """The language being spoken: the innermost ``language()`` block of this thread, else the
    command's (:func:`command_language`), else $LAB_LANG / the locale (:func:`resolve_lang`)."""
    return _block.get(None) or _command or resolve_lang()


@contextmanager
def language(lang: str) -> Iterator[str]:
    """Speak ``lang`` in this thread (or task) until the block ends, e.g. a report drawn in the
    language of its run; the command's language is back afterwards."""
    token = _block.set(check_lang(lang, "language"))
    try:
        yield _block.get()
    finally:
        _block.reset(token)


@contextmanager
def command_language(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> Iterator[str]:
    """The command's language, chosen once (``explicit`` = its --lang, else $LAB_LANG, else the
    locale; a bad value is a one-line :class:`LangError` before anything is done) and spoken by every
    thread of the command until it ends."""
    global _command
    chosen = resolve_lang(explicit, environ)
    before, _command = _command, chosen
    token = _block.set(chosen)
    try:
        yield chosen
    finally:
        _block.reset(token)
        _command = before


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, Any]:
    """The whole catalog of ``lang`` ({} when the language has no file)."""
    path = HERE / f"{lang}.yml"
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def t(key: str, *, default: str | None = None, **fields: Any) -> str:
    """A UI string in the current language (English where that language lacks it), formatted with
    ``fields``. A key no catalog has is a bug (KeyError), unless the caller gives a ``default``."""
    text = (catalog(current()).get("ui") or {}).get(key)
    if text is None:
        text = (catalog(DEFAULT).get("ui") or {}).get(key, default)
    if text is None:
        raise KeyError(f"no text for {key!r} in {DEFAULT}.yml")
    return text.format(**fields) if fields else text


# The drills' own English, handed over by the registry when it loads (lab.exercises): the words
# stand below the drills and know none of them.
_english_source: Callable[[str, str], Any] | None = None


def use_english(source: Callable[[str, str], Any]) -> None:
    """Where a drill's English field is read (``source(name, field)``), for the fallbacks and fingerprints."""
    global _english_source
    _english_source = source


def _english(name: str, field: str) -> Any:
    if _english_source is None:
        raise LookupError("no drill registry has handed its English to lab.i18n (import lab.exercises first)")
    return _english_source(name, field)


# A line break between two Chinese characters (or full-width punctuation) is no space.
_CJK = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t]*\n[ \t]*(?=[{_CJK}])")


def unbreak_cjk(text: str) -> str:
    """``text`` with the line breaks between two Chinese characters removed: a reader (a browser, a
    joined line) would show each as a space in the middle of a word. Other breaks stay."""
    return _CJK_BREAK.sub("", text)


def drill_text(name: str, field: str, *, english: Any = None) -> Any:
    """One field of drill ``name`` in the current language; English (``english``, else the drill's
    own attribute) where there is no translation."""
    lang = current()
    if lang != DEFAULT:
        text = ((catalog(lang).get("drills") or {}).get(name) or {}).get(field)
        if text and field != "commands":
            return text.strip() if isinstance(text, str) else text
    return english if english is not None else _english(name, field)


# --- commands: "where: code   # comment" -------------------------------------------------

_COMMENT = re.compile(r"\s{2,}#\s")


def split_command(line: str) -> tuple[str, str, str]:
    """("on the leader", "sudo systemctl stop patroni", "comment or ''") from a drill's command
    line. The place ends at the first ": " outside parentheses (places may hold a colon in
    parentheses: "to undo (lowering: the primary first)")."""
    depth = 0
    where, rest = "", line
    for i, ch in enumerate(line):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == ":" and depth == 0 and line[i + 1:i + 2] == " ":
            where, rest = line[:i], line[i + 2:]
            break
    parts = _COMMENT.split(rest, maxsplit=1)
    code = parts[0].strip()
    comment = parts[1].strip() if len(parts) > 1 else ""
    return where.strip(), code, comment


def commands(name: str, english: list[str]) -> list[tuple[str, str, str]]:
    """The drill's commands as (place, code, comment) in the current language. A translation gives each
    command's place, optionally its comment (``note``), and, where the English "command" is
    a sentence rather than something to type, the sentence (``text``); the code itself is
    always the drill's own."""
    rows = [split_command(c) for c in english]
    lang = current()
    if lang == DEFAULT:
        return rows
    tr = ((catalog(lang).get("drills") or {}).get(name) or {}).get("commands") or []
    if len(tr) != len(rows):
        return rows
    out = []
    for (where, code, comment), item in zip(rows, tr):
        item = item or {}
        out.append((item.get("where", where), item.get("text", code), item.get("note", comment)))
    return out


# --- fingerprints of the English a translation was written from ---------------------------

def fingerprint(value: Any) -> str:
    text = "\n".join(value) if isinstance(value, list) else str(value or "")
    return hashlib.sha1(text.strip().encode()).hexdigest()[:8]


def english_fingerprints(name: str) -> dict[str, str]:
    return {f: fingerprint(_english(name, f)) for f in FIELDS}


def problems(lang: str, names: list[str]) -> dict[str, list[str]]:
    """What a language's catalog lacks, per drill: missing fields, stale fields (English changed
    since the translation was stamped), commands that do not line up with the drill's."""
    found: dict[str, list[str]] = {}
    drills = catalog(lang).get("drills") or {}
    for name in names:
        entry = drills.get(name)
        if not entry:
            found[name] = ["no translation at all"]
            continue
        issues = [f"missing {f}" for f in FIELDS if not entry.get(f)]
        english = _english(name, "commands")
        if entry.get("commands") and len(entry["commands"]) != len(english):
            issues.append(f"{len(entry['commands'])} commands translated, the drill has {len(english)}")
        stamped = entry.get("source") or {}
        now = english_fingerprints(name)
        stale = [f for f in FIELDS if stamped.get(f) != now[f]]
        if stale:
            issues.append("English changed since translated: " + ", ".join(stale))
        if issues:
            found[name] = issues
    for extra in sorted(set(drills) - set(names)):
        found[extra] = ["translated, but no drill has this name"]
    return found


def stamp(lang: str, names: list[str]) -> list[str]:
    """Record the current English fingerprints in ``<lang>.yml`` for ``names`` (after their text
    was brought up to date). Edits only each drill's ``source:`` line; returns the names stamped."""
    path = HERE / f"{lang}.yml"
    text = path.read_text(encoding="utf-8")
    done = []
    for name in names:
        line = "    source: {" + ", ".join(f"{f}: '{h}'" for f, h in english_fingerprints(name).items()) + "}"
        block = re.search(rf"(?m)^  {re.escape(name)}:\n", text)
        if not block:
            continue
        start = block.end()
        nxt = re.search(r"(?m)^  \S", text[start:])
        end = start + nxt.start() if nxt else len(text)
        body = text[start:end]
        if re.search(r"(?m)^    source: .*$", body):
            body = re.sub(r"(?m)^    source: .*$", line, body, count=1)
        else:
            body = line + "\n" + body
        text = text[:start] + body + text[end:]
        done.append(name)
    path.write_text(text, encoding="utf-8")
    catalog.cache_clear()
    return done
