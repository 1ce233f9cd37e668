"""The exam's score: what was broken, whether the trainee named it, how long naming and repairing
took, the hints used, and what the application saw meanwhile (writes lost, RTO per write path,
from the background process's writer). Kept in run.json's ``score`` (what the seat's history
reads: lab.workshop.history) and in the exam's result.json."""
from __future__ import annotations

from typing import Any

from lab.i18n import t


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


def seconds(v: float | None) -> str:
    return "-" if v is None else t("exam_seconds", s=v)


def line(sc: dict[str, Any]) -> str:
    """One line: fault | answer | repair | hints | writes lost | RTO per path, in the current language."""
    answer = t(f"exam_answer_{sc['answer']}")
    if sc["answers"]:
        answer += t("exam_answers_given", n=sc["answers"])
    if sc["answered_s"] is not None:
        answer += t("exam_named_after", after=seconds(sc["answered_s"]))
    repair = t("exam_gave_up") if sc["gave_up"] else (
        t("exam_repaired_after", after=seconds(sc["repaired_s"])) if sc["repaired_s"] is not None
        else t("exam_not_repaired"))
    lost = t("exam_writes_lost", n=sc["writes_lost"]) if sc["writes_counted"] else t("exam_writes_not_counted")
    paths = sorted(sc["rto_s"], key=lambda p: (p != "vip", p != "haproxy", p))     # as the drills' table
    rto = ", ".join(f"{p} {t('exam_never_back') if sc['rto_s'][p] is None else seconds(sc['rto_s'][p])}"
                    for p in paths) or "-"
    return t("exam_score", fault=sc["fault"], node=sc["node"], answer=answer, repair=repair,
             hints=sc["hints"], lost=lost, rto=rto)


def short(sc: dict[str, Any]) -> str:
    """The few words a table row has room for: answer, repair, hints."""
    if sc.get("repaired_s") is not None:
        repair = f"repaired in {sc['repaired_s']:g} s"
    else:
        repair = "gave up" if sc.get("gave_up") else "not repaired"
    return f"answer {sc.get('answer', '-')}, {repair}, hints {sc.get('hints', 0)}"
