"""Latency quantiles: exact while a fingerprint has few calls, then from a log-bucketed
histogram with a constant relative error (plain arithmetic, mergeable).

Every quantile dbsight reports has one definition, numpy's default ``linear`` method (the
same as ``statistics.quantiles(method="inclusive")``): of ``n`` sorted durations ``x``, the
quantile ``q`` lies at position ``h = q * (n - 1)`` and is ``x[j] + (h - j) * (x[j + 1] -
x[j])`` with ``j = floor(h)``. So p0 is the minimum and p100 the maximum, a higher ``q``
never gives less, and with few calls p99 lies close to the maximum (with two calls, 99 % of
the way from the faster to the slower).

While a fingerprint has at most `EXACT_SAMPLES` calls its durations are kept as they are and
the quantiles are exact (`exact_quantiles`). Past that, the durations go into buckets:
bucket ``i`` holds durations in ``(GAMMA**(i-1), GAMMA**i]`` seconds, the scheme of
DDSketch, so that two histograms with the same ``GAMMA`` merge by adding counts (which is
what combining the tables of several worker processes needs). The same formula then runs on
estimated durations (`quantiles`): the fastest and the slowest are the observed minimum and
maximum, every other one is the point of least relative error of its bucket's range
narrowed to [min, max], ``2 * lo * hi / (lo + hi)``, within ``(hi - lo) / (hi + lo)`` of
every duration in that range, so within `RELATIVE_ERROR` (1.96 %) of its true value. A
weighted mean of two estimates that are each within a relative error of their values is
within it of the same mean of the values: every quantile is within `RELATIVE_ERROR` of the
exact one (for durations above `MIN_DURATION_S`), and never below the minimum or above
the maximum.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

GAMMA = 1.04
# The bound on a histogram quantile's error, relative to the exact quantile.
RELATIVE_ERROR = (GAMMA - 1.0) / (GAMMA + 1.0)
# Up to this many calls a fingerprint keeps its durations (8 bytes each) and its quantiles
# are exact; the histogram takes over from the next call.
EXACT_SAMPLES = 64
_INV_LOG_GAMMA = 1.0 / math.log(GAMMA)
# Durations at or below 1 ns share the lowest bucket (log(0) is undefined).
MIN_DURATION_S = 1e-9
_MIN_INDEX = math.ceil(math.log(MIN_DURATION_S) * _INV_LOG_GAMMA)

_log = math.log
_ceil = math.ceil


def bucket_index(duration_s: float) -> int:
    """The bucket a duration falls into (about 0.15 µs)."""
    if duration_s <= MIN_DURATION_S:
        return _MIN_INDEX
    return _ceil(_log(duration_s) * _INV_LOG_GAMMA)


def bucket_counts(durations: Iterable[float]) -> dict[int, int]:
    """How many of ``durations`` each bucket holds."""
    counts: dict[int, int] = {}
    for duration in durations:
        index = bucket_index(duration)
        counts[index] = counts.get(index, 0) + 1
    return counts


def _interpolate(value_at: Callable[[int], float], n: int, q: float) -> float:
    """The quantile ``q`` of ``n`` ascending values, ``value_at(rank)`` (0-based) giving each."""
    position = q * (n - 1)
    rank = math.floor(position)
    if rank >= n - 1:
        return value_at(n - 1)
    if rank < 0:
        return value_at(0)
    low = value_at(rank)
    fraction = position - rank
    if fraction == 0.0:
        return low
    high = value_at(rank + 1)
    # clamped: rounding must not take the result past either neighbour (p99 <= max)
    return min(max(low + fraction * (high - low), low), high)


def exact_quantiles(durations: Iterable[float], qs: tuple[float, ...]) -> tuple[float, ...]:
    """The quantiles ``qs`` (each 0..1) of the durations themselves."""
    ordered = sorted(durations)
    if not ordered:
        return tuple(0.0 for _ in qs)
    return tuple(_interpolate(ordered.__getitem__, len(ordered), q) for q in qs)


def quantiles(
    counts: Mapping[int, int], qs: tuple[float, ...], low: float, high: float
) -> tuple[float, ...]:
    """Estimate the quantiles ``qs`` (each 0..1) from bucket counts, the observed minimum
    ``low`` and maximum ``high``: within `RELATIVE_ERROR` of the exact ones."""
    occupied = sorted((index, count) for index, count in counts.items() if count > 0)
    total = sum(count for _, count in occupied)
    if total == 0:
        return tuple(0.0 for _ in qs)
    # the ranks the quantiles fall between, each estimated in one pass over the buckets
    wanted: set[int] = set()
    for q in qs:
        rank = min(max(math.floor(q * (total - 1)), 0), total - 1)
        wanted.update((rank, min(rank + 1, total - 1)))
    estimates: dict[int, float] = {}
    k, below = 0, 0  # below: how many durations the buckets before ``occupied[k]`` hold
    for rank in sorted(wanted):
        while rank >= below + occupied[k][1]:
            below += occupied[k][1]
            k += 1
        estimates[rank] = _estimate(occupied[k][0], rank, total, low, high)
    return tuple(_interpolate(estimates.__getitem__, total, q) for q in qs)


def _estimate(index: int, rank: int, total: int, low: float, high: float) -> float:
    """The ``rank``-th fastest of ``total`` durations, which lies in bucket ``index``."""
    if rank == 0:
        return low
    if rank == total - 1:
        return high
    lo = low if index <= _MIN_INDEX else max(GAMMA ** (index - 1), low)
    hi = min(GAMMA**index, high)
    value = 2.0 * lo * hi / (lo + hi) if lo + hi > 0.0 else lo
    return min(max(value, low), high)


def encode(counts: Mapping[int, int]) -> dict[str, int]:
    """Counts as a JSON object (JSON keys are strings)."""
    return {str(index): count for index, count in counts.items()}


def decode(data: Mapping[str, int]) -> dict[int, int]:
    return {int(index): int(count) for index, count in data.items()}
