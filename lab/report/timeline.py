"""One drill's event stream as lanes over time, and the chart drawn from them.

Lanes: one per member coloured by its outcome (primary / replica / stopped / fenced /
unreachable, white where the watch took no sample), one per VIP showing who held it, one per
write path with every attempt as a success or a failure. Vertical marks show the fault, the
promotion and the undo; each path's RTO is drawn as an interval from the fault.

The lane data is plain Python (tested without drawing); :func:`draw` turns it into a
matplotlib figure.
"""
from __future__ import annotations

import io
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable

from lab.i18n import DEFAULT, current, language, t
from lab.i18n.phrases import said
from lab.report.runs import DrillRun

OUTCOMES = ("primary", "replica", "stopped", "fenced", "unreachable")
OUTCOME_COLOURS = {"primary": "#1f4e9c", "replica": "#9cc3e6", "stopped": "#8c8c8c",
                   "fenced": "#8e44ad", "unreachable": "#f39c12"}
VIP_ONE, VIP_MANY = "#c8c8c8", "#d62728"
WRITE_OK, WRITE_FAILED = "#2ca02c", "#d62728"
MARK_STYLES = {"fault": ("#d62728", "--"), "promotion": ("#1f4e9c", "-."), "undo": ("#2ca02c", "--"),
               "restore": ("#2ca02c", ":"), "phase": ("#8c6d1f", ":")}
PHASE_MARKS = ("key_expired", "new_leader", "haproxy_up")
HIDDEN_MARKS = ("start", "end")          # the axis itself shows them
DEFAULT_GAP = 2.0                        # a lane with no sample for longer shows a hole


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    value: Any

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass
class Lanes:
    members: dict[str, list[Segment]] = field(default_factory=dict)
    vips: dict[str, list[Segment]] = field(default_factory=dict)      # value: tuple of holders
    writes: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)
    marks: list[tuple[float, str, str]] = field(default_factory=list)  # (t, name, label)
    rto: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # path -> (from, seconds)
    end: float = 0.0

    @property
    def empty(self) -> bool:
        return not (self.members or self.vips or self.writes)


def segments(points: Iterable[tuple[float, Any]], max_gap: float, tail: float) -> list[Segment]:
    """Consecutive points with the same value merged into segments. A value holds until the next
    point, but never longer than ``max_gap``: beyond that the lane has a hole (nothing was seen).
    The last point holds for ``tail`` seconds."""
    out: list[Segment] = []
    pts = sorted(points, key=lambda p: p[0])
    for i, (t, value) in enumerate(pts):
        nxt = pts[i + 1][0] if i + 1 < len(pts) else t + tail
        end = min(nxt, t + max_gap) if nxt - t > max_gap else nxt
        if out and out[-1].value == value and abs(out[-1].end - t) < 1e-9:
            out[-1] = Segment(out[-1].start, end, value)
        else:
            out.append(Segment(t, end, value))
    return out


def cadence(times: list[float]) -> float:
    """The usual distance between samples (median), for how long the last one holds."""
    steps = [b - a for a, b in zip(times, times[1:]) if b > a]
    return statistics.median(steps) if steps else 1.0


def lanes(drill: DrillRun, max_gap: float = DEFAULT_GAP) -> Lanes:
    out = Lanes()
    samples = drill.of_type("sample")
    times = [float(s["t"]) for s in samples]
    step = cadence(times)
    gap = max(max_gap, 1.5 * step)
    members: dict[str, list[tuple[float, str]]] = {}
    for s in samples:
        for name, m in sorted((s.get("members") or {}).items()):
            members.setdefault(name, []).append((float(s["t"]), (m or {}).get("outcome") or "unreachable"))
    out.members = {name: segments(pts, gap, step) for name, pts in sorted(members.items())}

    vip_samples = [s for s in samples if s.get("vips") is not None]
    vip_step = cadence([float(s["t"]) for s in vip_samples])
    vips: dict[str, list[tuple[float, tuple[str, ...]]]] = {}
    for s in vip_samples:
        for role, holders in s["vips"].items():
            vips.setdefault(role, []).append((float(s["t"]), tuple(sorted(holders or ()))))
    out.vips = {role: segments(pts, max(max_gap, 1.5 * vip_step), vip_step) for role, pts in vips.items()}

    for w in drill.of_type("write"):
        out.writes.setdefault(str(w.get("path")), []).append((float(w["t"]), bool(w.get("ok"))))
    out.marks = [(float(m["t"]), str(m.get("name")), str(m.get("label") or m.get("name")))
                 for m in drill.marks() if m.get("name") not in HIDDEN_MARKS]
    fault = drill.mark("fault")
    if fault is not None and drill.mark("promotion") is None:
        seen = promotion_seen(out.members, fault)
        if seen:
            out.marks.append((seen[0], "promotion", t("chart_mark_promotion", member=seen[1])))
            out.marks.sort()
    # the failover's phases (result.json ``failover``): where the leader key expired, the new leader
    # took it, haproxy marked it UP; the promotion and the fault have marks of their own
    failover = drill.result.get("failover") or {}
    for p in failover.get("phases", []):
        if p.get("name") in PHASE_MARKS and p.get("t") is not None and failover.get("fault_t") is not None:
            out.marks.append((float(failover["fault_t"]) + float(p["t"]), "phase", p["name"]))
    out.marks.sort()
    if fault is not None:
        for path, seconds in (drill.result.get("rto_s") or {}).items():
            out.rto[str(path)] = (fault, None if seconds is None else float(seconds))
    out.end = max([float(e["t"]) for e in drill.events] + [0.0]) + step
    return out


def promotion_seen(members: dict[str, list[Segment]], fault: float) -> tuple[float, str] | None:
    """The first moment after the fault a member that was not primary at the fault is seen as
    primary (for runs whose drill set no promotion mark of its own)."""
    before = {m for m, segs in members.items()
              if any(s.value == "primary" and s.start <= fault < s.end for s in segs)}
    first = sorted((s.start, m) for m, segs in members.items() if m not in before
                   for s in segs if s.value == "primary" and s.start >= fault)
    return first[0] if first else None


def double_primary(lanes_: Lanes) -> list[tuple[float, float]]:
    """Intervals in which two or more members were seen primary at once."""
    edges = sorted({t for segs in lanes_.members.values() for s in segs for t in (s.start, s.end)})
    spans: list[tuple[float, float]] = []
    for a, b in zip(edges, edges[1:]):
        mid = (a + b) / 2
        primaries = sum(1 for segs in lanes_.members.values()
                        for s in segs if s.value == "primary" and s.start <= mid < s.end)
        if primaries > 1:
            if spans and abs(spans[-1][1] - a) < 1e-9:
                spans[-1] = (spans[-1][0], b)
            else:
                spans.append((a, b))
    return spans


def write_gaps(points: list[tuple[float, bool]]) -> list[tuple[float, float | None]]:
    """Where a path refused writes: from the last success before a failure to the next success
    (None: no success came after). Measured from the attempts, so at the writer's cadence."""
    gaps: list[tuple[float, float | None]] = []
    last_ok: float | None = None
    failing_since: float | None = None
    for t, ok in sorted(points):
        if ok:
            if failing_since is not None:
                gaps.append((failing_since, t))
                failing_since = None
            last_ok = t
        elif failing_since is None:
            failing_since = last_ok if last_ok is not None else t
    if failing_since is not None:
        gaps.append((failing_since, None))
    return gaps


# --- drawing -----------------------------------------------------------------------------

def draw(drill: DrillRun, lanes_: Lanes | None = None):
    """The timeline as a matplotlib Figure (Agg: no display needed), in the current language (a
    report draws it in the language of its run: ``with lab.i18n.language(...)``). In a language other
    than English the title carries the drill's summary in that language (CJK glyphs: lab.report.fonts)."""
    import matplotlib
    matplotlib.use("Agg")
    from lab.report.fonts import use_cjk_fallback
    use_cjk_fallback()
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    lang = current()
    ln = lanes_ or lanes(drill)
    rows: list[tuple[str, str, Any]] = ([("member", m, segs) for m, segs in ln.members.items()]
                                         + [("vip", f"VIP {r}", segs) for r, segs in ln.vips.items()]
                                         + [("writes", p, pts) for p, pts in ln.writes.items()])
    height = 1.6 + 0.42 * max(len(rows), 1)
    fig = Figure(figsize=(12, height), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    end = max(ln.end, 1.0)
    ax.set_xlim(0, end)
    ax.set_ylim(-0.7, max(len(rows), 1) - 0.3)
    ax.invert_yaxis()
    ax.set_yticks(range(len(rows)), [t("chart_writes", path=r[1]) if r[0] == "writes" else r[1] for r in rows],
                  fontsize=9)
    ax.set_xlabel(t("chart_xlabel"), fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)
    verdict = drill.verdict
    if ln.empty:
        ax.text(0.5, 0.5, t("chart_empty"),
                transform=ax.transAxes, ha="center", va="center", fontsize=11, color="#d62728")

    for y, (kind, _, data) in enumerate(rows):
        if kind == "member":
            # White with a hatch where no sample exists: "not seen" must not look like an outcome.
            ax.broken_barh([(0, end)], (y - 0.35, 0.7), facecolors="white", edgecolor="#dddddd",
                           hatch="////", linewidth=0)
            for s in data:
                ax.broken_barh([(s.start, s.length)], (y - 0.35, 0.7),
                               facecolors=OUTCOME_COLOURS.get(s.value, "#000000"), linewidth=0)
        elif kind == "vip":
            ax.broken_barh([(0, end)], (y - 0.3, 0.6), facecolors="white", edgecolor="#dddddd",
                           hatch="////", linewidth=0)
            for s in data:
                colour = VIP_MANY if len(s.value) > 1 else VIP_ONE if s.value else "white"
                ax.broken_barh([(s.start, s.length)], (y - 0.3, 0.6), facecolors=colour, linewidth=0)
                if s.length >= end * 0.03 or len(s.value) > 1:
                    ax.text(s.start + s.length / 2, y, " + ".join(s.value) or t("chart_nobody"), ha="center",
                            va="center", fontsize=7, color="white" if len(s.value) > 1 else "#333333",
                            clip_on=True)
        else:
            ok = [when for when, good in data if good]
            bad = [when for when, good in data if not good]
            ax.scatter(ok, [y - 0.12] * len(ok), marker="|", s=60, color=WRITE_OK, linewidths=1)
            ax.scatter(bad, [y + 0.12] * len(bad), marker="|", s=60, color=WRITE_FAILED, linewidths=1)
            path = rows[y][1]
            if path in ln.rto:
                start, seconds = ln.rto[path]
                stop = start + seconds if seconds is not None else end
                label = t("chart_rto", s=seconds) if seconds is not None else t("chart_rto_none")
                if stop - start > end * 0.005:
                    ax.annotate("", xy=(stop, y - 0.38), xytext=(start, y - 0.38),
                                arrowprops=dict(arrowstyle="|-|", color="#333333", linewidth=1,
                                                shrinkA=0, shrinkB=0, mutation_scale=3))
                    ax.text(start + (stop - start) / 2, y - 0.42, label, ha="center", va="bottom",
                            fontsize=7, color="#333333")
                else:                    # nothing to draw: say it beside the fault line
                    ax.text(start + end * 0.004, y - 0.42, label, ha="left", va="bottom", fontsize=7,
                            color="#333333")

    # Two primaries at once: framed over the member lanes, so it shows on a projector.
    n_members = len(ln.members)
    for a, b in double_primary(ln):
        ax.add_patch(Rectangle((a, -0.45), b - a, n_members - 0.1, fill=False, edgecolor=VIP_MANY,
                               linewidth=2.2, zorder=5))
        ax.text(a + (b - a) / 2, n_members - 0.5, t("chart_two_primaries", s=b - a), ha="center",
                va="center", fontsize=8, color=VIP_MANY, fontweight="bold", zorder=6,
                bbox=dict(facecolor="white", edgecolor="none", pad=1, alpha=0.85))

    top = ax.get_xaxis_transform()
    rows_end: list[float] = []           # per label row, where its last label ends (axis fraction)
    for at, name, label in ln.marks:
        colour, style = MARK_STYLES.get(name, ("#555555", ":"))
        ax.axvline(at, color=colour, linestyle=style, linewidth=1.2)
        label = mark_label(name, label)
        text = label if len(label) <= 48 else label[:47] + "…"
        x, half = at / end, sum(2 if ord(ch) > 0x2e80 else 1 for ch in text) * 0.0032   # ~7-pt characters, CJK twice as wide
        row = next((i for i, stop in enumerate(rows_end) if x - half > stop), len(rows_end))
        rows_end[row:row + 1] = [x + half]
        ax.annotate(text, xy=(at, 1.0), xycoords=top, xytext=(0, 3 + 10 * row), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7, color=colour, annotation_clip=False)
    shown = verdict if lang == DEFAULT else t(f"verdict_{verdict}", default=verdict)
    title = f"{drill.name}: {shown}" + (f"\n{drill_words(drill.name, 'summary')}" if lang != DEFAULT else "")
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold",
                 pad=16 + 10 * max(len(rows_end) - 1, 0))

    handles = [Patch(color=OUTCOME_COLOURS[o], label=t(f"chart_outcome_{o}")) for o in OUTCOMES]
    handles += [Patch(facecolor="white", edgecolor="#bbbbbb", hatch="////", label=t("chart_no_sample")),
                Patch(color=VIP_MANY, label=t("chart_vip_many")),
                Line2D([], [], color=WRITE_OK, marker="|", linestyle="", label=t("chart_write_ok")),
                Line2D([], [], color=WRITE_FAILED, marker="|", linestyle="", label=t("chart_write_failed"))]
    fig.legend(handles=handles, loc="lower center", ncol=9, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))
    return fig


def mark_label(name: str, label: str) -> str:
    """A mark's label in the current language. The events keep the English the drill wrote (``fault: <what>``,
    the undo's <what>); the lab's own marks are translated whole, a drill's description through the
    drills' phrase table, and a drill's own mark names (``etcd_back``) stay as they are."""
    if name == "phase":
        return t(f"chart_phase_{label}")
    if current() == DEFAULT:
        return label
    if name == "fault":
        kind, _, what = label.partition(": ")
        if kind in ("fault", "operation"):
            return t(f"chart_mark_{kind}", what=said(what))
    if name == "undo":
        return t("chart_mark_undo", what=said(label))
    if name == "restore":
        return t("chart_mark_restore")
    with language(DEFAULT):            # the event holds the English label
        promoted = t("chart_mark_promotion", member="")
    if name == "promotion" and label.endswith(promoted):
        return t("chart_mark_promotion", member=label.split()[0])
    return said(label)


def drill_words(name: str, field: str) -> str:
    """A drill's section or summary in the current language, for a report made in that language
    ('' in English, and for a drill this version does not know)."""
    from lab.exercises import DRILLS
    from lab.i18n import drill_text
    return "" if current() == DEFAULT or name not in DRILLS else str(drill_text(name, field)).strip()


def png(drill: DrillRun) -> bytes:
    """The chart as PNG bytes, in the current language."""
    fig = draw(drill)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()
