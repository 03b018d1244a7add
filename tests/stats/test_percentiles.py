"""Percentiles of the statistics table against numpy's default ``linear`` method (which
``statistics.quantiles(method="inclusive")`` computes too): exact while a fingerprint has
few calls, within the histogram's relative error after, in one table and merged from
several (one per worker process)."""

from __future__ import annotations

import dataclasses
import json
import random
import statistics
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from threads_at_once import run_at_once

from dbsight.core import Recorder, Settings
from dbsight.stats import FingerprintStats, StatsTable
from dbsight.stats._histogram import EXACT_SAMPLES, RELATIVE_ERROR, exact_quantiles, quantiles

QS = (0.5, 0.95, 0.99)

_recorder = Recorder(Settings())
_TEMPLATE = _recorder.finish(
    _recorder.start("SELECT * FROM orders WHERE id = 1", "postgresql", "t")
)


def numpy_linear(durations: list[float]) -> tuple[float, float, float]:
    """p50, p95 and p99 as numpy.percentile(..., method="linear") gives them."""
    if len(durations) == 1:
        return (durations[0],) * 3
    cuts = statistics.quantiles(durations, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def record_all(table: StatsTable, durations: list[float]) -> None:
    for duration in durations:
        table.record(dataclasses.replace(_TEMPLATE, duration_s=duration))


def percentiles(stats: FingerprintStats) -> tuple[float, float, float]:
    return stats.p50_s, stats.p95_s, stats.p99_s


def assert_guarantees(stats: FingerprintStats, durations: list[float]) -> None:
    """Ordered, within [min, max], and within the bound of numpy's value (exact while the
    durations are few)."""
    assert stats.calls == len(durations)
    assert (stats.min_time_s, stats.max_time_s) == (min(durations), max(durations))
    assert stats.min_time_s <= stats.p50_s <= stats.p95_s <= stats.p99_s <= stats.max_time_s
    bound = 1e-12 if len(durations) <= EXACT_SAMPLES else RELATIVE_ERROR * (1 + 1e-9)
    for q, got, want in zip(QS, percentiles(stats), numpy_linear(durations), strict=True):
        assert abs(got - want) <= bound * want, (len(durations), q, got, want)


# -- the distributions the table must cope with (durations in seconds) ----------------------------
def uniform(rng: random.Random) -> float:
    return rng.uniform(0.0001, 0.005)


def log_normal(rng: random.Random) -> float:
    return rng.lognormvariate(-7.0, 1.5)


def bimodal_with_outliers(rng: random.Random) -> float:
    """Cache hits and misses, and a few statements stuck behind a lock for seconds."""
    if rng.random() < 0.004:
        return rng.uniform(5.0, 30.0)
    if rng.random() < 0.7:
        return rng.lognormvariate(-8.5, 0.2)
    return rng.lognormvariate(-4.5, 0.3)


DISTRIBUTIONS: dict[str, Callable[[random.Random], float]] = {
    "uniform": uniform,
    "log-normal": log_normal,
    "bimodal-with-outliers": bimodal_with_outliers,
}
SIZES = (1, 2, 3, 4, 5, 7, 10, 20, 50, 63, 64, 65, 66, 100, 101, 250, 1000, 3333, 10_000)


def test_the_reported_example_three_calls():
    table = StatsTable()
    record_all(table, [0.000137, 0.000149, 0.000558])
    (stats,) = table.top()
    assert percentiles(stats) == pytest.approx((0.000149, 0.0005171, 0.00054982), rel=1e-12)


def test_two_calls_lie_between_the_two():
    table = StatsTable()
    record_all(table, [0.00049, 0.0639])
    (stats,) = table.top()
    fast, slow = 0.00049, 0.0639
    expected = tuple(fast + q * (slow - fast) for q in QS)
    assert percentiles(stats) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("distribution", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("size", SIZES)
def test_one_table_matches_numpy_linear(distribution: str, size: int):
    rng = random.Random(f"{distribution}-{size}")
    durations = [DISTRIBUTIONS[distribution](rng) for _ in range(size)]
    table = StatsTable()
    record_all(table, durations)
    (stats,) = table.top()
    assert_guarantees(stats, durations)


@pytest.mark.parametrize("seed", range(40))
def test_random_sizes_and_distributions(seed: int):
    rng = random.Random(seed)
    size = int(10 ** rng.uniform(0, 4))  # 1 to 10,000, as many small as large
    draw = DISTRIBUTIONS[rng.choice(sorted(DISTRIBUTIONS))]
    durations = [draw(rng) for _ in range(size)]
    table = StatsTable()
    record_all(table, durations)
    (stats,) = table.top()
    assert_guarantees(stats, durations)


@pytest.mark.parametrize(
    "sizes",
    [
        (1, 1),  # two workers with one call each
        (3, 2, 1, 1),
        (40, 24),  # exactly EXACT_SAMPLES together: still exact
        (40, 25),  # one more: the merged table has a histogram
        (1, 500),  # one side has a histogram, the other its samples
        (700, 5, 3000, 64),
        (0, 10),  # a worker that has not run the statement yet
    ],
)
@pytest.mark.parametrize("distribution", sorted(DISTRIBUTIONS))
def test_merging_worker_tables_keeps_the_guarantees(sizes: tuple[int, ...], distribution: str):
    rng = random.Random(f"{sizes}-{distribution}")
    draw = DISTRIBUTIONS[distribution]
    everything: list[float] = []
    snapshots = []
    for size in sizes:
        durations = [draw(rng) for _ in range(size)]
        everything += durations
        worker = StatsTable()
        record_all(worker, durations)
        snapshots.append(json.loads(json.dumps(worker.snapshot())))  # as the files carry them
    merged = StatsTable()
    merged.merge(snapshots)
    (stats,) = merged.top()
    assert_guarantees(stats, everything)


def test_merging_into_a_table_that_keeps_recording():
    rng = random.Random(5)
    mine, theirs = [log_normal(rng) for _ in range(30)], [log_normal(rng) for _ in range(30)]
    table, other = StatsTable(), StatsTable()
    record_all(table, mine)
    record_all(other, theirs)
    table.merge([other.snapshot()])
    later = [log_normal(rng) for _ in range(200)]
    record_all(table, later)
    (stats,) = table.top()
    assert_guarantees(stats, mine + theirs + later)


def test_memory_per_fingerprint_is_bounded():
    table = StatsTable()
    rng = random.Random(11)
    durations = [log_normal(rng) for _ in range(EXACT_SAMPLES)]
    record_all(table, durations)
    (snapshot,) = table.snapshot()
    assert snapshot["histogram"]["samples"] == durations and snapshot["histogram"]["counts"] == {}
    record_all(table, [log_normal(rng) for _ in range(1000)])
    (snapshot,) = table.snapshot()
    # past EXACT_SAMPLES calls only bucket counts remain, whatever the number of calls
    assert "samples" not in snapshot["histogram"]
    assert sum(snapshot["histogram"]["counts"].values()) == EXACT_SAMPLES + 1000


@given(st.lists(st.floats(min_value=0.0, max_value=3600.0), min_size=1, max_size=300))
def test_histogram_quantiles_are_ordered_and_within_min_and_max(durations: list[float]):
    table = StatsTable()
    record_all(table, durations)
    (stats,) = table.top()
    low, high = min(durations), max(durations)
    assert low <= stats.p50_s <= stats.p95_s <= stats.p99_s <= high
    (snapshot,) = table.snapshot()
    counts = {int(i): c for i, c in snapshot["histogram"]["counts"].items()}
    if counts:
        qs = (0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)
        estimates = quantiles(counts, qs, low, high)
        assert list(estimates) == sorted(estimates)
        assert estimates[0] == low and estimates[-1] == high


def test_no_durations_no_percentiles():
    assert exact_quantiles([], QS) == (0.0, 0.0, 0.0)
    assert quantiles({}, QS, 0.0, 0.0) == (0.0, 0.0, 0.0)


def test_durations_of_zero():
    table = StatsTable()
    record_all(table, [0.0] * 100 + [0.001])
    (stats,) = table.top()
    assert (stats.p50_s, stats.p95_s) == (0.0, 0.0)
    assert 0.0 <= stats.p99_s <= 0.001


@pytest.mark.parametrize("locked", [False, True])
def test_threads_lose_no_duration_while_the_samples_become_a_histogram(locked: bool):
    table = StatsTable()
    observe_all = table._observe_all_locked if locked else table.observe_all
    events = [
        dataclasses.replace(_TEMPLATE, fingerprint=f"f{i}", duration_s=0.001 * (1 + i % 7))
        for i in range(200)
    ]
    threads, rounds = 8, 20  # 160 calls per fingerprint: each one passes EXACT_SAMPLES
    errors: list[Exception] = []

    def work() -> None:
        # the threads record the same fingerprint at about the same time, one after another
        try:
            for event in events:  # (as the recorder hands a batch over: in one call)
                observe_all([event] * rounds)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    run_at_once([work] * threads)
    assert errors == []
    for entry in table.snapshot():
        histogram = entry["histogram"]
        assert "samples" not in histogram
        assert entry["calls"] == sum(histogram["counts"].values()) == threads * rounds
