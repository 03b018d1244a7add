"""What happened between two polls: statements/s, errors/s, and each statement's calls/s and
share of the database time, from the difference of the cumulative counters.

The totals (statements/s, errors/s, and the time the shares are of) come from the summary's
``totals``, which count every statement; from a dbsight that sends none, from the listed ones.
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

Counts = tuple[int, int, float]  # calls, errors, seconds


@dataclass(frozen=True, slots=True)
class StatementRate:
    """One statement over the interval: calls per second, and its share (0..1) of the time
    spent in all statements (in the listed ones whose rate is known, without totals)."""

    calls_per_s: float
    time_share: float


@dataclass(frozen=True, slots=True)
class IntervalRates:
    """Totals over all statements between two polls (over the listed ones, without the
    summary's totals), and each listed one's rate (only those with a known rate have an
    entry)."""

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
    deltas: dict[str, Counts] = {}
    for stats in current.statements:
        delta = _delta(before.get(stats.fingerprint), stats, previous.generated_wall)
        if delta is not None:
            deltas[stats.fingerprint] = delta
    overall = _totals_delta(previous, current)
    if overall is None:  # listed statements only
        overall = (
            sum(calls for calls, _, _ in deltas.values()),
            sum(errors for _, errors, _ in deltas.values()),
            sum(time_s for _, _, time_s in deltas.values()),
        )
    all_calls, all_errors, total_time = overall
    return IntervalRates(
        elapsed_s=elapsed,
        statements_per_s=all_calls / elapsed,
        errors_per_s=all_errors / elapsed,
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


def _totals_delta(previous: Snapshot, current: Snapshot) -> Counts | None:
    """(calls, errors, seconds) of every statement between the polls; None without totals."""
    before, now = previous.totals, current.totals
    if before is None or now is None:
        return None
    return _since(
        (before.calls, before.errors, before.total_time_s),
        (now.calls, now.errors, now.total_time_s),
    )


def _delta(
    before: FingerprintStats | None, now: FingerprintStats, previous_wall: float | None
) -> Counts | None:
    """(calls, errors, seconds) of ``now`` since ``before``; None when unknown."""
    counts = (now.calls, now.errors, now.total_time_s)
    if before is None:
        if previous_wall is None or now.first_seen < previous_wall:
            return None  # it existed then, outside the list: its count is not the interval's
        return counts
    return _since((before.calls, before.errors, before.total_time_s), counts)


def _since(before: Counts, now: Counts) -> Counts:
    """``now`` less ``before``: counters that went down mean the service restarted since,
    and everything counted is new."""
    if now[0] < before[0]:
        return now
    return now[0] - before[0], max(0, now[1] - before[1]), max(0.0, now[2] - before[2])
