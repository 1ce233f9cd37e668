""""Did you mean ...?" for a mistyped name, instead of a dump of every known name."""
from __future__ import annotations

import difflib
from typing import Iterable

CUTOFF = 0.6        # difflib's default: below it a name is not "close"


def unknown(kind: str, name: str, known: Iterable[str], listing: str = "") -> str:
    """One line naming the unknown ``name`` and the closest known one.

    When several names are equally close (``node9`` against node1..node4) none
    is singled out: the known names are listed when they are few, else the
    line points at ``listing`` (the command that lists them).
    """
    choices = list(dict.fromkeys(known))
    score = {c: difflib.SequenceMatcher(None, name, c).ratio() for c in choices}
    best = max(score.values(), default=0.0)
    closest = [c for c in choices if score[c] == best]
    if best >= CUTOFF and len(closest) == 1:
        return f"unknown {kind} {name!r} (did you mean {closest[0]}?)"
    if listing and len(choices) > 8:
        return f"unknown {kind} {name!r} (`{listing}` lists them)"
    return f"unknown {kind} {name!r} (known: {', '.join(choices)})"
