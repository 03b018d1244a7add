"""Prometheus metrics of the clients that are not databases: caches and external HTTP APIs.

    cache_operations_total{backend, operation, result}       result: hit | miss | ok | error
    cache_operation_duration_seconds{backend, operation}
    external_api_requests_total{service, status}             status: "200" ... | "error"
    external_api_request_duration_seconds{service, status}

One object of each per configuration (``runtime.component``), registered in the runtime's
registry and unregistered by ``close()`` when ``configure()`` replaces the runtime. Cache
and HTTP calls take tens of microseconds or more, so plain prometheus_client metrics are
cheap enough here (about 2 µs a Redis command); each label set's bound ``inc``/``observe``
is cached (a `Series`), so a repeat costs one dictionary lookup instead of ``.labels()``.
The open-ended ``operation`` label passes a `LabelGuard`; ``service`` is guarded by the
caller (configured names are bounded, host names are not).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from ._guard import LabelGuard

if TYPE_CHECKING:
    from .._runtime import Runtime

# A cache round trip on loopback is ~0.1 ms; 2.5 s is a cache that is down.
CACHE_DURATION_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)
# External APIs: a few milliseconds (same data centre) to the usual 30 s client timeout.
EXTERNAL_API_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)

# Bound on cached label sets; past it, label sets are bound again on each call.
_MAX_BOUND = 10_000


class Series:
    """One label set's bound updates: ``observe(duration_s)`` of the histogram, and
    ``inc(result, n)`` of the counter (whose labels are the histogram's plus ``result``,
    when the counter has that label)."""

    __slots__ = ("observe", "_counter", "_labels", "_incs")

    def __init__(self, counter: Counter, histogram: Histogram, labels: tuple[str, ...]) -> None:
        self.observe: Callable[[float], None] = histogram.labels(*labels).observe
        self._counter = counter
        self._labels = labels
        self._incs: dict[str, Callable[[float], None]] = {}

    def inc(self, result: str = "", n: float = 1) -> None:
        inc = self._incs.get(result)
        if inc is None:
            labels = (*self._labels, result) if result else self._labels
            inc = self._incs[result] = self._counter.labels(*labels).inc  # few results
        inc(n)


class _RegisteredMetrics:
    """A counter and a histogram registered in one registry; ``close()`` unregisters both."""

    def __init__(self, registry: CollectorRegistry, counter: Counter, histogram: Histogram) -> None:
        self.registry = registry
        self._counter = counter
        self._histogram = histogram
        self._series: dict[tuple[str, ...], Series] = {}
        self._lock = threading.Lock()
        self._collectors: list[Any] = []
        try:
            for collector in (counter, histogram):
                registry.register(collector)
                self._collectors.append(collector)
        except Exception:
            self.close()
            raise

    def _bind(self, key: tuple[str, ...], labels: tuple[str, ...]) -> Series:
        """The series of ``labels`` (guarded values), cached under ``key`` (raw values)."""
        series = Series(self._counter, self._histogram, labels)
        with self._lock:
            if len(self._series) < _MAX_BOUND:
                series = self._series.setdefault(key, series)
        return series

    def close(self) -> None:
        """Unregister the metrics (idempotent)."""
        collectors, self._collectors = self._collectors, []
        for collector in collectors:
            try:
                self.registry.unregister(collector)
            except KeyError:  # the registry was cleared by someone else
                pass


class CacheMetrics(_RegisteredMetrics):
    """``cache_operations_total`` and ``cache_operation_duration_seconds``.

    ``series(backend, operation)`` gives the operation's `Series`; counting and observing
    are separate because one call may count several results (an MGET counts a hit or a
    miss per key) and a pipelined command is counted without a duration of its own (the
    pipeline has the duration).
    """

    KEY = "cache_metrics"

    def __init__(self, registry: CollectorRegistry, max_label_values: int) -> None:
        self._operation = LabelGuard(max_label_values)
        super().__init__(
            registry,
            Counter(
                "cache_operations",
                "Cache operations by result (hit, miss, ok, error).",
                ("backend", "operation", "result"),
                registry=None,
            ),
            Histogram(
                "cache_operation_duration_seconds",
                "Cache operation duration, as the client saw it.",
                ("backend", "operation"),
                buckets=CACHE_DURATION_BUCKETS,
                registry=None,
            ),
        )

    @classmethod
    def of(cls, runtime: Runtime) -> CacheMetrics:
        """The runtime's cache metrics, built on first use."""
        return runtime.component(
            cls.KEY, lambda rt: cls(rt.registry, rt.settings.metrics_max_label_values)
        )

    def series(self, backend: str, operation: str) -> Series:
        key = (backend, operation)
        found = self._series.get(key)
        if found is None:
            found = self._bind(key, (backend, self._operation(operation)))
        return found


class ExternalApiMetrics(_RegisteredMetrics):
    """``external_api_requests_total`` and ``external_api_request_duration_seconds``."""

    KEY = "external_api_metrics"

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(
            registry,
            Counter(
                "external_api_requests",
                "Requests to external HTTP APIs by service and status code (or 'error').",
                ("service", "status"),
                registry=None,
            ),
            Histogram(
                "external_api_request_duration_seconds",
                "External API request duration, as the client saw it.",
                ("service", "status"),
                buckets=EXTERNAL_API_DURATION_BUCKETS,
                registry=None,
            ),
        )

    @classmethod
    def of(cls, runtime: Runtime) -> ExternalApiMetrics:
        """The runtime's external API metrics, built on first use."""
        return runtime.component(cls.KEY, lambda rt: cls(rt.registry))

    def record(self, service: str, status: str, duration_s: float) -> None:
        """Count one request; ``service`` must already be a bounded label."""
        key = (service, status)
        series = self._series.get(key)
        if series is None:
            series = self._bind(key, key)
        series.inc()
        series.observe(duration_s)
