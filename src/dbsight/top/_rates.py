"""What happened between two polls: statements/s, errors/s, and each statement's calls/s and
share of the database time, from the difference of the cumulative counters.

The summary lists the top statements only, so a statement may be missing from the previous
poll. It is new in the interval when the service first saw it after that poll was generated
(its whole count is the interval's); otherwise it was merely outside the list and its rate
is unknown, which the view shows as such rather than crediting the interval with everything
it ever ran. A counter that went down means the service restarted: its count restarts too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..stats import FingerprintStats
from ._snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class StatementRate:
    """One statement over the interval: calls per second, and its share (0..1) of the time
    spent in all the listed statements whose rate is known."""

    calls_per_s: float
    time_share: float


@dataclass(frozen=True, slots=True)
class IntervalRates:
    """Totals over the listed statements between two polls, and each one's rate (only the
    statements with a known rate have an entry)."""

    elapsed_s: float
    statements_per_s: float
    errors_per_s: float
    statements: Mapping[str, StatementRate]


def interval_rates(previous: Snapshot | None, current: Snapshot) -> IntervalRates | None:
    """The rates between ``previous`` and ``current``; None without a previous poll or when
    no time passed between them."""
    if previous is None:
        return None
    elapsed = _elapsed(previous, current)
    if elapsed <= 0.0:
        return None
    before = {stats.fingerprint: stats for stats in previous.statements}
    deltas: dict[str, tuple[int, int, float]] = {}
    for stats in current.statements:
        delta = _delta(before.get(stats.fingerprint), stats, previous.generated_wall)
        if delta is not None:
            deltas[stats.fingerprint] = delta
    total_time = sum(time_s for _, _, time_s in deltas.values())
    return IntervalRates(
        elapsed_s=elapsed,
        statements_per_s=sum(calls for calls, _, _ in deltas.values()) / elapsed,
        errors_per_s=sum(errors for _, errors, _ in deltas.values()) / elapsed,
        statements={
            fingerprint: StatementRate(
                calls_per_s=calls / elapsed,
                time_share=time_s / total_time if total_time > 0.0 else 0.0,
            )
            for fingerprint, (calls, _, time_s) in deltas.items()
        },
    )


def _elapsed(previous: Snapshot, current: Snapshot) -> float:
    if previous.generated_wall is not None and current.generated_wall is not None:
        return current.generated_wall - previous.generated_wall
    return current.polled_at - previous.polled_at


def _delta(
    before: FingerprintStats | None, now: FingerprintStats, previous_wall: float | None
) -> tuple[int, int, float] | None:
    """(calls, errors, seconds) of ``now`` since ``before``; None when unknown."""
    if before is None:
        if previous_wall is None or now.first_seen < previous_wall:
            return None  # it existed then, outside the list: its count is not the interval's
        return now.calls, now.errors, now.total_time_s
    if now.calls < before.calls:  # the service restarted since: everything is new
        return now.calls, now.errors, now.total_time_s
    return (
        now.calls - before.calls,
        max(0, now.errors - before.errors),
        max(0.0, now.total_time_s - before.total_time_s),
    )
