"""Per-fingerprint statement statistics: ``dbsight.stats.top(10)`` shows where the database
time goes."""

from __future__ import annotations

from typing import Any

from ._nplusone import NPlusOneFinding, NPlusOneLog, find_n_plus_one, report_n_plus_one
from ._samples import ParameterSamples, StatementSample
from ._sink import StatsSink
from ._table import (
    ORDER_BY,
    FingerprintStats,
    StatsTable,
    StatsTotals,
    check_order_by,
    stats_order_key,
)

__all__ = [
    "ORDER_BY",
    "FingerprintStats",
    "NPlusOneFinding",
    "NPlusOneLog",
    "ParameterSamples",
    "StatsSink",
    "StatsTable",
    "StatsTotals",
    "StatementSample",
    "check_order_by",
    "find_n_plus_one",
    "n_plus_one",
    "report_n_plus_one",
    "reset",
    "stats_order_key",
    "top",
]


def top(n: int = 20, order_by: str = "total_time") -> list[FingerprintStats]:
    """The current runtime's top ``n`` fingerprints by ``order_by`` (one of `ORDER_BY`)."""
    from .._runtime import get_runtime  # _runtime imports this package

    return get_runtime().stats.top(n, order_by)


def n_plus_one() -> list[dict[str, Any]]:
    """The current runtime's N+1 findings (`NPlusOneLog.snapshot()`), newest first."""
    from .._runtime import get_runtime

    return get_runtime().component("n_plus_one", NPlusOneLog).snapshot()


def reset() -> None:
    """Forget the current runtime's statistics (and the parameter samples kept with them)."""
    from .._runtime import get_runtime, parameter_samples

    runtime = get_runtime()
    runtime.stats.reset()
    sampler = parameter_samples(runtime)
    if sampler is not None:
        sampler.reset()
