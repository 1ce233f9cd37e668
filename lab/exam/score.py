"""The exam's score: what was broken, whether the trainee named it, how long naming and repairing
took, the hints used, and what the application saw meanwhile (writes lost, RTO per write path,
from the background process's writer). Kept in run.json's ``score`` (what the seat's history
reads: lab.workshop.history) and in the exam's result.json."""
from __future__ import annotations

from typing import Any


def score(state: dict[str, Any], fault: dict[str, Any], result: dict[str, Any], *,
          repaired_s: float | None, gave_up: bool) -> dict[str, Any]:
    answers = state.get("answers") or []
    right = [a for a in answers if a.get("right")]
    writes = result.get("writes") or {}
    counted = bool(writes) and writes.get("lost") is not None
    return {
        "fault": fault.get("drill"),
        "node": fault.get("node"),
        "answer": "right" if right else ("wrong" if answers else "none"),
        "answers": len(answers),
        "answered_s": right[0].get("after_s") if right else None,
        "repaired_s": repaired_s,
        "gave_up": gave_up,
        "hints": int(state.get("hints") or 0),
        "writes_lost": writes.get("lost") if counted else None,
        "writes_acknowledged": writes.get("acknowledged"),
        "writes_counted": counted,
        "writes_uncounted_reason": None if counted else (writes.get("uncounted_reason")
                                                         or "no writer figures were kept"),
        "rto_s": dict(result.get("rto_s") or {}),
    }


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:g} s"


def line(sc: dict[str, Any]) -> str:
    """One line: fault | answer | repair | hints | writes lost | RTO per path."""
    answer = f"answer {sc['answer']}"
    if sc["answers"]:
        answer += f" ({sc['answers']} given)"
    if sc["answered_s"] is not None:
        answer += f", named after {_s(sc['answered_s'])}"
    repair = "gave up" if sc["gave_up"] else (f"repaired after {_s(sc['repaired_s'])}"
                                              if sc["repaired_s"] is not None else "not repaired")
    lost = "writes lost " + (str(sc["writes_lost"]) if sc["writes_counted"] else "not counted")
    paths = sorted(sc["rto_s"], key=lambda p: (p != "vip", p != "haproxy", p))     # as the drills' table
    rto = ", ".join(f"{p} {'never back' if sc['rto_s'][p] is None else _s(sc['rto_s'][p])}" for p in paths) or "-"
    return (f"exam score: fault {sc['fault']} on {sc['node']} | {answer} | {repair} | hints {sc['hints']} | "
            f"{lost} | RTO {rto}")


def short(sc: dict[str, Any]) -> str:
    """The few words a table row has room for: answer, repair, hints."""
    if sc.get("repaired_s") is not None:
        repair = f"repaired in {sc['repaired_s']:g} s"
    else:
        repair = "gave up" if sc.get("gave_up") else "not repaired"
    return f"answer {sc.get('answer', '-')}, {repair}, hints {sc.get('hints', 0)}"
