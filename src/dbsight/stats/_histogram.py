"""A log-bucketed latency histogram: constant relative error, plain arithmetic, mergeable.

Bucket ``i`` holds durations in ``(GAMMA**(i-1), GAMMA**i]`` seconds; a quantile is
reported as the bucket's midpoint ``2 * GAMMA**i / (GAMMA + 1)``, which is within
``(GAMMA - 1) / (GAMMA + 1)`` (1.96 %) of every value in the bucket. The same scheme as
DDSketch: two histograms with the same ``GAMMA`` merge by adding counts, which is what
combining the tables of several worker processes needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

GAMMA = 1.04
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


def bucket_value(index: int) -> float:
    """The value a bucket stands for: the point of least relative error within it."""
    return 2.0 * GAMMA**index / (GAMMA + 1.0)


def quantiles(
    counts: Mapping[int, int], qs: tuple[float, ...], low: float, high: float
) -> tuple[float, ...]:
    """Estimate the quantiles ``qs`` (ascending, 0..1) from bucket counts.

    Results are clamped to the observed ``low``/``high`` so that p0 and p100 are exact.
    """
    total = sum(counts.values())
    if total == 0:
        return tuple(0.0 for _ in qs)
    results: list[float] = []
    keys = sorted(counts)
    cumulative = 0
    k = 0
    for q in qs:
        # nearest rank, 0-based: the smallest bucket whose cumulative count exceeds it
        rank = q * (total - 1)
        while k < len(keys) and cumulative + counts[keys[k]] <= rank:
            cumulative += counts[keys[k]]
            k += 1
        index = keys[min(k, len(keys) - 1)]
        results.append(min(max(bucket_value(index), low), high))
    return tuple(results)


def encode(counts: Mapping[int, int]) -> dict[str, int]:
    """Counts as a JSON object (JSON keys are strings)."""
    return {str(index): count for index, count in counts.items()}


def decode(data: Mapping[str, int]) -> dict[int, int]:
    return {int(index): int(count) for index, count in data.items()}
