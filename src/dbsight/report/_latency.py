"""A statement's latency distribution when only its summary figures are known (minimum,
p50, p95, p99, maximum): the distribution through those points, log-linear between them
(latencies spread over orders of magnitude: linear segments put too many calls near the
slower end of each).

Two uses: merging the same statement's figures from several instances (durations placed
along it, or bucket counts, go into `StatsTable.merge`, which computes the percentiles of the
pooled calls), and the estimated latency histogram of the report when no capture holds the
real durations. The points are what the instance measured; between them the estimate can
differ from the truth, never at the reported percentiles of one instance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..stats._histogram import GAMMA, MIN_DURATION_S, bucket_index

# Up to this many calls a merged entry is represented by durations, past it by bucket counts.
MAX_SYNTHETIC = 4096
_QUANTILES = (("min_time_s", 0.0), ("p50_s", 0.5), ("p95_s", 0.95), ("p99_s", 0.99),
              ("max_time_s", 1.0))  # fmt: skip


def quantile_points(entry: Mapping[str, Any]) -> list[tuple[float, float]]:
    """``(duration_s, fraction of calls at or below it)`` of a summary entry, ascending;
    empty when the entry has no percentiles (pg_stat_statements knows none)."""
    points: list[tuple[float, float]] = []
    for key, q in _QUANTILES:
        value = entry.get(key)
        if value is None:
            return []
        value = max(float(value), MIN_DURATION_S)
        if points and value < points[-1][0]:
            value = points[-1][0]  # rounding never makes a higher quantile smaller
        points.append((value, q))
    return points


def cdf(points: Sequence[tuple[float, float]], x: float) -> float:
    """The fraction of calls at or below ``x`` (log-linear between the points)."""
    if not points or x < points[0][0]:
        return 0.0
    if x >= points[-1][0]:
        return 1.0
    fraction = 0.0
    for (v0, q0), (v1, q1) in zip(points, points[1:], strict=False):
        if x >= v1:
            fraction = q1
            continue
        if x >= v0:
            fraction = q0 + (q1 - q0) * math.log(x / v0) / math.log(v1 / v0)
        break
    return fraction


def apportion(masses: Sequence[float], total: int) -> list[int]:
    """Whole counts summing to ``total`` in proportion to ``masses`` (largest remainder)."""
    weight = sum(masses)
    if total <= 0 or weight <= 0:
        return [0 for _ in masses]
    exact = [m * total / weight for m in masses]
    counts = [math.floor(e) for e in exact]
    short = total - sum(counts)
    for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[:short]:
        counts[i] += 1
    return counts


def inverse_cdf(points: Sequence[tuple[float, float]], q: float) -> float:
    """The duration below which the fraction ``q`` of calls lie (log-linear between points)."""
    for (v0, q0), (v1, q1) in zip(points, points[1:], strict=False):
        if q <= q1:
            return v0 if q1 == q0 else v0 * (v1 / v0) ** ((q - q0) / (q1 - q0))
    return points[-1][0]


def synthetic_durations(entry: Mapping[str, Any]) -> list[float]:
    """``calls`` durations whose quantiles are the entry's (numpy's linear method puts the
    ``k``-th of ``n`` sorted durations at quantile ``k / (n - 1)``): exactly the real
    durations for up to three calls, and as close as the five points allow beyond.
    Empty past `MAX_SYNTHETIC` calls (`bucket_counts` then) or without percentiles."""
    points = quantile_points(entry)
    calls = int(entry.get("calls") or 0)
    if not points or calls <= 0 or calls > MAX_SYNTHETIC:
        return []
    if calls == 1:
        return [points[-1][0]]
    return [inverse_cdf(points, k / (calls - 1)) for k in range(calls)]


def bucket_counts(entry: Mapping[str, Any]) -> dict[int, int]:
    """The entry's calls spread over dbsight's histogram buckets (`stats._histogram`)
    following the distribution through its percentiles."""
    points = quantile_points(entry)
    calls = int(entry.get("calls") or 0)
    if not points or calls <= 0:
        return {}
    first, last = bucket_index(points[0][0]), bucket_index(points[-1][0])
    if first == last:
        return {first: calls}
    indexes = range(first, last + 1)
    masses = [cdf(points, GAMMA**i) - cdf(points, GAMMA ** (i - 1)) for i in indexes]
    return {i: n for i, n in zip(indexes, apportion(masses, calls), strict=True) if n}


def log_edges(low: float, high: float, bins: int) -> list[float]:
    """``bins + 1`` edges from ``low`` to ``high``, evenly spaced on a log scale."""
    low = max(low, MIN_DURATION_S)
    high = max(high, low * 1.0001)
    step = (math.log(high) - math.log(low)) / bins
    return [math.exp(math.log(low) + step * k) for k in range(bins + 1)]


def estimated_bins(entry: Mapping[str, Any], bins: int) -> list[tuple[float, float, float]]:
    """``(from_s, to_s, calls)`` of the entry's estimated distribution (fractional calls)."""
    points = quantile_points(entry)
    calls = float(entry.get("calls") or 0)
    if not points or calls <= 0:
        return []
    edges = log_edges(points[0][0], points[-1][0], bins)
    return [
        (lo, hi, calls * (cdf(points, hi) - (cdf(points, lo) if k else 0.0)))
        for k, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False))
    ]


def measured_bins(durations: Sequence[float], bins: int) -> list[tuple[float, float, float]]:
    """``(from_s, to_s, calls)`` of real durations over log-spaced bins."""
    if not durations:
        return []
    edges = log_edges(min(durations), max(durations), bins)
    counts = [0] * bins
    low = math.log(edges[0])
    width = (math.log(edges[-1]) - low) / bins
    for duration in durations:
        k = int((math.log(max(duration, MIN_DURATION_S)) - low) / width) if width > 0 else 0
        counts[min(max(k, 0), bins - 1)] += 1
    return [(lo, hi, float(n)) for lo, hi, n in zip(edges, edges[1:], counts, strict=False)]
