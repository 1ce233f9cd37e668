"""The report of one run: a self-contained HTML page (charts embedded as data: URIs, styles
inline, nothing fetched when it is viewed, so it works on a projector without network) and a
Markdown summary beside it, with the charts as PNG files next to it.

Written to ``$LAB_DIR/reports/<run>/``, never into the run folder: a run folder is evidence and
stays as the runner wrote it.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.exam import score as exam_score
from lab.i18n import DEFAULT, current, language
from lab.report import runs, timeline
from lab.report.runs import DrillRun, Run

VERDICT_COLOURS = {"pass": "#2ca02c", "differs": "#1f77b4", "fail": "#d62728", "error": "#ff7f0e",
                   "not-applicable": "#8c8c8c"}


@dataclass
class Figures:
    """What a trainer quotes for one drill, each with its source: the drill's result where it has
    the figure, else measured from the event stream; None where nothing could be observed."""
    rto: dict[str, float | None]
    outage: dict[str, float | None]      # seconds a path refused writes (None: it never came back)
    to_survivor: dict[str, float | None]  # fault -> first write on the timeline that survived
    after_fork: dict[str, int | None]    # acknowledged writes a primary took after the fork
    attempts: dict[str, tuple[int, int]]  # path -> (ok, failed), from the events
    lost: Any
    split_brain_s: float | None
    samples: int
    sample_errors: int
    watch: dict[str, Any]


def figures(d: DrillRun) -> Figures:
    ln = timeline.lanes(d)
    res = d.result
    writes = res.get("writes") or {}
    per_path = writes.get("paths") or {}
    rto = {str(k): v for k, v in (res.get("rto_s") or {}).items()}
    outage: dict[str, float | None] = {}
    attempts: dict[str, tuple[int, int]] = {}
    for path in list(rto) + [p for p in per_path if p not in rto] + [p for p in ln.writes if p not in rto]:
        rto.setdefault(path, (per_path.get(path) or {}).get("rto_s"))
        pts = ln.writes.get(path, [])
        attempts[path] = (sum(1 for _, ok in pts if ok), sum(1 for _, ok in pts if not ok))
        fig = per_path.get(path) or {}
        if "outage_s" in fig:
            outage[path] = None if fig.get("open") else fig["outage_s"]
        elif pts:                        # runs written before the runner kept per-path figures
            gaps = timeline.write_gaps(pts)
            closed = [b - a for a, b in gaps if b is not None]
            outage[path] = None if any(b is None for _, b in gaps) else round(sum(closed), 1)
    samples = len(d.of_type("sample"))
    sb = res.get("split_brain") or res.get("watch") or {}
    if "double_primary_seconds" in sb and sb.get("samples", samples):
        split = float(sb["double_primary_seconds"])
    elif samples:
        split = round(sum(b - a for a, b in timeline.double_primary(ln)), 1)
    else:
        split = None                     # no sample is not "no split brain"
    return Figures(rto, outage,
                   {p: (per_path.get(p) or {}).get("to_surviving_timeline_s") for p in rto},
                   {p: (per_path.get(p) or {}).get("after_fork") for p in rto},
                   attempts, writes.get("lost") if writes else None, split, samples,
                   len(d.of_type("sample_error")), res.get("watch") or {})


def _claim(d: DrillRun) -> str:
    claim = d.result.get("claim")
    if claim:
        return str(claim)
    try:                                 # runs made before results carried the claim
        from lab.exercises import DRILLS
        cls = DRILLS.get(d.name)
        return (getattr(cls, "expected", "") or getattr(cls, "summary", "")) if cls else ""
    except Exception:
        return ""


def _seconds(v: Any, none: str = "never") -> str:
    return none if v is None else f"{float(v):g} s"


def _lost(v: Any) -> str:
    return "not counted" if v is None else str(v)


def _split(f: Figures) -> str:
    return "not observed (no sample)" if f.split_brain_s is None else f"{f.split_brain_s:g} s"


def _anchor(name: str) -> str:
    return "drill-" + "".join(c if c.isalnum() or c == "-" else "-" for c in name)


# --- HTML -------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1250px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0} th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3} td.num{text-align:right}
.verdict{display:inline-block;padding:.05em .55em;border-radius:.3em;color:#fff;font-weight:bold}
.meta{color:#555} .claim{font-style:italic} img.chart{max-width:100%;border:1px solid #eee}
.bad{color:#d62728} details{margin:.5em 0} code{background:#f5f5f5;padding:0 .2em}
"""


def _badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#555555")
    return f'<span class="verdict" style="background:{colour}">{html.escape(verdict)}</span>'


def _e(v: Any) -> str:
    return html.escape(str(v))


def verdict_rows(run: Run) -> list[dict[str, str]]:
    """One row per drill for the verdict table (HTML and Markdown share it)."""
    rows = []
    for d in run.drills:
        f = figures(d)
        rows.append({"drill": d.name, "section": str(d.result.get("section") or ""), "verdict": d.verdict,
                     "rto": ", ".join(f"{p} {_seconds(v)}" for p, v in f.rto.items()) or "-",
                     "lost": _lost(f.lost) if f.attempts or d.result.get("writes") else "-",
                     "split": _split(f), "reason": str(d.result.get("reason") or "")})
    return rows


def _run_lang(run: Run) -> str:
    """The language the run was made in (run.json); the report adds the drills' words in it."""
    return str(run.meta.get("lang") or DEFAULT)


def _score_line(run: Run) -> str:
    """The exam's score line, in English as the rest of the page."""
    with language(DEFAULT):
        return exam_score.line(run.meta["score"])


def _html_drill(d: DrillRun, chart_png: bytes) -> str:
    """One drill's section; the drill's own words in the current language (the run's)."""
    f = figures(d)
    res = d.result
    summary = timeline.drill_words(d.name, "summary")
    parts = [f'<section id="{_anchor(d.name)}">',
             f"<h2>{_e(d.name)} {_badge(d.verdict)}</h2>",
             *([f'<p lang="{_e(current())}"><b>{_e(timeline.drill_words(d.name, "section"))}</b> {_e(summary)}</p>'] if summary else []),
             f"<p><b>Article:</b> {_e(res.get('section') or '-')}</p>",
             f'<p class="claim"><b>Claim:</b> {_e(_claim(d) or "-")}</p>',
             f"<p><b>Verdict:</b> {_e(d.verdict)}"
             + (f" because {_e(res.get('reason'))}" if res.get("reason") else
                " — every check of the drill held" if d.verdict == "pass" else "") + "</p>"]
    if f.rto:
        parts.append("<table><tr><th>write path</th><th>RTO (fault to writable)</th>"
                     "<th>refused writes for</th><th>fault to surviving timeline</th>"
                     "<th>acknowledged after the fork</th><th>writes ok</th><th>writes failed</th></tr>")
        for path in f.rto:
            ok, bad = f.attempts.get(path, (0, 0))
            fork = f.after_fork.get(path)
            parts.append(f"<tr><td>{_e(path)}</td><td class=num>{_e(_seconds(f.rto[path]))}</td>"
                         f"<td class=num>{_e(_seconds(f.outage.get(path), 'until the end'))}</td>"
                         f"<td class=num>{_e(_seconds(f.to_survivor.get(path), '-'))}</td>"
                         f"<td class=num>{'-' if fork is None else fork}</td>"
                         f"<td class=num>{ok}</td><td class=num>{bad}</td></tr>")
        parts.append("</table>")
    w = f.watch
    parts.append(f"<p><b>Lost acknowledged writes:</b> {_e(_lost(f.lost))} &nbsp; "
                 f"<b>Two primaries at once:</b> {_e(_split(f))} &nbsp; "
                 f"<b>Watch:</b> {f.samples} samples"
                 + (f", {_e(w['samples_per_s'])}/s, longest gap {_e(_seconds(w.get('longest_gap_s'), '-'))}"
                    if "samples_per_s" in w else "")
                 + (f' (<span class="bad">{f.sample_errors} sampling errors</span>)' if f.sample_errors else "")
                 + "</p>")
    if d.bad_lines:
        parts.append(f'<p class="bad">{d.bad_lines} line(s) of events.jsonl could not be read.</p>')
    data = base64.b64encode(chart_png).decode()
    parts.append(f'<img class="chart" alt="timeline of {_e(d.name)}" src="data:image/png;base64,{data}">')
    checks = d.of_type("check") or [
        {"kind": c.get("kind"), "description": c.get("description"), "bound_s": c.get("bound"),
         "end": c.get("elapsed"), "start": 0, "ok": c.get("ok"), "detail": c.get("detail")}
        for c in res.get("checks") or []]
    if checks:
        parts.append("<details open><summary>Checks</summary><table><tr><th>check</th><th>kind</th>"
                     "<th>bound</th><th>from</th><th>to</th><th>ok</th><th>detail</th></tr>")
        for c in checks:
            parts.append(f"<tr><td>{_e(c.get('description'))}</td><td>{_e(c.get('kind'))}</td>"
                         f"<td class=num>{_e(_seconds(c.get('bound_s'), '-'))}</td>"
                         f"<td class=num>{_e(_seconds(c.get('start'), '-'))}</td>"
                         f"<td class=num>{_e(_seconds(c.get('end'), '-'))}</td>"
                         f"<td>{'yes' if c.get('ok') else '<b class=bad>no</b>'}</td>"
                         f"<td>{_e(c.get('detail') or '')}</td></tr>")
        parts.append("</table></details>")
    notes = [n["text"] for n in d.of_type("note")] or list(res.get("notes") or [])
    if notes:
        parts.append("<details><summary>Notes</summary><ul>"
                     + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul></details>")
    parts.append("</section>")
    return "\n".join(parts)


def html_page(run: Run, charts: dict[str, bytes]) -> str:
    m = run.meta
    tally = m.get("tally") or {}
    head = (f"<h1>Drill report: {_e(run.name)}</h1>"
            f'<p class="meta">lab <b>{_e(m.get("lab") or "?")}</b>, command <code>{_e(m.get("command") or "?")}</code>, '
            f"started {_e(m.get('started') or '?')}, finished {_e(m.get('finished') or 'not finished')}, "
            f"commit {_e((m.get('commit') or 'unknown')[:12])}, time scale {_e(m.get('scale', 1))}"
            + (", tally: " + _e(", ".join(f"{k} {v}" for k, v in tally.items())) if tally else "") + "</p>"
            + (f'<p class="meta"><b>{_e(_score_line(run))}</b></p>' if m.get("score") else ""))
    table = ["<h2>Verdicts</h2><table id=verdicts><tr><th>drill</th><th>article</th><th>verdict</th>"
             "<th>RTO</th><th>lost writes</th><th>two primaries</th><th>why</th></tr>"]
    for r in verdict_rows(run):
        table.append(f'<tr><td><a href="#{_anchor(r["drill"])}">{_e(r["drill"])}</a></td><td>{_e(r["section"])}</td>'
                     f"<td>{_badge(r['verdict'])}</td><td>{_e(r['rto'])}</td><td>{_e(r['lost'])}</td>"
                     f"<td>{_e(r['split'])}</td><td>{_e(r['reason'])}</td></tr>")
    table.append("</table>")
    if not run.drills:
        table.append('<p class="bad">This run holds no drill.</p>')
    with language(_run_lang(run)):
        drills = [_html_drill(d, charts[d.name]) for d in run.drills]
    body = "\n".join([head, *table, *drills])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{_e(run.name)}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


# --- Markdown ----------------------------------------------------------------------------------

def _md(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def markdown(run: Run, chart_files: dict[str, str]) -> str:
    m = run.meta
    lines = [f"# Drill report: {run.name}", "",
             f"Lab `{m.get('lab') or '?'}`, `{m.get('command') or '?'}`, started {m.get('started') or '?'}, "
             f"finished {m.get('finished') or 'not finished'}, commit {(m.get('commit') or 'unknown')[:12]}.", "",
             *([f"**{_md(_score_line(run))}**", ""] if m.get("score") else []),
             "| drill | article | verdict | RTO | lost writes | two primaries | why |",
             "|---|---|---|---|---|---|---|"]
    for r in verdict_rows(run):
        lines.append(f"| [{r['drill']}](#{_anchor(r['drill'])}) | {_md(r['section'])} | **{r['verdict']}** | "
                     f"{_md(r['rto'])} | {_md(r['lost'])} | {_md(r['split'])} | {_md(r['reason'])} |")
    for d in run.drills:
        f = figures(d)
        with language(_run_lang(run)):
            words = (f"{timeline.drill_words(d.name, 'section')}: {timeline.drill_words(d.name, 'summary')}"
                     if timeline.drill_words(d.name, "summary") else "")
        lines += ["", f'<a id="{_anchor(d.name)}"></a>', f"## {d.name}: {d.verdict}", "",
                  *([f"- {words}"] if words else []),
                  f"- Article: {d.result.get('section') or '-'}", f"- Claim: {_claim(d) or '-'}",
                  f"- Verdict: {d.verdict}" + (f" because {d.result['reason']}" if d.result.get("reason") else ""),
                  f"- Lost acknowledged writes: {_lost(f.lost)}; two primaries at once: {_split(f)}; "
                  f"watch samples: {f.samples}" + (f" ({f.sample_errors} sampling errors)" if f.sample_errors else "")]
        for path in f.rto:
            ok, bad = f.attempts.get(path, (0, 0))
            fork = f.after_fork.get(path)
            lines.append(f"- Writes through {path}: RTO {_seconds(f.rto[path])}, refused writes for "
                         f"{_seconds(f.outage.get(path), 'until the end')}"
                         + ("" if fork is None else f", {fork} acknowledged after the fork")
                         + f"; {ok} ok, {bad} failed")
        lines += ["", f"![timeline of {d.name}]({chart_files[d.name]})"]
    return "\n".join(lines) + "\n"


# --- writing ---------------------------------------------------------------------------------

@dataclass
class Written:
    html: Path
    markdown: Path
    charts: list[Path]


def write(run: Run, out_dir: Path | None = None) -> Written:
    """Draw every drill's timeline and write report.html, report.md and the PNGs."""
    out = out_dir or runs.reports_dir() / run.name
    out.mkdir(parents=True, exist_ok=True)
    with language(_run_lang(run)):      # each chart in the language its run was made in
        charts = {d.name: timeline.png(d) for d in run.drills}
    files = {}
    for name, data in charts.items():
        p = out / f"{name}.png"
        p.write_bytes(data)
        files[name] = p.name
    page = out / "report.html"
    page.write_text(html_page(run, charts))
    md = out / "report.md"
    md.write_text(markdown(run, files))
    return Written(page, md, [out / f for f in files.values()])
