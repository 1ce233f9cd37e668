"""What a drill says while it runs, in the trainee's language: part titles, expectations, fault and
operation descriptions, notes, the reasons shown beside commands, and the labels of measured values.

The English stays in the drill code (it is also what the result files record: check descriptions,
notes and metric keys are data and stay English). A translation is data in ``<lang>.yml``, keyed
by the English *template*, as gettext keys by the English message: the English text with each
value the code fills in written ``{0}``, ``{1}``, ... in the order the code writes them::

    said:
      "{0} stays the leader and writable": "{0} 仍是 leader，且可写"
    measures:
      new_leader_after_fault_s: 故障后出现新的可写主库用时

At run time the text shown is matched against the templates (the longest literal text first); the
values are carried over, and translated in turn when they are phrases themselves (a ``how=`` given
to a step). A name then a phrase ("pg2 rejoins as a replica", a step's ``f"{member} {how}"``) is
the name and the phrase's translation. Text with no template is shown in English.

Which templates the code uses is read from the source (``templates()``: the arguments of
``lab.expect``/``hold``/``step``/``note``/``command``/``measure``..., ``how=``/``why=``/``what=``,
the ``what`` of faults and operations), so a test names every English phrase that has no
translation, with its file and line, and every translation no code uses any more:

    python -m lab.exercises.translations said      # the phrases zh.yml lacks, as YAML lines to fill in
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lab.i18n import DEFAULT, catalog, current

PLACEHOLDER = re.compile(r"\{(\d+)\}")
SUBJECT = re.compile(r"[A-Za-z][\w.-]*\d")          # pg2, node3: a member or node name heads the phrase
SECTIONS = ("said", "measures")

# --- translating what is shown ------------------------------------------------------------------


@lru_cache(maxsize=None)
def _compiled(lang: str, section: str) -> list[tuple[re.Pattern, str]]:
    table = catalog(lang).get(section) or {}
    out = []
    for english, translated in table.items():
        if not translated or not PLACEHOLDER.sub("", str(english)).strip():
            continue
        regex, seen = "", set()
        for i, part in enumerate(PLACEHOLDER.split(str(english))):
            if i % 2 == 0:
                regex += re.escape(part)
            elif part in seen:
                regex += f"(?P=p{part})"
            else:
                seen.add(part)
                regex += f"(?P<p{part}>.+?)"
        literal = len(PLACEHOLDER.sub("", str(english)))
        out.append((literal, re.compile(regex + r"\Z", re.S), str(translated)))
    out.sort(key=lambda e: -e[0])
    return [(r, t) for _, r, t in out]


ENGLISH_LETTER = re.compile(r"[A-Za-z]")
CLAUSE = re.compile(r": |; ")


def _translate(text: str, lang: str, section: str) -> str | None:
    best = _best(text, lang, section)
    return best[0] if best else None


@lru_cache(maxsize=8192)
def _best(text: str, lang: str, section: str) -> tuple[str, int] | None:
    """``text`` in ``lang`` with its penalty, or None when nothing of it has a translation.
    Candidates: every template that matches (its values translated in turn where they are phrases),
    and text joined from phrases, translated part by part ("a: b", "a; b", "pg2 <phrase>"). The one
    that leaves the least English wins; on a tie, the one whose values span fewest clause breaks
    (a value rarely holds "a: b"), then the template with the most literal text. Recursion always
    works on shorter text, so it ends."""
    options: list[tuple[str, int]] = []
    for regex, translated in _compiled(lang, section):
        m = regex.match(text)
        if not m:
            continue
        values, penalty = {}, 0
        for k, v in m.groupdict().items():
            penalty += len(CLAUSE.findall(v))
            sub = _best(v, lang, "said") if " " in v and len(v) < len(text) else None
            if sub is not None:
                penalty += sub[1]
            values[k[1:]] = sub[0] if sub is not None else v
        options.append((PLACEHOLDER.sub(lambda p: values.get(p.group(1), p.group(0)), translated), penalty))
    if section == "said":
        options += _joined(text, lang)
    if not options:
        return None
    return min(options, key=lambda o: (len(ENGLISH_LETTER.findall(o[0])), o[1]))


def _joined(text: str, lang: str) -> list[tuple[str, int]]:
    out = []
    for sep, zh_sep in (("; ", "；"), (": ", "：")):
        at = text.find(sep)
        while at >= 0:
            left, right = text[:at], text[at + len(sep):]
            tl, tr = _best(left, lang, "said"), _best(right, lang, "said")
            if tl is not None or tr is not None:
                out.append(((tl[0] if tl else left) + zh_sep + (tr[0] if tr else right),
                            (tl[1] if tl else 0) + (tr[1] if tr else 0)))
            at = text.find(sep, at + 1)
    head, sep, rest = text.partition(" ")
    if sep and SUBJECT.fullmatch(head):          # steps.rejoined: f"{member} {how}"
        tail = _best(rest, lang, "said")
        if tail is not None:
            out.append((f"{head} {tail[0]}", tail[1]))
    return out


def phrase(text: str) -> str:
    """Mark text built away from where it is shown (a reason joined from parts) as a phrase to
    translate; returns it unchanged (the reader of the code finds the template here)."""
    return text


def said(text: str) -> str:
    """``text`` (English, as the drill wrote it) in the current language; unchanged where no
    template fits."""
    lang = current()
    if lang == DEFAULT or not text:
        return text
    return _translate(text, lang, "said") or text


def measure_label(key: str) -> str:
    """A measured value's label: in English its key; otherwise the translation with the key after it
    (the key is what the result file holds)."""
    lang = current()
    if lang == DEFAULT:
        return key
    label = _translate(key, lang, "measures")
    return f"{label}（{key}）" if label else key


def clear() -> None:
    _compiled.cache_clear()
    _best.cache_clear()


# --- which phrases the code says ---------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1] / "exercises"   # read as text, never imported
SOURCES = ("drills/*.py", "api/steps/*.py", "kit/actions.py", "kit/machines.py", "run/runner.py", "api/context.py",
           "observe/verdict.py", "run/recovery.py")
# method -> (positional index, keyword) of the text it shows, per section
METHODS: dict[str, tuple[str, list[tuple[int, str]]]] = {
    "said": ("said", [(0, "text")]),          # a drill that prints by itself: lab.say(lab.said(...))
    "phrase": ("said", [(0, "text")]),        # text shown elsewhere (a reason joined from parts)
    "expect": ("said", [(1, "description")]),
    "hold": ("said", [(1, "description")]),
    "expect_outcomes": ("said", [(1, "description")]),
    "step": ("said", [(0, "title"), (1, "text")]),
    "note": ("said", [(0, "text")]),
    "command": ("said", [(2, "why")]),
    "on_control_host": ("said", [(2, "why")]),
    "measure": ("measures", [(0, "key")]),
    "within_bound": ("measures", [(0, "key")]),
    # actions: the one-line description of a fault or operation
    "Fault": ("said", [(1, "what")]),
    "Operation": ("said", [(1, "what")]),
    "Action": ("said", [(1, "what")]),
    "stop_service": ("said", [(3, "what")]),
    "edit_config_pg": ("said", [(2, "what")]),
    "new_primary_within": ("measures", [(5, "key")]),
    # why a drill ended as it did (the verdict line shows the reason)
    "ExpectationFailed": ("said", [(0, "message")]),
    "NotApplicable": ("said", [(0, "message")]),
    "fail": ("said", [(0, "reason")]),
    "error": ("said", [(0, "reason")]),
    "differs": ("said", [(0, "reason")]),
    "not_applicable": ("said", [(0, "reason")]),
    "conclude": ("said", [(1, "reason")]),
}
KEYWORDS = {"how": "said", "why": "said", "what": "said", "measure": "measures", "key": "measures"}


@dataclass(frozen=True)
class Phrase:
    section: str
    template: str
    where: str                     # file:line


def _templates(node: ast.AST) -> list[str]:
    """The English templates an expression can produce ({0}, {1}... for the values it fills in);
    [] for text computed elsewhere (a variable: its own constant is found where it is written)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        out, n = "", 0
        for v in node.values:
            if isinstance(v, ast.Constant):
                out += str(v.value)
            else:
                out += f"{{{n}}}"
                n += 1
        return [out]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _templates(node.left), _templates(node.right)
        if not left and not right:
            return []
        left, right = left or ["{0}"], right or ["{0}"]
        return [_join(a, b) for a in left for b in right]
    if isinstance(node, ast.IfExp):
        return _templates(node.body) + _templates(node.orelse)
    return []


def _fallbacks(node: ast.AST) -> list[str]:
    """Text constants a formatted value falls back to (``x or 'none'``, ``'a' if c else 'b'``)."""
    out: list[str] = []
    for v in node.values if isinstance(node, ast.JoinedStr) else []:
        if isinstance(v, ast.FormattedValue):
            inner = v.value
            options = inner.values if isinstance(inner, ast.BoolOp) else \
                [inner.body, inner.orelse] if isinstance(inner, ast.IfExp) else []
            out += [o.value for o in options if isinstance(o, ast.Constant) and isinstance(o.value, str)]
    return out


def _join(a: str, b: str) -> str:
    """Two templates as one: ``b``'s placeholders renumbered after ``a``'s."""
    shift = len(set(PLACEHOLDER.findall(a)))
    return a + PLACEHOLDER.sub(lambda m: f"{{{int(m.group(1)) + shift}}}", b)


def _is_phrase(template: str) -> bool:
    """Words to translate, not only values ("{0} {1}") or punctuation."""
    return bool(re.search(r"[A-Za-z]{2,}", PLACEHOLDER.sub("", template)))


def _name(func: ast.AST) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def templates(root: Path = ROOT) -> list[Phrase]:
    """Every phrase the drills, their steps and actions show, with where the code writes it."""
    found: list[Phrase] = []
    for pattern in SOURCES:
        for path in sorted(root.glob(pattern)):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            rel = path.relative_to(root.parents[1])

            def add(section: str, node: ast.AST) -> None:
                for tpl in _templates(node):
                    if section == "measures" or _is_phrase(tpl):
                        found.append(Phrase(section, tpl, f"{rel}:{node.lineno}"))
                for text in _fallbacks(node):           # f"... ({state or 'no record'})": the value is said too
                    if _is_phrase(text):
                        found.append(Phrase("said", text, f"{rel}:{node.lineno}"))

            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    name = _name(node.func)
                    section, slots = METHODS.get(name, ("", []))
                    done: set[int] = set()
                    for index, keyword in slots:
                        for kw in node.keywords:
                            if kw.arg == keyword:
                                add(section, kw.value)
                                done.add(id(kw))
                        if len(node.args) > index:
                            add(section, node.args[index])
                    for kw in node.keywords:
                        if kw.arg in KEYWORDS and id(kw) not in done:
                            add(KEYWORDS[kw.arg], kw.value)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    args = node.args.args + node.args.kwonlyargs
                    defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults \
                        + node.args.kw_defaults
                    for arg, default in zip(args, defaults):
                        if default is not None and arg.arg in KEYWORDS:
                            add(KEYWORDS[arg.arg], default)
    return found


def missing(lang: str, found: list[Phrase] | None = None) -> list[Phrase]:
    """The phrases ``lang`` has no translation for (one per template, first place it is written)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for p in found if found is not None else templates():
        key = (p.section, p.template)
        if key in seen:
            continue
        seen.add(key)
        if not (catalog(lang).get(p.section) or {}).get(p.template):
            out.append(p)
    return out


def unused(lang: str, found: list[Phrase] | None = None) -> list[tuple[str, str]]:
    """Translations whose English template no code uses any more (section, template)."""
    used = {(p.section, p.template) for p in (found if found is not None else templates())}
    return [(s, k) for s in SECTIONS for k in (catalog(lang).get(s) or {}) if (s, k) not in used]
