"""HTTP server metrics of an instrumented app (names from the metrics catalogue):
``http_server_requests_total{method, route, status}``,
``http_server_request_duration_seconds{method, route}`` and
``http_server_active_requests{method}``.

One `HttpMetrics` per runtime (``runtime.component("http_metrics", HttpMetrics)``), registered
in the runtime's registry and unregistered by ``close()`` when ``configure()`` replaces it.
Label children are bound once per label set and kept (``.labels()`` costs a lock and a few
dictionary operations). ``route`` is a route template and passes a `LabelGuard` all the same;
``method`` is one of the HTTP methods or ``_OTHER`` (clients can send any token there).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

from ._guard import LabelGuard

if TYPE_CHECKING:
    from .._runtime import Runtime

# Server latency: 5 ms (a cached read) to 30 s (a proxy's timeout).
HTTP_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0,
)
KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)
OTHER_METHOD = "_OTHER"

# Bound on cached label children; label sets beyond it are looked up again each time.
_MAX_BOUND = 10_000


def method_label(method: str) -> str:
    """``method`` when it is a standard HTTP method, else ``_OTHER`` (bounded label)."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


class HttpMetrics:
    """The ``http_server_*`` families of one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = runtime.registry
        self._route_guard = LabelGuard(runtime.settings.metrics_max_label_values)
        self._lock = threading.Lock()
        # (method, route, status) -> bound counter inc, (method, route) -> histogram observe
        self._counted: dict[tuple[str, str, int], Callable[[], None]] = {}
        self._timed: dict[tuple[str, str], Callable[[float], None]] = {}
        self._active: dict[str, Gauge] = {}
        self.requests = Counter(
            "http_server_requests_total",
            "HTTP requests served, by method, route template and status code.",
            ["method", "route", "status"],
            registry=None,
        )
        self.duration = Histogram(
            "http_server_request_duration_seconds",
            "HTTP request duration until the response was sent, by method and route template.",
            ["method", "route"],
            buckets=HTTP_DURATION_BUCKETS,
            registry=None,
        )
        self.active = Gauge(
            "http_server_active_requests",
            "HTTP requests in progress, by method.",
            ["method"],
            registry=None,
        )
        self._registered: list[object] = []
        try:
            for collector in (self.requests, self.duration, self.active):
                self.registry.register(collector)
                self._registered.append(collector)
        except Exception:
            self.close()
            raise

    def started(self, method: str) -> Gauge:
        """Count one more active request; returns the gauge child to ``dec()`` at the end."""
        gauge = self._active.get(method)
        if gauge is None:
            with self._lock:
                gauge = self._active.get(method)
                if gauge is None:
                    gauge = self._active[method] = self.active.labels(method)
        gauge.inc()
        return gauge

    def finished(self, method: str, route: str, status: int, duration_s: float) -> None:
        """Count and time one served request (``route`` is the template)."""
        inc = self._counted.get((method, route, status))
        if inc is None:
            inc = self._bind_count(method, route, status)
        inc()
        observe = self._timed.get((method, route))
        if observe is None:
            observe = self._bind_time(method, route)
        observe(duration_s)

    def _bind_count(self, method: str, route: str, status: int) -> Callable[[], None]:
        inc = self.requests.labels(method, self._route_guard(route), str(status)).inc
        with self._lock:
            if len(self._counted) < _MAX_BOUND:
                self._counted[(method, route, status)] = inc
        return inc

    def _bind_time(self, method: str, route: str) -> Callable[[float], None]:
        observe = self.duration.labels(method, self._route_guard(route)).observe
        with self._lock:
            if len(self._timed) < _MAX_BOUND:
                self._timed[(method, route)] = observe
        return observe

    def close(self) -> None:
        """Unregister the families (idempotent); ``Runtime.close()`` calls it."""
        for collector in self._registered:
            try:
                self.registry.unregister(collector)  # type: ignore[arg-type]
            except KeyError:  # the registry was cleared by someone else
                pass
        self._registered = []
