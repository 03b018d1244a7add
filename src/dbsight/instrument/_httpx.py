"""httpx: ``httpx.Client`` and ``httpx.AsyncClient``, calls to external HTTP APIs.

The client instance gets its own ``send`` attribute (``request``, ``get``, ``post``,
``stream`` ... all go through ``send``); ``uninstrument()`` removes it, so the class's
method shows again, and leaves the transports and mounts untouched.

Per ``send()`` (redirects it follows are one request, with the final status):
``external_api_requests_total{service, status}`` and
``external_api_request_duration_seconds{service, status}``, ``status`` the response's code
("200", "404" ...) or ``error`` when no response came (connection refused, timeout ...).
``service`` is the name ``Settings.external_api_services`` gives the request's
``host:port`` or ``host``; other hosts are labelled by host name, through a `LabelGuard`.
The duration is the time ``send()`` took: with the body for an ordinary request, up to the
response headers for a streaming one (``client.stream()``, ``send(stream=True)``), whose
body the application reads at its own pace afterwards.

Tracing: a CLIENT span named after the method (``http.request.method``, ``server.address``,
``server.port``, ``url.full`` without credentials, and without the query string unless
``include_query_bodies``; ``http.response.status_code``; 4xx/5xx and transport errors set
``error.type`` and an error status), child of the current span. The request carries W3C
``traceparent`` (and ``tracestate`` when there is one) so the service called joins the
trace: the span's context through OpenTelemetry's propagator when there is a span (or,
without one of dbsight's, the current OpenTelemetry span's); otherwise, when the current
request scope has a trace id, ``00-<trace id>-<fresh span id>-01``. A ``traceparent`` the
caller set is never replaced (one dbsight set on an earlier send of the same request is).
"""

from __future__ import annotations

import random
import time
import weakref
from typing import Any

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import Status, StatusCode

from ..core import current_request
from ..export._guard import LabelGuard
from ..export.client_metrics import ExternalApiMetrics
from ._client import (
    ClientTelemetry,
    async_wrapper,
    built,
    patch_instance,
    sync_wrapper,
    telemetry_lookup,
)
from ._handle import InstrumentationHandle

SYSTEM = "http"
OBSERVER = "dbsight.httpx"
TRACEPARENT = "traceparent"
ERROR_STATUS = "error"

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Bound on cached (host, port) -> service label pairs.
_MAX_SERVICES = 10_000

_perf_counter = time.perf_counter
_get_current_span = trace.get_current_span
_set_span_in_context = trace.set_span_in_context
_inject = propagate.inject
_getrandbits = random.getrandbits

# request -> the traceparent dbsight put on it, to tell it from one the caller set when the
# same Request object is sent again (a retry).
_injected: weakref.WeakKeyDictionary[httpx.Request, str] = weakref.WeakKeyDictionary()


class _Telemetry(ClientTelemetry):
    __slots__ = ("metrics", "services", "_host_guard", "_labels")

    def __init__(self, runtime: Any) -> None:
        super().__init__(runtime)
        settings = runtime.settings
        self.metrics: ExternalApiMetrics | None = None
        if self.enabled and settings.metrics_enabled:
            self.metrics = built(OBSERVER, ExternalApiMetrics.of, runtime)
        self.services: dict[str, str] = settings.external_api_services
        self._host_guard = LabelGuard(settings.metrics_max_label_values)
        self._labels: dict[tuple[str, int | None], str] = {}

    def service(self, host: str, port: int | None) -> str:
        """The ``service`` label of requests to ``host:port``."""
        label = self._labels.get((host, port))
        if label is None:
            label = self.services.get(f"{host}:{port}") or self.services.get(host)
            if label is None:
                label = self._host_guard(host or "unknown")
            if len(self._labels) < _MAX_SERVICES:
                self._labels[(host, port)] = label
        return label


_telemetry = telemetry_lookup("httpx_telemetry", _Telemetry)


def url_full(url: httpx.URL, include_query: bool) -> str:
    """``url`` without credentials or fragment; without the query unless ``include_query``."""
    target = url.raw_path.decode("ascii")  # path?query, percent-encoded
    if not include_query:
        target = target.partition("?")[0]
    return f"{url.scheme}://{url.netloc.decode('ascii')}{target}"


def _propagate(request: httpx.Request, span: Any) -> None:
    headers = request.headers
    existing = headers.get(TRACEPARENT)
    if existing is not None and _injected.get(request) != existing:
        return  # the caller's own
    if span is not None:
        _inject(headers, context=_set_span_in_context(span))
    elif _get_current_span().get_span_context().is_valid:
        _inject(headers)
    else:
        scope = current_request()
        trace_id = scope.trace_id if scope is not None else None
        if not trace_id or len(trace_id) != 32:
            return
        span_id = _getrandbits(64) or 1
        headers[TRACEPARENT] = f"00-{trace_id}-{span_id:016x}-01"
    value = headers.get(TRACEPARENT)
    if value is not None and value != existing:
        _injected[request] = value


class _Send:
    """One ``send()``: timed, counted, traced and propagated."""

    __slots__ = ("tel", "host", "port", "span", "started")

    def __init__(self, tel: _Telemetry, request: httpx.Request) -> None:
        self.tel = tel
        url = request.url
        self.host = host = url.host
        self.port = port = url.port or _DEFAULT_PORTS.get(url.scheme)
        self.span = None
        spans = tel.spans
        if spans is not None:
            method = request.method
            attributes: dict[str, Any] = {
                "http.request.method": method,
                "server.address": host,
                "url.full": url_full(url, tel.include_bodies),
                "url.scheme": url.scheme,
            }
            if port is not None:
                attributes["server.port"] = port
            self.span = spans.start(method, attributes)
        _propagate(request, self.span)
        self.started = _perf_counter()

    def finish(self, response: httpx.Response) -> None:
        duration = _perf_counter() - self.started
        status = response.status_code
        metrics = self.tel.metrics
        if metrics is not None:
            metrics.record(self.tel.service(self.host, self.port), str(status), duration)
        span = self.span
        if span is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR))
            span.end()

    def fail(self, exc: BaseException) -> None:
        duration = _perf_counter() - self.started
        metrics = self.tel.metrics
        if metrics is not None:
            metrics.record(self.tel.service(self.host, self.port), ERROR_STATUS, duration)
        if self.span is not None and self.tel.spans is not None:
            self.tel.spans.fail(self.span, exc)


def _begin(tel: _Telemetry, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Send | None:
    request = args[0] if args else kwargs.get("request")
    return _Send(tel, request) if isinstance(request, httpx.Request) else None


def instrument_client(client: Any, kind: str) -> InstrumentationHandle:
    """Instrument an ``httpx.Client`` (kind "client") or ``httpx.AsyncClient``."""
    wrap = async_wrapper if kind == "async_client" else sync_wrapper
    undo = patch_instance(client, {"send": wrap(OBSERVER, client.send, _telemetry, _begin)})
    return InstrumentationHandle(client, "httpx", SYSTEM, undo)
