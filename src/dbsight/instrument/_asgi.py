"""The ASGI middleware: one request scope per HTTP request, and what it cost.

Per request, `DbsightMiddleware`

- keeps a valid incoming ``X-Request-ID`` or makes one, and continues a valid incoming W3C
  ``traceparent``/``tracestate`` or starts a trace; with dbsight tracing on, a SERVER span
  (child of the incoming context) is current while the app runs, so the database spans of
  the request are its children;
- opens a ``request_scope`` carrying the route template (resolved before the app runs, see
  `_routes`), request id and trace ids, so every query knows them;
- adds ``X-Request-ID``, ``traceparent`` and ``Server-Timing`` (db, cache, app) to the
  response start. Headers go out with ``http.response.start``: queries that run after it
  (in a streaming body or a background task) are not in ``Server-Timing``, but they are in
  the access log, the N+1 check and the request's span;
- at the end counts ``http_server_*`` metrics, checks the request for N+1 queries and writes
  one line to the ``dbsight.access`` logger at INFO, with its fields as ``extra``: a JSON
  line on stderr while the application configured no logging that shows it, else through
  the application's handlers and levels (see `FallbackJsonLog`). Like every log, it is
  sampled at ``effective_log_sample_rate`` (dev 1, staging 0.1, prod 0.01), except for 5xx
  answers, which are always logged; the metrics are never sampled.

A pure ASGI middleware: bodies stream through untouched, background tasks keep running in
the request's context, lifespan and websocket scopes pass straight through. What the app
raises propagates unchanged; a failure of dbsight's own bookkeeping is counted in
``dbsight_observer_errors_total{observer="dbsight.asgi"}`` and never reaches the app.

``instrument_app(app)`` (what ``dbsight.instrument(app)`` does for Starlette and FastAPI)
puts the middleware outside Starlette's whole stack, ServerErrorMiddleware included, so it
sees the 500 that middleware answers for an unhandled exception, and serves dbsight's
endpoints (``/metrics``, ``/health`` ...) in front of the app's own routes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from .. import _runtime as _runtime_module
from .._asgi_types import ASGIApp, Message, Receive, Scope, Send
from .._runtime import Runtime, get_runtime, recorder
from ..core import RequestContext
from ..core._context import _request
from ..core._correlation import (
    TraceParent,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    parse_tracestate,
    remote_context,
    valid_request_id,
)
from ..export.http_metrics import KNOWN_METHODS, OTHER_METHOD, HttpMetrics
from ..export.logging import FallbackJsonLog
from ._common import mark_coroutine_function
from ._dispatch import _APP_OPTIONS
from ._handle import InstrumentationHandle
from ._routes import UNMATCHED, RouteIndex, route_of
from ._scope import UNAVAILABLE, ScopeState, ScopeTracer, Unavailable, end_span

ACCESS_LOGGER = "dbsight.access"
# Status of a request whose client went away before any response started (nginx's 499).
CLIENT_CLOSED = 499
FAILURE_NAME = "dbsight.asgi"

access_log = FallbackJsonLog(ACCESS_LOGGER, logging.INFO)
_perf_counter = time.perf_counter
_random = random.random
_getrandbits = random.getrandbits

_REQUEST_ID_HEADER = b"x-request-id"
_TRACEPARENT_HEADER = b"traceparent"
_TRACESTATE_HEADER = b"tracestate"
_SERVER_TIMING_HEADER = b"server-timing"
_NO_HEADERS: dict[bytes, bytes] = {}
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def _failed(where: str, exc: BaseException) -> None:
    recorder.failures.record(FAILURE_NAME, where, exc)


def _build_metrics(runtime: Runtime) -> HttpMetrics | Unavailable:
    try:
        return HttpMetrics(runtime)
    except Exception as exc:
        _failed("http_metrics", exc)
        return UNAVAILABLE


class _PerRuntime(ScopeState):
    """What the middleware needs of one runtime (a scope's, plus the HTTP metrics and the
    log rate), looked up once per ``configure()`` rather than on every request."""

    __slots__ = ("log_rate", "metrics")

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        settings = runtime.settings
        self.log_rate = settings.effective_log_sample_rate
        metrics = (
            runtime.component("http_metrics", _build_metrics)
            if settings.enabled and settings.metrics_enabled
            else None
        )
        self.metrics: HttpMetrics | None = metrics if isinstance(metrics, HttpMetrics) else None


def _tracestate_values(scope: Scope) -> list[str]:
    """Every ``tracestate`` header of the request (the spec lets a list span several);
    read only to continue an incoming trace with a span of ours."""
    return [
        value.decode("latin-1")
        for name, value in scope.get("headers") or ()
        if name == _TRACESTATE_HEADER
    ]


def server_timing(ctx: RequestContext, app_s: float) -> bytes:
    """``db;dur=12.3;desc="4 queries", cache;dur=0.0, app;dur=15.2`` (milliseconds)."""
    queries = ctx.queries
    noun = b"query" if queries == 1 else b"queries"
    # bytes %-formatting: the header value in one step (f-strings with format specs and an
    # encode cost about twice as much, on every request); most requests use no cache.
    cache_s = ctx.cache_time_s
    if not cache_s:
        return b'db;dur=%.1f;desc="%d %s", cache;dur=0.0, app;dur=%.1f' % (
            ctx.db_time_s * 1000.0,
            queries,
            noun,
            app_s * 1000.0,
        )
    return b'db;dur=%.1f;desc="%d %s", cache;dur=%.1f, app;dur=%.1f' % (
        ctx.db_time_s * 1000.0,
        queries,
        noun,
        cache_s * 1000.0,
        app_s * 1000.0,
    )


class _Exchange:
    """One HTTP request going through the middleware: its ids, span and outcome.

    Its `receive` and `send` are what the app gets in place of the server's (bound methods
    rather than closures made per request). Everything here runs on every request, so it
    is written for few calls and allocations: the three ids come from one random draw and
    the request headers are read through one C-level ``dict()``.
    """

    __slots__ = (
        "_receive",
        "_send",
        "active",
        "ctx",
        "disconnected",
        "method",
        "method_label",
        "request_id",
        "response_done",
        "route",
        "sampled",
        "scope",
        "span",
        "span_id",
        "started",
        "state",
        "status",
        "trace_id",
    )

    def __init__(
        self, state: _PerRuntime, scope: Scope, route: str, receive: Receive, send: Send
    ) -> None:
        self.started = _perf_counter()
        self.state = state
        self.scope = scope
        self._receive = receive
        self._send = send
        method: str = scope.get("method", "GET")
        self.method = method
        self.method_label = method if method in KNOWN_METHODS else OTHER_METHOD
        self.route = route
        self.status: int | None = None
        self.response_done: float | None = None
        self.disconnected = False
        self.span: Any = None
        self.active: Any = None
        headers = scope.get("headers")
        found = dict(headers) if headers else _NO_HEADERS  # ASGI names are lowercase
        raw_id = found.get(_REQUEST_ID_HEADER)
        raw_parent = found.get(_TRACEPARENT_HEADER)
        # One draw for the three ids a request may need: request id, trace id, span id.
        ids = _getrandbits(320).to_bytes(40, "big").hex()
        request_id = valid_request_id(raw_id.decode("latin-1")) if raw_id is not None else None
        self.request_id = request_id or ids[:32]
        parent = parse_traceparent(raw_parent.decode("latin-1")) if raw_parent else None
        span_id = ids[64:]
        if span_id == _ZERO_SPAN:  # not a valid span id (one chance in 2**64)
            span_id = new_span_id()
        tracer = state.tracer
        if tracer is not None:
            self._start_span(tracer, parent)
        elif parent is not None:  # no spans of ours: continue the caller's trace in ids only
            self.trace_id, self.sampled = parent.trace_id, parent.sampled
            self.span_id = span_id
        else:
            trace_id = ids[32:64]
            self.trace_id = trace_id if trace_id != _ZERO_TRACE else new_trace_id()
            self.span_id, self.sampled = span_id, False
        self.ctx = RequestContext(self.request_id, route, None, self.trace_id, self.span_id)

    # -- tracing -----------------------------------------------------------------------
    def _start_span(self, tracer: ScopeTracer, parent: TraceParent | None) -> None:
        current = trace.get_current_span().get_span_context()
        if current.is_valid:
            # An outer layer (FastAPI's native telemetry, an OpenTelemetry ASGI middleware)
            # already made this request's server span: use it rather than nest a second one.
            span_context = current
        else:
            raw_state = _tracestate_values(self.scope) if parent is not None else []
            self.span = tracer.start_span(
                self._span_name(),
                SpanKind.SERVER,
                self._span_attributes(),
                remote_context(
                    parent.trace_id, parent.span_id, parent.flags, parse_tracestate(raw_state)
                )
                if parent is not None
                else None,
            )
            span_context = self.span.get_span_context()
        self.trace_id = format(span_context.trace_id, "032x")
        self.span_id = format(span_context.span_id, "016x")
        self.sampled = span_context.trace_flags.sampled

    def _span_name(self) -> str:
        method = self.method_label
        method = "HTTP" if method == OTHER_METHOD else method
        return method if self.route == UNMATCHED else f"{method} {self.route}"

    def _span_attributes(self) -> dict[str, Any]:
        scope = self.scope
        attributes: dict[str, Any] = {
            "http.request.method": self.method_label,
            "url.path": scope.get("path", ""),
            "url.scheme": scope.get("scheme", "http"),
            "dbsight.request_id": self.request_id,
        }
        if self.route != UNMATCHED:
            attributes["http.route"] = self.route
        version = scope.get("http_version")
        if version:
            attributes["network.protocol.version"] = version
        return attributes

    def end_span(self, status: int, error: BaseException | None) -> None:
        span = self.span
        if span is None or not span.is_recording():
            return
        span.set_attribute("http.response.status_code", status)
        if error is None and status >= 500:
            span.set_attribute("error.type", str(status))
        end_span(span, error, failed=status >= 500)

    # -- what the app calls ------------------------------------------------------------
    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
        return message

    def send(self, message: Message) -> Any:
        """The server's ``send(message)``, with dbsight's headers added to the response
        start. A plain function that hands back the server's awaitable: no coroutine frame
        of ours per message (the app awaits the result at once, as ASGI apps do)."""
        kind = message["type"]
        if kind == "http.response.start":
            # An answer to a client that already left reaches nobody: 499, not its status.
            self.status = CLIENT_CLOSED if self.disconnected else message["status"]
            try:
                message = self.response_headers(message)
            except Exception as exc:
                _failed("response_headers", exc)
        elif kind == "http.response.body" and not message.get("more_body", False):
            self.response_done = _perf_counter()
        return self._send(message)

    # -- the response ------------------------------------------------------------------
    def response_headers(self, message: Message) -> Message:
        """``message`` (an ``http.response.start``) with dbsight's headers added; the app's
        own X-Request-ID or traceparent, if it set one, is left as it is."""
        headers = list(message.get("headers") or ())
        own_id = own_parent = False
        for name, _ in headers:
            name = name.lower()
            if name == _REQUEST_ID_HEADER:
                own_id = True
            elif name == _TRACEPARENT_HEADER:
                own_parent = True
        if not own_id:
            headers.append((_REQUEST_ID_HEADER, self.request_id.encode("latin-1")))
        if not own_parent:
            # both ids are lowercase hex of the right length (generated, or validated)
            flags = "01" if self.sampled else "00"
            value = f"00-{self.trace_id}-{self.span_id}-{flags}".encode("latin-1")
            headers.append((_TRACEPARENT_HEADER, value))
        headers.append(
            (_SERVER_TIMING_HEADER, server_timing(self.ctx, _perf_counter() - self.started))
        )
        return {**message, "headers": headers}

    # -- the end -----------------------------------------------------------------------
    def finish(self, status: int, ended: float) -> None:
        """Metrics, N+1 check and access log; runs inside the request scope."""
        ctx = self.ctx
        state = self.state
        # Latency is until the response was sent; background tasks after it do not count.
        duration = (self.response_done or ended) - self.started
        metrics = state.metrics
        if metrics is not None and self.active is not None:
            metrics.finished(
                self.active, self.method_label, self.route, status, duration, ctx.db_time_s
            )
        state.finish(ctx)  # the N+1 check
        rate = state.log_rate  # sampled first: a request left out costs no logging check
        if (status >= 500 or rate >= 1.0 or _random() < rate) and access_log.enabled(
            logging.INFO
        ):
            self.log(ctx, status, duration)

    def log(self, ctx: RequestContext, status: int, duration_s: float) -> None:
        path = self.scope.get("path", "")
        access_log.log(
            logging.INFO,
            "%s %s %d",
            self.method,
            path,
            status,
            extra={
                "method": self.method,
                "route": self.route,
                "path": path,
                "status": status,
                "duration_ms": round(duration_s * 1000.0, 3),
                "queries": ctx.queries,
                "db_ms": round(ctx.db_time_s * 1000.0, 3),
                "cache_ms": round(ctx.cache_time_s * 1000.0, 3),
                "request_id": self.request_id,
                "trace_id": self.trace_id,
                "span_id": self.span_id,
                "client_disconnected": True if self.disconnected else None,
            },
        )


mark_coroutine_function(_Exchange.send)


class DbsightMiddleware:
    """Pure ASGI middleware; see the module docstring.

    ``routes``: the object whose ``routes`` give the route templates (the Starlette app);
    by default ``scope["app"]``, which Starlette sets, so ``app.add_middleware(
    DbsightMiddleware)`` works too (but then sits inside ServerErrorMiddleware and misses
    the 500s it answers). ``endpoints``: an ASGI app with ``matches(path)`` served instead
    of the app for the paths it matches (dbsight's ``/metrics``, ``/health`` ...).
    """

    def __init__(self, app: ASGIApp, *, routes: Any = None, endpoints: Any = None) -> None:
        self.app = app
        self.routes = routes
        self.endpoints = endpoints
        self.active = True
        self._state: _PerRuntime | None = None
        self._route_index: RouteIndex | None = None

    def _per_runtime(self) -> _PerRuntime:
        state = self._state = _PerRuntime(get_runtime())
        return state

    def _route_of(self, scope: Scope) -> str:
        """The route template, through the app's one-regex index while its routes stay
        the same list (rebuilt when routes are added), else by walking them."""
        owner = self.routes if self.routes is not None else scope.get("app")
        routes = getattr(owner, "routes", None)
        if isinstance(routes, list) and routes:
            index = self._route_index
            if index is None or index.routes is not routes or index.count != len(routes):
                index = self._route_index = RouteIndex(routes)
            found = index.lookup(scope)
            if found is not None:
                return found
        return route_of(owner, scope)

    def _exchange(self, scope: Scope, receive: Receive, send: Send) -> tuple[ASGIApp, Any]:
        """What serves the request (the app, or dbsight's endpoints) and its `_Exchange`
        (None while dbsight is disabled)."""
        state = self._state
        if state is None or state.runtime is not _runtime_module._runtime:
            state = self._per_runtime()  # first request, or configure() since
        endpoints = self.endpoints
        path = scope["path"]
        if endpoints is not None and endpoints.matches(path):
            target: ASGIApp = endpoints
            # a fixed set of paths (a silence's id as {id}): bounded
            template = getattr(endpoints, "template", None)
            route = template(path) if template is not None else path
        else:
            target, route = self.app, None
        if not state.enabled:
            return target, None
        try:
            exchange = _Exchange(state, scope, route or self._route_of(scope), receive, send)
        except Exception as exc:  # dbsight's failure: serve the request without it
            _failed("start", exc)
            return target, None
        metrics = state.metrics
        if metrics is not None:
            try:
                exchange.active = metrics.started(exchange.method_label)
            except Exception as exc:
                _failed("start", exc)
        return target, exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.active:
            await self.app(scope, receive, send)
            return
        try:
            target, exchange = self._exchange(scope, receive, send)  # may start a span
        except Exception as exc:  # dbsight's failure: serve the request without it
            _failed("start", exc)
            target, exchange = self.app, None
        if exchange is None:
            await target(scope, receive, send)
            return
        span = exchange.span
        otel_token = None
        if span is not None:
            otel_token = otel_context.attach(trace.set_span_in_context(span))
        error: BaseException | None = None
        scope_token = _request.set(exchange.ctx)  # request_scope(), without a generator
        try:
            await target(scope, exchange.receive, exchange.send)
        except BaseException as exc:  # re-raised unchanged
            error = exc
            raise
        finally:
            status = exchange.status
            if status is None:
                # No answer started: the client left first (499), or an exception, or an app
                # that returned without answering (the server sends 500).
                status = CLIENT_CLOSED if exchange.disconnected else 500
            try:
                exchange.finish(status, _perf_counter())
            except Exception as exc:
                _failed("finish", exc)
            _request.reset(scope_token)
            if span is not None:
                try:
                    exchange.end_span(status, error)
                except Exception as exc:
                    _failed("end_span", exc)
            if otel_token is not None:
                otel_context.detach(otel_token)


# -- dbsight.instrument(app) -------------------------------------------------------------
def _endpoints(
    prefix: str,
    metrics: bool,
    summary: bool,
    health: bool,
    health_checks: Iterable[Any],
    dashboard: bool | str | None,
) -> Any:
    """dbsight's endpoints app, imported only now: an app that serves none needs none.
    ``health_checks`` run in addition to the process-wide ones (``dbsight.add_health_check``)
    and the instrumented clients' own. ``dashboard``: see `instrument_app`."""
    from ..web import Endpoints
    from ..web._dashboard import Dashboard, dashboard_path

    page = dashboard_path(dashboard) if summary else None  # the page reads the summary
    return Endpoints(
        prefix, metrics=metrics, summary=summary, health=health, checks=tuple(health_checks),
        dashboard=(
            Dashboard(page, prefix, enabled=None if dashboard is None else True)
            if page is not None else None
        ),
    )  # fmt: skip


def _source(app: Any) -> str:
    for cls in type(app).__mro__:
        if cls.__module__.partition(".")[0] == "fastapi":
            return "fastapi"
    return "starlette"


def instrument_app(app: Any, **options: Any) -> InstrumentationHandle:
    """Put `DbsightMiddleware` around a Starlette (or FastAPI) app's whole middleware stack
    and serve dbsight's endpoints; ``uninstrument()`` restores the app as it was.

    Options: ``prefix=""`` (the endpoints live under it: ``{prefix}/metrics`` ...),
    ``metrics=True`` (``/metrics``), ``summary=True`` (``/metrics/summary``),
    ``health=True`` (``/health``, ``/healthz``, ``/health/ready``),
    ``health_checks=()`` (`HealthCheck` objects run by the health endpoints besides the
    process-wide ones and each instrumented client's own), ``dashboard=None`` (the live
    web page at ``/dbsight/``; None: there unless ``environment`` is ``prod``, True:
    there in every environment, a path such as ``"/ops/db/"``: there, False: off; it needs
    ``summary``).

    Works before and after the app started: Starlette builds its stack on the first request
    (through ``build_middleware_stack``, wrapped here) and keeps it in ``middleware_stack``
    (wrapped here when already built). ``add_middleware`` keeps working until the app starts.
    """
    unknown = set(options) - _APP_OPTIONS
    if unknown:
        raise TypeError(
            f"dbsight.instrument(app): unknown option(s) {sorted(unknown)}; "
            f"known: {sorted(_APP_OPTIONS)}"
        )
    prefix = str(options.get("prefix", "")).rstrip("/")
    if prefix and not prefix.startswith("/"):
        raise ValueError(f"dbsight.instrument(app): prefix must start with '/' (got {prefix!r})")
    serve = {key: bool(options.get(key, True)) for key in ("metrics", "summary", "health")}
    checks = tuple(options.get("health_checks", ()))
    dashboard = options.get("dashboard")
    if dashboard is not None and not isinstance(dashboard, (bool, str)):
        raise TypeError(
            f"dbsight.instrument(app): dashboard must be a bool or a path (got {dashboard!r})"
        )
    if dashboard not in (None, False) and not serve["summary"]:
        raise ValueError("dbsight.instrument(app): the dashboard reads the summary: summary=False "
                         "turns it off (drop dashboard=, or keep the summary)")
    endpoints = (
        _endpoints(prefix, health_checks=checks, dashboard=dashboard, **serve)
        if any(serve.values()) else None
    )  # fmt: skip

    instance_attrs = vars(app)
    own_build = instance_attrs.get("build_middleware_stack")
    build = app.build_middleware_stack
    wrappers: list[DbsightMiddleware] = []

    def wrap(stack: ASGIApp) -> DbsightMiddleware:
        middleware = DbsightMiddleware(stack, routes=app, endpoints=endpoints)
        wrappers.append(middleware)
        return middleware

    def build_middleware_stack() -> ASGIApp:
        return wrap(build())

    app.build_middleware_stack = build_middleware_stack
    if app.middleware_stack is not None:  # already serving
        app.middleware_stack = wrap(app.middleware_stack)

    def undo() -> None:
        for middleware in wrappers:
            middleware.active = False  # a reference kept elsewhere now only passes through
        if own_build is not None:
            app.build_middleware_stack = own_build
        else:
            del app.build_middleware_stack
        stack = app.middleware_stack
        if isinstance(stack, DbsightMiddleware) and stack in wrappers:
            app.middleware_stack = stack.app

    return InstrumentationHandle(app, _source(app), "http", undo)
