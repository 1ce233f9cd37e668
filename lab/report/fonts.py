"""CJK glyphs in the report's charts.

matplotlib's default font (DejaVu Sans) has no Chinese glyphs: a chart of a run made in Chinese
(``LAB_LANG=zh``) would show boxes and warn "Glyph … missing from font(s)". scripts/bootstrap.sh
installs Debian's ``fonts-wqy-zenhei`` (7 MB, Chinese glyph forms; Noto CJK is 56 MB and its first
face is the Japanese one); when it, or a Noto CJK font, is installed, it follows the default font
in ``font.family`` and matplotlib (>= 3.6) falls back to it glyph by glyph. Latin text keeps
DejaVu Sans.
"""
from __future__ import annotations

import logging

# first installed one wins; all are Debian 12 packages (fonts-wqy-zenhei, fonts-wqy-microhei, fonts-noto-cjk)
CJK_FAMILIES = ("WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans CJK JP")
INSTALL_HINT = "apt-get install fonts-wqy-zenhei (scripts/bootstrap.sh does)"


def cjk_family() -> str | None:
    """The first CJK font family matplotlib knows on this machine, or None. matplotlib's font
    cache is built once (~/.cache/matplotlib); a CJK font installed after it was built is added
    from the system's font list here."""
    from matplotlib import font_manager
    manager = font_manager.fontManager
    known = {f.name for f in manager.ttflist}
    found = next((f for f in CJK_FAMILIES if f in known), None)
    if found is None:
        cached = {f.fname for f in manager.ttflist}
        for path in font_manager.findSystemFonts():
            name = path.rsplit("/", 1)[-1].lower()
            if path not in cached and ("wqy" in name or "cjk" in name):
                try:
                    manager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        known = {f.name for f in manager.ttflist}
        found = next((f for f in CJK_FAMILIES if f in known), None)
    return found


def use_cjk_fallback() -> str | None:
    """Make the installed CJK family the fallback of the default font (idempotent); returns it, or
    None when no CJK font is installed (charts then draw Latin text only correctly). matplotlib
    falls back glyph by glyph only across the families *listed* in ``font.family``, not within
    the generic "sans-serif" alias, hence the family list."""
    import matplotlib
    family = cjk_family()
    if family is None:
        return None
    _quiet_weight_substitution()
    chain = [f for f in matplotlib.rcParams["font.family"] if f not in CJK_FAMILIES]
    matplotlib.rcParams["font.family"] = (chain or ["sans-serif"]) + [family]
    return family


class _WeightSubstitution(logging.Filter):
    """WenQuanYi Zen Hei has one weight (500); matplotlib logs a warning each time it uses it for
    "normal" or "bold" text. That is expected here, not news for the person making a report."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("findfont: Failed to find font weight") and any(f in msg for f in CJK_FAMILIES))


def _quiet_weight_substitution() -> None:
    log = logging.getLogger("matplotlib.font_manager")
    if not any(isinstance(f, _WeightSubstitution) for f in log.filters):
        log.addFilter(_WeightSubstitution())
