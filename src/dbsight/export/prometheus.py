"""Prometheus metrics for database operations (names from the metrics catalogue).

Per statement the sink finds the `OperationSeries` of its label set by ``system`` then
``fingerprint`` (two dictionary lookups; a fingerprint always has the same operation and
table within a system, so the labels and their guards are resolved once per fingerprint) and
updates it with plain arithmetic, without a lock (see `_FREE_THREADED`), in a loop compiled
when the extension is built (`dbsight.export._metrics_fold`). A `_OperationsCollector` turns
the series into the usual counter and histogram families at scrape time; the update costs a
fraction of prometheus_client's ``Counter.inc`` + ``Histogram.observe`` (one lock and several
method calls each); the exposition has the same names, labels and types, without
``_created`` samples. Connection-pool gauges and observer failures are read only when the
registry is scraped.

A failed statement is also counted in ``db_client_errors_total`` by its SQLSTATE (the
5-character code, ``unknown`` when the client gave none) and the SQLSTATE's class (its first
two characters), under the sink's lock: errors are rare, so that path may cost more.
Open-ended labels (``table``, ``system``, ``route``, ``pool``, ``sqlstate``) pass a
`LabelGuard`.
"""

from __future__ import annotations

import re
import sys
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..core import QueryObserver, pools
from ._buckets import bucket_labels, cumulative
from ._guard import LabelGuard
from ._metrics_fold import DURATION_BUCKETS, OperationSeries, count_ok

if TYPE_CHECKING:
    from ..core import PoolRegistry, QueryContext, QueryEvent, Recorder, Settings

# With a GIL, `series.ok += 1` (and `buckets[i] += 1`) cannot lose an increment: the
# interpreter only switches threads at calls, backward jumps and function entry
# (CPython's eval-breaker checks), never between the load and the store of one such
# statement, and int/float additions and slot/list stores run no Python code (nor does the
# compiled loop of `_metrics_fold` call any there). The hot path therefore takes no lock (a
# `with lock:` would cost about 0.25 µs, as much as the rest of the update). A free-threaded
# build has no such guarantee and uses the locked variants.
_FREE_THREADED = not getattr(sys, "_is_gil_enabled", lambda: True)()

_BUCKET_LABELS = bucket_labels(DURATION_BUCKETS)

# A SQLSTATE label: five digits or upper-case letters; anything else (or none) is "unknown".
_SQLSTATE = re.compile(r"[0-9A-Z]{5}")
UNKNOWN_SQLSTATE = "unknown"

# Bound on cached (system, fingerprint) pairs; statements past it are resolved again on
# each event instead of growing the cache.
_MAX_BOUND = 10_000

# The sink currently registered in each registry: a new sink on the same registry takes
# over from one that was never closed, instead of failing with "Duplicated timeseries".
_owners: weakref.WeakKeyDictionary[CollectorRegistry, PrometheusSink] = (
    weakref.WeakKeyDictionary()
)
_owners_lock = threading.RLock()


def _no_flush() -> None:
    pass


class _ScrapeTimeCollector(Collector):
    """Pool usage and observer failures, read from their owners at scrape time."""

    def __init__(
        self, pool_registry: PoolRegistry, recorder: Recorder | None, guard: LabelGuard
    ) -> None:
        self._pools = pool_registry
        self._recorder = recorder
        self._guard = guard

    def _families(
        self,
    ) -> tuple[GaugeMetricFamily, GaugeMetricFamily, CounterMetricFamily, CounterMetricFamily]:
        return (
            GaugeMetricFamily(
                "db_client_connections",
                "Connections of each client pool by state (idle, used).",
                labels=["pool", "state"],
            ),
            GaugeMetricFamily(
                "db_client_connections_max",
                "Configured maximum size of each client pool.",
                labels=["pool"],
            ),
            CounterMetricFamily(
                "db_client_pool_timeouts",
                "Waits for a connection of a client pool that ended without one (timed out).",
                labels=["pool"],
            ),
            CounterMetricFamily(
                "dbsight_observer_errors",
                "Observer hooks that raised (the query itself was unaffected).",
                labels=["observer"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        connections, maximum, timeouts, failures = self._families()
        for name, usage in self._pools.read().items():
            pool = self._guard(name)
            connections.add_metric([pool, "idle"], usage.idle)
            connections.add_metric([pool, "used"], usage.used)
            if usage.max_size is not None:
                maximum.add_metric([pool], usage.max_size)
            if usage.timeouts is not None:
                timeouts.add_metric([pool], usage.timeouts)
        if self._recorder is not None:
            for observer, count in dict(self._recorder.failures.counts).items():
                failures.add_metric([observer], count)
        yield connections
        yield maximum
        yield timeouts
        yield failures


class _OperationsCollector(Collector):
    """``db_client_operations_total``, ``db_client_operation_duration_seconds``,
    ``db_client_slow_operations_total`` and ``db_client_errors_total``, read from the sink's
    series at scrape time."""

    def __init__(self, sink: PrometheusSink) -> None:
        self._sink = sink

    @staticmethod
    def _families() -> tuple[
        CounterMetricFamily, HistogramMetricFamily, CounterMetricFamily, CounterMetricFamily
    ]:
        return (
            CounterMetricFamily(
                "db_client_operations",
                "Database operations by outcome (ok, error).",
                labels=["system", "operation", "table", "outcome"],
            ),
            HistogramMetricFamily(
                "db_client_operation_duration_seconds",
                "Database operation duration, as the client saw it.",
                labels=["system", "operation", "table"],
            ),
            CounterMetricFamily(
                "db_client_slow_operations",
                "Database operations at or over the slow-query threshold.",
                labels=["system", "operation", "table"],
            ),
            CounterMetricFamily(
                "db_client_errors",
                "Failed database operations by SQLSTATE ('unknown' when the client gave "
                "none) and its class (the first two characters).",
                labels=["system", "operation", "table", "sqlstate", "error_class"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        operations, duration, slow, errors = self._families()
        sink = self._sink
        sink._flush()  # the statements a recorder still holds for the sink
        with sink._lock, sink._update_lock:
            rows = [
                (s.labels, s.ok, s.error, s.sum, list(s.buckets), s.slow, dict(s.by_sqlstate))
                for s in sink._by_labels.values()
            ]
        for labels, ok, error, total, counts, slow_count, by_sqlstate in rows:
            operations.add_metric([*labels, "ok"], ok)
            operations.add_metric([*labels, "error"], error)
            duration.add_metric(list(labels), cumulative(_BUCKET_LABELS, counts), total)
            slow.add_metric(list(labels), slow_count)
            for code_labels, count in by_sqlstate.items():
                errors.add_metric([*labels, *code_labels], count)
        yield operations
        yield duration
        yield slow
        yield errors


class PrometheusSink(QueryObserver):
    """Counts and times every statement into ``registry``; ``close()`` unregisters it all.

    Batched (see `dbsight.core.Recorder`): a scrape flushes the recorder first."""

    name = "dbsight.prometheus"
    batched = True
    # Reads events and keeps none of them: may be handed `dbsight.core._lean.LeanEvent`s.
    lean_events = True

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry,
        *,
        recorder: Recorder | None = None,
        pool_registry: PoolRegistry | None = None,
    ) -> None:
        self.registry = registry
        self._slow_s = settings.slow_query_threshold_s
        limit = settings.metrics_max_label_values
        self._table_guard = LabelGuard(limit)
        self._system_guard = LabelGuard(limit)
        self._route_guard = LabelGuard(limit)
        self._pool_guard = LabelGuard(limit)
        self._sqlstate_guard = LabelGuard(limit)
        # Guards the binding tables. Series updates take `_update_lock` on free-threaded
        # builds only (see _FREE_THREADED); never held while taking `_lock`.
        self._lock = threading.Lock()
        self._update_lock = threading.Lock()
        # system as seen in events -> fingerprint -> the series of its guarded label set
        self._bound: dict[str, dict[str, OperationSeries]] = {}
        # guarded labels -> series, so overflowing values share one series
        self._by_labels: dict[tuple[str, str, str], OperationSeries] = {}
        self._n_bound = 0
        self._n_plus_one_bound: dict[str | None, Callable[[], None]] = {}
        self._flush: Callable[[], None] = _no_flush
        self._registered: list[Collector] = []

        with _owners_lock:
            previous = _owners.get(registry)
            if previous is not None:
                previous.close()
            self.operations = _OperationsCollector(self)
            self.n_plus_one = Counter(
                "db_client_n_plus_one_total",
                "N+1 query patterns detected, by route.",
                ["route"],
                registry=None,
            )
            self.scrape_time = _ScrapeTimeCollector(
                pool_registry if pool_registry is not None else pools, recorder, self._pool_guard
            )
            try:
                for collector in (self.operations, self.n_plus_one, self.scrape_time):
                    registry.register(collector)
                    self._registered.append(collector)
            except Exception:
                self._unregister()
                raise
            _owners[registry] = self
        if _FREE_THREADED:
            self.after_batch = self._after_batch_locked  # type: ignore[method-assign]
            self.on_error = self._on_error_locked  # type: ignore[method-assign]

    def bind_flush(self, flush: Callable[[], None]) -> None:
        """Scrapes call ``flush()`` first: the statements a recorder still holds for us."""
        self._flush = flush

    # -- the hot path ----------------------------------------------------------------
    def after_query(self, ctx: QueryContext, event: QueryEvent) -> None:
        self.after_batch((event,))

    def after_batch(self, events: Iterable[QueryEvent]) -> None:
        """Count each of ``events`` (successful statements): the recorder's batch, in one
        call."""
        count_ok(self, events)

    def on_error(self, ctx: QueryContext, event: QueryEvent) -> None:
        bound = self._bound.get(event.system)
        series = bound.get(event.fingerprint) if bound is not None else None
        if series is None:
            series = self._bind(event)
        duration = event.duration_s
        series.error += 1
        series.sum += duration
        series.buckets[bisect_left(DURATION_BUCKETS, duration)] += 1
        if duration >= self._slow_s:
            series.slow += 1
        self._count_sqlstate(series, event)

    # -- the same, for free-threaded builds -------------------------------------------
    def _series(self, event: QueryEvent) -> OperationSeries:
        bound = self._bound.get(event.system)
        series = bound.get(event.fingerprint) if bound is not None else None
        return series if series is not None else self._bind(event)

    def _after_batch_locked(self, events: Iterable[QueryEvent]) -> None:
        for event in events:
            series = self._series(event)
            duration = event.duration_s
            with self._update_lock:
                series.ok += 1
                series.sum += duration
                series.buckets[bisect_left(DURATION_BUCKETS, duration)] += 1
                if duration >= self._slow_s:
                    series.slow += 1

    def _on_error_locked(self, ctx: QueryContext, event: QueryEvent) -> None:
        series = self._series(event)
        duration = event.duration_s
        with self._update_lock:
            series.error += 1
            series.sum += duration
            series.buckets[bisect_left(DURATION_BUCKETS, duration)] += 1
            if duration >= self._slow_s:
                series.slow += 1
        self._count_sqlstate(series, event)

    def _count_sqlstate(self, series: OperationSeries, event: QueryEvent) -> None:
        """Count a failed statement in ``db_client_errors_total`` by its SQLSTATE."""
        labels = self.sqlstate_labels(event.error.sqlstate if event.error is not None else None)
        with self._lock:
            counts = series.by_sqlstate
            counts[labels] = counts.get(labels, 0) + 1

    def sqlstate_labels(self, sqlstate: str | None) -> tuple[str, str]:
        """The ``(sqlstate, error_class)`` labels of a SQLSTATE: ``unknown`` for none (or
        for text that is not one), ``other`` for codes past the cardinality guard (their
        class is still told, as there are few classes)."""
        if sqlstate is None or not _SQLSTATE.fullmatch(sqlstate):
            return (UNKNOWN_SQLSTATE, UNKNOWN_SQLSTATE)
        return (self._sqlstate_guard(sqlstate), sqlstate[:2])

    def count_n_plus_one(self, route: str | None) -> None:
        """Count one detected N+1 pattern for ``route`` (the route template)."""
        inc = self._n_plus_one_bound.get(route)
        if inc is None:
            inc = self._bind_n_plus_one(route)
        inc()

    # -- binding label children (once per distinct label set) ------------------------
    def _bind(self, event: QueryEvent) -> OperationSeries:
        tables = event.tables
        system = event.system
        labels = (
            self._system_guard(system),
            event.operation,
            self._table_guard(tables[0] if tables else ""),
        )
        with self._lock:
            series = self._by_labels.get(labels)
            if series is None:
                series = self._by_labels[labels] = OperationSeries(labels)
            if self._n_bound < _MAX_BOUND:
                bound = self._bound.get(system)
                if bound is None:
                    bound = self._bound[system] = {}
                if event.fingerprint not in bound:
                    bound[event.fingerprint] = series
                    self._n_bound += 1
        return series

    def _bind_n_plus_one(self, route: str | None) -> Callable[[], None]:
        inc = self.n_plus_one.labels(self._route_guard(route or "")).inc
        with self._lock:
            if len(self._n_plus_one_bound) < _MAX_BOUND:
                self._n_plus_one_bound[route] = inc
        return inc

    # -- lifecycle ---------------------------------------------------------------------
    def _unregister(self) -> None:
        for collector in self._registered:
            try:
                self.registry.unregister(collector)
            except KeyError:  # already gone (the registry was cleared by someone else)
                pass
        self._registered = []

    def close(self) -> None:
        """Unregister every collector this sink registered (idempotent)."""
        with _owners_lock:
            self._unregister()
            if _owners.get(self.registry) is self:
                del _owners[self.registry]
