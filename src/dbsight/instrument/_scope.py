"""What a request gets, whether it came over HTTP or not: ids, a span, N+1 detection at its end.

The ASGI middleware opens one scope per HTTP request (adding what only HTTP has: headers,
``http_server_*`` metrics, the access log); ``dbsight.request_scope()`` opens one around a
job, a worker's task or a script::

    with dbsight.request_scope(route="/jobs/nightly") as request:
        ...   # queries carry its request id, route, trace and span; request.db_time_s adds up

A scope has a request id (given, or a fresh one), a trace id and a span:

- with dbsight tracing on, a span of its own (kind INTERNAL, named after the route) that is
  current while the block runs, so the database, cache and httpx spans of the block are its
  children. It is the child of the current span when there is one (a job run inside a web
  request, or inside a span of the application's), of the caller's trace when ``trace_id``
  (and ``span_id``) are given, and otherwise the root of a new trace, sampled like the
  middleware's new traces (``trace_sample_rate``). An exception leaving the block marks it
  failed (``error.type``) and propagates unchanged;
- without dbsight tracing, ids only: the ones given, else the current span's (an
  application's own tracer), else the enclosing scope's, else fresh ones. An instrumented httpx client sends them on
  as ``traceparent`` either way.

At the end the scope's statements are checked for N+1 patterns, as a web request's are
(logged to ``dbsight.n_plus_one``, counted in ``db_client_n_plus_one_total{route}``, kept for
``/metrics/summary``). ``dbsight.core.request_scope`` is the bare context, without span or
N+1 check, for code that manages both itself.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from .. import _runtime as _runtime_module
from .._runtime import Runtime, get_runtime, recorder
from ..core import RequestContext
from ..core._context import _request, new_request_id
from ..core._correlation import new_span_id, new_trace_id, remote_context
from ..export.tracing import TRACER_NAME, TracingSink
from ..stats._nplusone import report_n_plus_one

FAILURE_NAME = "dbsight.request_scope"
SCOPE_SPAN_NAME = "request_scope"

_random = random.random
_get_current_span = trace.get_current_span


class Unavailable:
    """Cached in the runtime when a per-runtime object could not be built (say the metric
    names are taken in a registry the application gave), so it is not retried per request."""


UNAVAILABLE = Unavailable()


class ScopeTracer:
    """The tracer of the runtime's tracing sink, and how it samples new traces."""

    __slots__ = ("root_rate", "tracer")

    def __init__(self, sink: TracingSink) -> None:
        provider = sink.provider
        assert provider is not None  # made only for an active sink
        self.tracer = provider.get_tracer(TRACER_NAME)
        # Outside any trace the sink samples at this rate (1.0 when its own provider's
        # sampler decides); scope spans follow the same rule, so a request and its queries
        # are sampled together.
        self.root_rate: float = sink.root_rate

    def start_span(
        self, name: str, kind: SpanKind, attributes: dict[str, Any], parent: Any
    ) -> Any:
        """A span child of ``parent`` (an OpenTelemetry context; None: the root of a new
        trace). A new trace left out by the sample rate gets ids without a span, all the
        same: made current, it keeps the statements of the scope from making spans too."""
        if parent is None:
            if self.root_rate < 1.0 and _random() >= self.root_rate:
                return NonRecordingSpan(
                    SpanContext(
                        int(new_trace_id(), 16),
                        int(new_span_id(), 16),
                        is_remote=False,
                        trace_flags=TraceFlags(TraceFlags.DEFAULT),
                    )
                )
            parent = otel_context.Context()
        return self.tracer.start_span(name, context=parent, kind=kind, attributes=attributes)


def _build_tracer(runtime: Runtime) -> ScopeTracer | Unavailable:
    if runtime.settings.tracing_enabled:
        for sink in runtime.sinks:
            if isinstance(sink, TracingSink) and sink.active and sink.provider is not None:
                return ScopeTracer(sink)
    return UNAVAILABLE


class ScopeState:
    """What a scope needs of one runtime, looked up once per ``configure()``."""

    __slots__ = ("enabled", "n_plus_one_threshold", "runtime", "tracer")

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.enabled = settings.enabled
        self.n_plus_one_threshold = settings.n_plus_one_threshold
        tracer = runtime.component("http_tracer", _build_tracer) if settings.enabled else None
        self.tracer: ScopeTracer | None = tracer if isinstance(tracer, ScopeTracer) else None

    def finish(self, request: RequestContext) -> None:
        """The end of a scope: its N+1 check (runs inside the scope, for the log's context)."""
        if self.enabled and request.queries >= self.n_plus_one_threshold:
            # fewer queries cannot repeat enough
            report_n_plus_one(self.runtime, request)


def end_span(span: Any, error: BaseException | None, failed: bool = False) -> None:
    """End a scope's span; ``error`` (what left the block) or ``failed`` mark it failed."""
    if span is None or not span.is_recording():
        return
    if error is not None:
        span.set_attribute("error.type", type(error).__qualname__)
        span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
    elif failed:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def span_ids(span: Any) -> tuple[str, str, bool]:
    """Trace id, span id (lowercase hex) and sampled flag of ``span``."""
    context = span.get_span_context()
    return (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
        bool(context.trace_flags.sampled),
    )


def _valid(value: str | None, length: int) -> str | None:
    if value is None or len(value) != length:
        return None
    try:
        return value.lower() if int(value, 16) else None
    except ValueError:
        return None


_state: ScopeState | None = None


def scope_state() -> ScopeState:
    """The `ScopeState` of the current runtime (configured from the environment on first
    use, as the middleware's)."""
    global _state
    state = _state
    if state is None or state.runtime is not _runtime_module._runtime:
        state = _state = ScopeState(get_runtime())
    return state


def _open_span(
    state: ScopeState,
    name: str,
    attributes: dict[str, Any],
    trace_id: str | None,
    span_id: str | None,
) -> Any:
    """The scope's span (recording or not), or None without dbsight tracing."""
    tracer = state.tracer
    if tracer is None:
        return None
    if trace_id is not None:  # the caller's trace; without its span id, under a stand-in
        parent = remote_context(trace_id, span_id or new_span_id(), TraceFlags.SAMPLED)
    elif _get_current_span().get_span_context().is_valid:
        parent = otel_context.get_current()
    else:
        parent = None
    return tracer.start_span(name, SpanKind.INTERNAL, attributes, parent)


def _ids_without_span(
    trace_id: str | None, span_id: str | None
) -> tuple[str, str]:
    """Trace and span ids of a scope that makes no span: given, else the current span's (an
    application's own tracer), else the enclosing scope's, else fresh ones."""
    if trace_id is not None:
        return trace_id, span_id or new_span_id()
    current = _get_current_span().get_span_context()
    if current.is_valid:
        return format(current.trace_id, "032x"), format(current.span_id, "016x")
    outer = _request.get()
    if outer is not None and outer.trace_id and outer.span_id:
        return outer.trace_id, outer.span_id
    return new_trace_id(), new_span_id()


@contextmanager
def request_scope(
    request_id: str | None = None,
    *,
    route: str | None = None,
    app: str | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
) -> Iterator[RequestContext]:
    """Run a block as one request (a job, a task): its queries carry this request id, route
    and trace, its span is their parent and its statements are checked for N+1 patterns at
    the end (see the module docstring). ``trace_id``/``span_id``: the caller's trace to
    continue (32 and 16 hex digits; invalid ones are ignored)."""
    request_id = request_id or new_request_id()
    trace_id = _valid(trace_id, 32)
    span_id = _valid(span_id, 16) if trace_id is not None else None
    state: ScopeState | None = None
    span: Any = None
    try:
        state = scope_state()
        attributes: dict[str, Any] = {"dbsight.request_id": request_id}
        if route:
            attributes["dbsight.route"] = route
        if app:
            attributes["dbsight.app"] = app
        if state.enabled:
            span = _open_span(state, route or SCOPE_SPAN_NAME, attributes, trace_id, span_id)
    except Exception as exc:  # dbsight's failure: the block runs all the same
        recorder.failures.record(FAILURE_NAME, "start", exc)
    if span is not None:
        trace_id, span_id, _ = span_ids(span)
    else:
        trace_id, span_id = _ids_without_span(trace_id, span_id)
    ctx = RequestContext(request_id, route, app, trace_id, span_id)
    otel_token = otel_context.attach(trace.set_span_in_context(span)) if span is not None else None
    token = _request.set(ctx)
    error: BaseException | None = None
    try:
        yield ctx
    except BaseException as exc:  # re-raised unchanged
        error = exc
        raise
    finally:
        try:
            if state is not None:
                state.finish(ctx)
        except Exception as exc:
            recorder.failures.record(FAILURE_NAME, "finish", exc)
        _request.reset(token)
        try:
            end_span(span, error)
        except Exception as exc:
            recorder.failures.record(FAILURE_NAME, "end_span", exc)
        if otel_token is not None:
            otel_context.detach(otel_token)
