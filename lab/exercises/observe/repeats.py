"""One drill run N times (``invoke exercise D --auto --repeat N``): the spread of each RTO and phase.

Each repetition is a run of its own (its own folder, gate before and after); this summary is drawn
from their results. A figure a repetition did not measure is counted as unknown, never as 0, and
lost writes are summed only when every repetition could count them.
"""
from __future__ import annotations

import math
from typing import Any, Iterable


def nearest_rank(values: list[float], q: float) -> float:
    """The q-quantile (0 < q <= 1) by nearest rank: a value that was measured, never interpolated."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(values: Iterable[float | None]) -> dict[str, Any]:
    values = list(values)
    known = [v for v in values if v is not None]
    unknown = len(values) - len(known)
    if not known:
        return {"n": 0, "unknown": unknown, "p50": None, "p95": None, "max": None, "min": None}
    return {"n": len(known), "unknown": unknown, "min": min(known), "p50": nearest_rank(known, 0.5),
            "p95": nearest_rank(known, 0.95), "max": max(known)}


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary of N result.json documents of one drill."""
    paths = sorted({p for r in results for p in (r.get("rto_s") or {})})
    phase_names: list[str] = []
    for r in results:
        for p in (r.get("failover") or {}).get("phases", []):
            if p["name"] not in phase_names:
                phase_names.append(p["name"])

    def phase_t(r: dict, name: str) -> float | None:
        return next((p["t"] for p in (r.get("failover") or {}).get("phases", []) if p["name"] == name), None)

    lost = [(r.get("writes") or {}).get("lost") for r in results]
    verdicts: dict[str, int] = {}
    for r in results:
        verdicts[r.get("verdict", "error")] = verdicts.get(r.get("verdict", "error"), 0) + 1
    bands = (results[0].get("failover") or {}).get("band", {}) if results else {}
    outside = sum(1 for r in results for n in r.get("notes", []) if "the band the settings predict" in n)
    return {"drill": results[0].get("drill") if results else None, "runs": len(results), "verdicts": verdicts,
            "rto_s": {p: spread([(r.get("rto_s") or {}).get(p) for r in results]) for p in paths},
            "phases": {n: spread([phase_t(r, n) for r in results]) for n in phase_names},
            "lost": None if any(v is None for v in lost) else sum(lost),
            "lost_uncounted": sum(1 for v in lost if v is None),
            "band": bands, "outside_band": outside}


def lines(summary: dict[str, Any]) -> list[str]:
    """The summary as a table: one row per RTO path and phase."""
    fmt = lambda v: "-" if v is None else f"{v:g}"
    out = [f"{summary['drill']}: {summary['runs']} runs, "
           + ", ".join(f"{k} {v}" for k, v in summary["verdicts"].items())
           + f"; lost writes {fmt(summary['lost'])}"
           + (f" ({summary['lost_uncounted']} runs not counted)" if summary["lost_uncounted"] else "")
           + f"; RTO outside the band: {summary['outside_band']}",
           f"{'figure':28} {'n':>3} {'unknown':>7} {'min':>7} {'p50':>7} {'p95':>7} {'max':>7}  band"]
    rows = [(f"RTO {p}", s, summary["band"].get(p)) for p, s in summary["rto_s"].items()]
    rows += [(f"phase {n}", s, None) for n, s in summary["phases"].items()]
    for name, s, b in rows:
        band = f"{b['low']:g}-{b['high']:g} s" if b else ""
        out.append(f"{name:28} {s['n']:>3} {s['unknown']:>7} {fmt(s['min']):>7} {fmt(s['p50']):>7} "
                   f"{fmt(s['p95']):>7} {fmt(s['max']):>7}  {band}")
    return out
