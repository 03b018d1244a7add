"""Numbers and times as the report prints them."""

from __future__ import annotations

import math
import time


def duration(seconds: float | None) -> str:
    """``0.42 ms``, ``12.3 ms``, ``1.25 s``; ``–`` when unknown."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    ms = seconds * 1000.0
    if ms < 1.0:
        return f"{ms:.3f} ms"
    if ms < 100.0:
        return f"{ms:.2f} ms"
    if ms < 1000.0:
        return f"{ms:.0f} ms"
    if seconds < 60.0:
        return f"{seconds:.2f} s"
    return f"{seconds / 60.0:.1f} min"


def ms(value: float | None) -> str:
    return "–" if value is None else duration(value / 1000.0)


def count(value: float | int | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def ratio(before: float | None, after: float | None) -> str:
    """``40×`` faster (or ``1.2× slower``); empty when either is unknown."""
    if not before or not after or before <= 0 or after <= 0:
        return ""
    if before >= after:
        factor = before / after
        return f"{factor:.0f}× faster" if factor >= 10 else f"{factor:.1f}× faster"
    return f"{after / before:.1f}× slower"


def utc(epoch: float | None, with_date: bool = True) -> str:
    if epoch is None:
        return "–"
    pattern = "%Y-%m-%d %H:%M:%S UTC" if with_date else "%H:%M:%S"
    return time.strftime(pattern, time.gmtime(epoch))


def span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
