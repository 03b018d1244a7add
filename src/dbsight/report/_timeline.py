"""Statements per second and their p95 over time: the capture's statement records (every
statement) or, without a capture, the slow-query records (slow statements only), in time
buckets of a round width chosen for about `TARGET_BUCKETS` of them."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..stats._histogram import exact_quantiles
from ._inputs import CaptureStatement

TARGET_BUCKETS = 60
# Widths a bucket may have (seconds): the smallest giving at most TARGET_BUCKETS buckets.
WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


@dataclass(frozen=True, slots=True)
class Bucket:
    start: float  # epoch seconds
    statements: int
    errors: int
    per_s: float
    p50_ms: float | None
    p95_ms: float | None


@dataclass(slots=True)
class Timeline:
    """``source`` is "capture" (every statement) or "slow log" (slow statements only)."""

    source: str
    bucket_s: float
    buckets: list[Bucket] = field(default_factory=list)

    @property
    def start(self) -> float | None:
        return self.buckets[0].start if self.buckets else None

    @property
    def end(self) -> float | None:
        return self.buckets[-1].start + self.bucket_s if self.buckets else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "bucket_s": self.bucket_s,
            "buckets": [asdict(bucket) for bucket in self.buckets],
        }


def bucket_width(span_s: float) -> float:
    for width in WIDTHS:
        if span_s / width <= TARGET_BUCKETS:
            return float(width)
    return float(WIDTHS[-1])


def timeline(source: str, events: Iterable[tuple[float, float, bool]]) -> Timeline | None:
    """Bucket ``(at, duration_s, failed)`` events; None without any."""
    items = sorted(events)
    if not items:
        return None
    first, last = items[0][0], items[-1][0]
    width = bucket_width(last - first)
    origin = first - first % width  # buckets on round times
    count = int((last - origin) // width) + 1
    durations: list[list[float]] = [[] for _ in range(count)]
    errors = [0] * count
    for at, duration, failed in items:
        k = min(int((at - origin) // width), count - 1)
        durations[k].append(duration)
        errors[k] += failed
    buckets = []
    for k in range(count):
        runs = durations[k]
        p50, p95 = exact_quantiles(runs, (0.5, 0.95)) if runs else (None, None)
        buckets.append(
            Bucket(
                start=origin + k * width,
                statements=len(runs),
                errors=errors[k],
                per_s=len(runs) / width,
                p50_ms=None if p50 is None else p50 * 1000.0,
                p95_ms=None if p95 is None else p95 * 1000.0,
            )
        )
    return Timeline(source, width, buckets)


def from_capture(captured: Iterable[CaptureStatement]) -> Timeline | None:
    return timeline("capture", ((r.at, r.duration_s, r.sqlstate is not None) for r in captured))


def _epoch(ts: str) -> float:
    """A slow-log ``ts`` (``2026-12-06T00:10:11.123Z``) as epoch seconds."""
    head, _, millis = ts.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    return seconds + (int(millis) / 10 ** len(millis) if millis.isdigit() else 0.0)


def from_slow(records: Iterable[Mapping[str, Any]]) -> Timeline | None:
    """The slow statements' timeline (``ts`` is when each ended)."""
    events = []
    for record in records:
        try:
            duration = float(record["duration_ms"]) / 1000.0
            events.append((_epoch(str(record["ts"])) - duration, duration,
                           record.get("outcome", "ok") != "ok"))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            continue  # a record of another shape has no place on the timeline
    return timeline("slow log", events)
