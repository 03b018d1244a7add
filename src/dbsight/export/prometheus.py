"""Prometheus metrics for database operations (names from the metrics catalogue).

Per statement the sink finds the pre-bound children for ``(system, operation, table)`` with
one dictionary lookup and increments them; ``.labels()`` runs once per distinct label set.
Connection-pool gauges and observer failures are read only when the registry is scraped.
Open-ended labels (``table``, ``system``, ``route``, ``pool``) pass a `LabelGuard`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..core import QueryObserver, pools
from ._guard import LabelGuard

if TYPE_CHECKING:
    from ..core import PoolRegistry, QueryContext, QueryEvent, Recorder, Settings

# Database latency: 0.5 ms (a cached point lookup on loopback) to 10 s (a statement timeout).
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

# Bound on cached raw label tuples; label sets that overflow the guards past it are
# bound again on each event instead of growing the cache.
_MAX_BOUND = 10_000

# The sink currently registered in each registry: a new sink on the same registry takes
# over from one that was never closed, instead of failing with "Duplicated timeseries".
_owners: weakref.WeakKeyDictionary[CollectorRegistry, PrometheusSink] = (
    weakref.WeakKeyDictionary()
)
_owners_lock = threading.RLock()


class _ScrapeTimeCollector(Collector):
    """Pool usage and observer failures, read from their owners at scrape time."""

    def __init__(
        self, pool_registry: PoolRegistry, recorder: Recorder | None, guard: LabelGuard
    ) -> None:
        self._pools = pool_registry
        self._recorder = recorder
        self._guard = guard

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, CounterMetricFamily]:
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
                "dbsight_observer_errors",
                "Observer hooks that raised (the query itself was unaffected).",
                labels=["observer"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        connections, maximum, failures = self._families()
        for name, usage in self._pools.read().items():
            pool = self._guard(name)
            connections.add_metric([pool, "idle"], usage.idle)
            connections.add_metric([pool, "used"], usage.used)
            if usage.max_size is not None:
                maximum.add_metric([pool], usage.max_size)
        if self._recorder is not None:
            for observer, count in dict(self._recorder.failures.counts).items():
                failures.add_metric([observer], count)
        yield connections
        yield maximum
        yield failures


class PrometheusSink(QueryObserver):
    """Counts and times every statement into ``registry``; ``close()`` unregisters it all."""

    name = "dbsight.prometheus"

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
        self._lock = threading.Lock()
        # (system, operation, table) as seen in events -> (ok.inc, error.inc, observe, slow.inc)
        self._bound: dict[tuple[str, str, str], tuple[Callable[..., Any], ...]] = {}
        # the same keyed by guarded labels, so overflowing values share one set of children
        self._by_labels: dict[tuple[str, str, str], tuple[Callable[..., Any], ...]] = {}
        self._n_plus_one_bound: dict[str | None, Callable[[], None]] = {}
        self._registered: list[Collector] = []

        with _owners_lock:
            previous = _owners.get(registry)
            if previous is not None:
                previous.close()
            self.operations = Counter(
                "db_client_operations_total",
                "Database operations by outcome (ok, error).",
                ["system", "operation", "table", "outcome"],
                registry=None,
            )
            self.duration = Histogram(
                "db_client_operation_duration_seconds",
                "Database operation duration, as the client saw it.",
                ["system", "operation", "table"],
                buckets=DURATION_BUCKETS,
                registry=None,
            )
            self.slow = Counter(
                "db_client_slow_operations_total",
                "Database operations at or over the slow-query threshold.",
                ["system", "operation", "table"],
                registry=None,
            )
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
                for collector in (
                    self.operations, self.duration, self.slow, self.n_plus_one, self.scrape_time
                ):
                    registry.register(collector)
                    self._registered.append(collector)
            except Exception:
                self._unregister()
                raise
            _owners[registry] = self

    # -- the hot path ----------------------------------------------------------------
    def after_query(self, ctx: QueryContext, event: QueryEvent) -> None:
        tables = event.tables
        key = (event.system, event.operation, tables[0] if tables else "")
        children = self._bound.get(key) or self._bind(key)
        duration = event.duration_s
        children[0]()
        children[2](duration)
        if duration >= self._slow_s:
            children[3]()

    def on_error(self, ctx: QueryContext, event: QueryEvent) -> None:
        tables = event.tables
        key = (event.system, event.operation, tables[0] if tables else "")
        children = self._bound.get(key) or self._bind(key)
        duration = event.duration_s
        children[1]()
        children[2](duration)
        if duration >= self._slow_s:
            children[3]()

    def count_n_plus_one(self, route: str | None) -> None:
        """Count one detected N+1 pattern for ``route`` (the route template)."""
        inc = self._n_plus_one_bound.get(route)
        if inc is None:
            inc = self._bind_n_plus_one(route)
        inc()

    # -- binding label children (once per distinct label set) ------------------------
    def _bind(self, key: tuple[str, str, str]) -> tuple[Callable[..., Any], ...]:
        system, operation, table = key
        labels = (self._system_guard(system), operation, self._table_guard(table))
        with self._lock:
            children = self._by_labels.get(labels)
            if children is None:
                children = (
                    self.operations.labels(*labels, "ok").inc,
                    self.operations.labels(*labels, "error").inc,
                    self.duration.labels(*labels).observe,
                    self.slow.labels(*labels).inc,
                )
                self._by_labels[labels] = children
            if len(self._bound) < _MAX_BOUND:
                self._bound[key] = children
        return children

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
