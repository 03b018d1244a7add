"""OpenTelemetry spans per statement, children of whatever span is current when it starts.

A span costs 20-30 µs with the SDK, so the sink decides before creating one: inside a
trace it follows the parent's sampling flag (no span under an unsampled parent); outside
any trace it samples at ``settings.effective_trace_sample_rate``. A span that comes back
non-recording gets no attributes. Without an SDK behind OpenTelemetry's global provider
the sink is inactive and ``_runtime`` does not install it at all.

Attribute names follow the database semantic conventions; ``db.query.text`` is the
normalized statement (literals replaced by placeholders) unless ``include_query_bodies``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.trace import (
    NoOpTracerProvider,
    ProxyTracerProvider,
    SpanKind,
    Status,
    StatusCode,
)

from ..core import QueryObserver
from ._fields import error_message

if TYPE_CHECKING:
    from ..core import QueryContext, QueryEvent, Settings

_get_current_span = trace.get_current_span
_random = random.random
_CLIENT = SpanKind.CLIENT

TRACER_NAME = "dbsight"
OTLP_TRACES_PATH = "/v1/traces"
# Bound on the span names and attribute sets kept per statement shape (see `_shape`).
MAX_SHAPES = 4096


def span_name(operation: str, table: str) -> str:
    """``{db.operation.name} {db.collection.name}``, e.g. ``SELECT users``."""
    return f"{operation.upper()} {table}" if table else operation.upper()


def otlp_traces_url(endpoint: str) -> str:
    """The URL to POST traces to: ``endpoint`` as given, or with ``/v1/traces`` appended
    when it names only a host (like ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        parts = parts._replace(path=OTLP_TRACES_PATH)
    return urlunsplit(parts)


def build_otlp_provider(settings: Settings) -> Any:
    """An SDK tracer provider exporting over OTLP/HTTP to ``settings.otlp_endpoint`` only."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:  # the exporter is the optional "otlp" extra
        raise RuntimeError(
            "dbsight: otlp_endpoint is set but opentelemetry-exporter-otlp-proto-http is not "
            "installed (pip install 'dbsight[otlp]')"
        ) from exc
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    assert settings.otlp_endpoint is not None
    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(settings.effective_trace_sample_rate)),
        resource=Resource.create(
            {
                "service.name": settings.service_name,
                "deployment.environment.name": settings.environment,
            }
        ),
    )
    exporter = OTLPSpanExporter(endpoint=otlp_traces_url(settings.otlp_endpoint))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class TracingSink(QueryObserver):
    """One CLIENT span per sampled statement. ``active`` is False when there is nowhere to
    send spans (no SDK provider given, configured or installed globally)."""

    name = "dbsight.tracing"

    def __init__(self, settings: Settings, tracer_provider: Any = None) -> None:
        self.active = False
        self._include_bodies = settings.include_query_bodies
        # (fingerprint, system, source, database) -> (span name, starting attributes)
        self._shapes: dict[tuple[str, str, str, str | None], tuple[str, dict[str, Any]]] = {}
        self._owned_provider: Any = None
        # Outside any trace: the fraction of statements that start a trace of their own.
        self.root_rate = settings.effective_trace_sample_rate
        provider = tracer_provider
        if provider is None and settings.otlp_endpoint:
            provider = self._owned_provider = build_otlp_provider(settings)
            self.root_rate = 1.0  # the provider's ParentBased(TraceIdRatioBased) decides
        elif provider is None:
            provider = trace.get_tracer_provider()
        if isinstance(provider, (ProxyTracerProvider, NoOpTracerProvider)):
            self.provider = None
            return
        self.provider = provider
        self._tracer = provider.get_tracer(TRACER_NAME)
        self.active = True

    # -- the hot path ----------------------------------------------------------------
    def before_query(self, ctx: QueryContext) -> None:
        parent = _get_current_span().get_span_context()
        sampled = ctx.sampled  # decided for this statement, else by the rates
        if parent.is_valid:
            if not parent.trace_flags.sampled or sampled is False:
                return
        elif sampled is None:
            if self.root_rate < 1.0 and _random() >= self.root_rate:
                return
        elif not sampled:
            return
        # The span's name and starting attributes depend on the statement's shape and
        # connection only: made once per shape (the SDK copies the attributes it is given).
        # With include_query_bodies the text itself is an attribute: made for each statement.
        if self._include_bodies:
            name, attributes = self._shape(ctx)
        else:
            key = (ctx.fingerprint, ctx.system, ctx.source, ctx.database)
            shape = self._shapes.get(key)
            if shape is None:
                shape = self._remember_shape(key, ctx)
            name, attributes = shape
        # Parent is the current context; the span is not made current, so nothing the
        # application starts meanwhile becomes its child. Attributes go in at start: the
        # SDK validates and locks per call, and a sampler may want to see them.
        span = self._tracer.start_span(name, kind=_CLIENT, attributes=attributes)
        if not span.is_recording():
            return
        ctx.span = span
        span_context = span.get_span_context()
        ctx.trace_id = format(span_context.trace_id, "032x")
        ctx.span_id = format(span_context.span_id, "016x")

    def _shape(self, ctx: QueryContext) -> tuple[str, dict[str, Any]]:
        """A statement's span name and starting attributes."""
        info = ctx.info
        tables = info.tables
        table = tables[0] if tables else ""
        operation = info.operation
        system = ctx.system
        attributes: dict[str, Any] = {
            "db.system": system,
            "db.system.name": system,
            "db.operation.name": operation.upper(),
            "db.query.text": ctx.sql if self._include_bodies else info.normalized,
            "dbsight.fingerprint": info.fingerprint,
            "dbsight.source": ctx.source,
        }
        if table:
            attributes["db.collection.name"] = table
        if ctx.database:
            attributes["db.namespace"] = ctx.database
        return span_name(operation, table), attributes

    def _remember_shape(
        self, key: tuple[str, str, str, str | None], ctx: QueryContext
    ) -> tuple[str, dict[str, Any]]:
        shapes = self._shapes
        if len(shapes) >= MAX_SHAPES:
            shapes.clear()
        shape = shapes[key] = self._shape(ctx)
        return shape

    def after_query(self, ctx: QueryContext, event: QueryEvent) -> None:
        span = ctx.span
        if span is None:
            return
        if event.rows is not None:
            span.set_attribute("db.response.returned_rows", event.rows)
        span.end()
        ctx.span = None

    def on_error(self, ctx: QueryContext, event: QueryEvent) -> None:
        span = ctx.span
        if span is None:
            return
        error = event.error
        if error is not None:
            if error.sqlstate:
                span.set_attribute("db.response.status_code", error.sqlstate)
            span.set_attribute("error.type", error.type)
            # the server's message may quote literals: in full only with include_query_bodies
            message = error_message(event, self._include_bodies)
            span.set_status(Status(StatusCode.ERROR, message or error.type))
        else:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        ctx.span = None

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Flush and shut down the provider dbsight built (never one it was given)."""
        provider, self._owned_provider = self._owned_provider, None
        if provider is not None:
            provider.shutdown()
        self.active = False
