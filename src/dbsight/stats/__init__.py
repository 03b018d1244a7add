"""Per-fingerprint statement statistics: ``dbsight.stats.top(10)`` shows where the database
time goes."""

from __future__ import annotations

from ._sink import StatsSink
from ._table import ORDER_BY, FingerprintStats, StatsTable

__all__ = ["ORDER_BY", "FingerprintStats", "StatsSink", "StatsTable", "reset", "top"]


def top(n: int = 20, order_by: str = "total_time") -> list[FingerprintStats]:
    """The current runtime's top ``n`` fingerprints by ``order_by`` (one of `ORDER_BY`)."""
    from .._runtime import get_runtime  # _runtime imports this package

    return get_runtime().stats.top(n, order_by)


def reset() -> None:
    """Forget the current runtime's statistics."""
    from .._runtime import get_runtime

    get_runtime().stats.reset()
