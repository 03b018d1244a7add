"""PromQL building blocks the dashboards share, so every panel selects, rates and takes
quantiles the same way (``job=~"$service"``, ``$__rate_interval`` windows)."""

from __future__ import annotations

from ._model import RATE

SERVICE = 'job=~"$service"'
ROUTE = 'route=~"$route"'


def selector(metric: str, *matchers: str) -> str:
    """``metric{job=~"$service", ...}``."""
    return f"{metric}{{{', '.join((SERVICE, *matchers))}}}"


def rate(metric: str, *matchers: str) -> str:
    return f"rate({selector(metric, *matchers)}[{RATE}])"


def sum_rate(metric: str, *matchers: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} ({rate(metric, *matchers)})"


def quantile(q: float, histogram: str, *matchers: str, by: str = "") -> str:
    """``histogram_quantile`` over the ``_bucket`` series of ``histogram`` (its base name)."""
    grouping = f"le, {by}" if by else "le"
    return (
        f"histogram_quantile({q:g}, sum by ({grouping}) ({rate(histogram + '_bucket', *matchers)}))"
    )


def ratio(numerator: str, denominator: str) -> str:
    return f"{numerator}\n/\n{denominator}"
