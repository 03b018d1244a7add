"""HTTP server metrics of an instrumented app (names from the metrics catalogue):
``http_server_requests_total{method, route, status}``,
``http_server_request_duration_seconds{method, route}``,
``http_server_request_db_seconds_total{method, route}`` (the time the requests spent in
database statements: with the duration's sum, the share of request time spent in the
database) and ``http_server_active_requests{method}``.

One `HttpMetrics` per runtime (``runtime.component("http_metrics", HttpMetrics)``), registered
in the runtime's registry and unregistered by ``close()`` when ``configure()`` replaces it.
As for the database metrics (`dbsight.export.prometheus`), a request updates plain counters
of its label set without a lock (with a GIL, ``x += 1`` on a slot cannot lose an update:
see ``_FREE_THREADED`` there), and a collector turns them into the usual counter, histogram
and gauge families at scrape time: prometheus_client's ``inc``/``observe`` take a lock and
several calls each, per request. ``route`` is a route template and passes a `LabelGuard`
all the same; ``method`` is one of the HTTP methods or ``_OTHER`` (clients can send any
token there).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ._buckets import bucket_labels, cumulative
from ._guard import LabelGuard

if TYPE_CHECKING:
    from .._runtime import Runtime

# Server latency: 5 ms (a cached read) to 30 s (a proxy's timeout).
HTTP_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0,
)
_BUCKET_LABELS = bucket_labels(HTTP_DURATION_BUCKETS)
KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)
OTHER_METHOD = "_OTHER"

# Bound on (method, route) label sets kept apart; beyond it the route label is "other".
_MAX_SERIES = 10_000


def method_label(method: str) -> str:
    """``method`` when it is a standard HTTP method, else ``_OTHER`` (bounded label)."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


class _Series:
    """One ``(method, route)``: requests per status, and their durations.

    ``buckets[i]`` counts durations in ``(BUCKETS[i-1], BUCKETS[i]]`` (the last slot is
    ``+Inf``), not cumulative, so a request adds to one slot."""

    __slots__ = ("buckets", "db_sum", "method", "route", "statuses", "sum")

    def __init__(self, method: str, route: str) -> None:
        self.method = method
        self.route = route
        self.statuses: dict[int, int] = {}
        self.sum = 0.0
        self.db_sum = 0.0
        self.buckets = [0] * (len(HTTP_DURATION_BUCKETS) + 1)


class _Active:
    """Requests in progress for one method."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class HttpMetrics(Collector):
    """The ``http_server_*`` families of one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = runtime.registry
        self._route_guard = LabelGuard(runtime.settings.metrics_max_label_values)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], _Series] = {}
        self._active: dict[str, _Active] = {}
        self._registered = False
        self.registry.register(self)
        self._registered = True

    # -- per request -------------------------------------------------------------------
    def started(self, method: str) -> _Active:
        """Count one more active request; give what it returns to `finished`."""
        active = self._active.get(method)
        if active is None:
            with self._lock:
                active = self._active.setdefault(method, _Active())
        active.count += 1
        return active

    def finished(
        self, active: _Active, method: str, route: str, status: int, duration_s: float,
        db_s: float = 0.0,
    ) -> None:
        """One request less in progress; count and time it (``route`` is the template;
        ``db_s``: the time its database statements took)."""
        active.count -= 1
        series = self._series.get((method, route))
        if series is None:
            series = self._bind(method, route)
        statuses = series.statuses
        if status in statuses:
            statuses[status] += 1
        else:
            with self._lock:
                statuses[status] = statuses.get(status, 0) + 1
        series.sum += duration_s
        series.db_sum += db_s
        series.buckets[bisect_left(HTTP_DURATION_BUCKETS, duration_s)] += 1

    def _bind(self, method: str, route: str) -> _Series:
        label = self._route_guard(route)
        with self._lock:
            if len(self._series) >= _MAX_SERIES:
                route = label = "other"
            series = self._series.get((method, route))
            if series is None:
                series = self._series[(method, route)] = _Series(method, label)
        return series

    # -- scrape ------------------------------------------------------------------------
    @staticmethod
    def _families() -> tuple[
        CounterMetricFamily, HistogramMetricFamily, CounterMetricFamily, GaugeMetricFamily
    ]:
        return (
            CounterMetricFamily(
                "http_server_requests",
                "HTTP requests served, by method, route template and status code.",
                labels=["method", "route", "status"],
            ),
            HistogramMetricFamily(
                "http_server_request_duration_seconds",
                "HTTP request duration until the response was sent, by method and route "
                "template.",
                labels=["method", "route"],
            ),
            CounterMetricFamily(
                "http_server_request_db_seconds",
                "Time HTTP requests spent in database statements, by method and route "
                "template (with the request duration's sum: the database's share).",
                labels=["method", "route"],
            ),
            GaugeMetricFamily(
                "http_server_active_requests",
                "HTTP requests in progress, by method.",
                labels=["method"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        requests, duration, db_time, active = self._families()
        with self._lock:
            rows = [
                (s.method, s.route, dict(s.statuses), s.sum, list(s.buckets), s.db_sum)
                for s in self._series.values()
            ]
            actives = [(method, a.count) for method, a in self._active.items()]
        # Several routes past the guard share the label "other": add them up.
        merged: dict[tuple[str, str], tuple[dict[int, int], float, list[int], float]] = {}
        for method, route, statuses, total, counts, db_total in rows:
            known = merged.get((method, route))
            if known is None:
                merged[(method, route)] = (statuses, total, counts, db_total)
                continue
            for status, n in statuses.items():
                known[0][status] = known[0].get(status, 0) + n
            merged[(method, route)] = (
                known[0], known[1] + total, [a + b for a, b in zip(known[2], counts)],
                known[3] + db_total,
            )
        for (method, route), (statuses, total, counts, db_total) in merged.items():
            for status, n in sorted(statuses.items()):
                requests.add_metric([method, route, str(status)], n)
            duration.add_metric([method, route], cumulative(_BUCKET_LABELS, counts), total)
            db_time.add_metric([method, route], db_total)
        for method, count in actives:
            active.add_metric([method], count)
        yield requests
        yield duration
        yield db_time
        yield active

    def close(self) -> None:
        """Unregister the families (idempotent); ``Runtime.close()`` calls it."""
        if self._registered:
            self._registered = False
            try:
                self.registry.unregister(self)
            except KeyError:  # the registry was cleared by someone else
                pass
