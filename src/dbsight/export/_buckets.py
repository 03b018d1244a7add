"""Histogram buckets kept as plain per-slot counts on the hot path, turned into Prometheus's
cumulative ``le`` buckets when scraped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.utils import floatToGoString


def bucket_labels(bounds: Sequence[float]) -> tuple[str, ...]:
    """The ``le`` label of each slot: the bounds, then ``+Inf``."""
    return (*(floatToGoString(bound) for bound in bounds), "+Inf")


def cumulative(labels: Sequence[str], counts: Iterable[int]) -> list[tuple[str, float]]:
    """Per-slot counts as ``(le, count of observations <= le)`` pairs."""
    total = 0
    buckets: list[tuple[str, float]] = []
    for le, count in zip(labels, counts):
        total += count
        buckets.append((le, total))
    return buckets
