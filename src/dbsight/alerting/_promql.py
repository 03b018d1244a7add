"""Small PromQL builders the rule families share, so every p95 and every ratio is written the
same way (and reads the same in the rule file)."""

from __future__ import annotations


def by(*labels: str) -> str:
    return ", ".join(labels)


def p95(histogram: str, labels: tuple[str, ...], window: str, selector: str = "") -> str:
    """The 95th percentile of a histogram family's rate over ``window``, per ``labels``."""
    inner = f"rate({histogram}_bucket{_braces(selector)}[{window}])"
    return f"histogram_quantile(0.95, sum by ({by(*labels, 'le')}) ({inner}))"


def rate_sum(counter: str, labels: tuple[str, ...], window: str, selector: str = "") -> str:
    return f"sum by ({by(*labels)}) (rate({counter}{_braces(selector)}[{window}]))"


def increase_sum(counter: str, labels: tuple[str, ...], window: str, selector: str = "") -> str:
    return f"sum by ({by(*labels)}) (increase({counter}{_braces(selector)}[{window}]))"


def events_sum(counter: str, labels: tuple[str, ...], window: str, selector: str = "") -> str:
    """How many events ``counter`` counted in ``window``, per ``labels``, the first one of a
    series included. A counter labelled by what happened (a SQLSTATE, a function) gets its
    series with its first event, already at 1, and ``increase()`` never sees that step: a
    series that had no sample ``window`` ago counts with its whole value instead. (A target
    Prometheus starts scraping when it has counted for long counts its whole past once.)"""
    series = f"{counter}{_braces(selector)}"
    return (
        f"sum by ({by(*labels)}) (\n"
        f"  (increase({series}[{window}]) and {series} offset {window})\n"
        f"  or\n"
        f"  {series}\n"
        f")"
    )


def ratio(numerator: str, denominator: str) -> str:
    """``numerator / denominator`` of two aggregated expressions (no series where the
    denominator is 0: nothing happened, nothing to alert on)."""
    return f"(\n  {numerator}\n/\n  {denominator}\n)"


def value(number: float) -> str:
    """A threshold as PromQL reads it, without float noise (0.1, not 0.10000000000000001)."""
    return f"{number:.10g}"


def _braces(selector: str) -> str:
    return f"{{{selector}}}" if selector else ""


def percent(ratio: float) -> str:
    """A ratio as people read a percentage: 0.05 -> ``5%``, 0.999 -> ``99.9%``."""
    return f"{ratio * 100:.6g}%"
