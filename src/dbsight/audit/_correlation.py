"""Which request an audit record belongs to: the request id, route, app and trace id of
dbsight's request context (set by the instrumented app's middleware or ``request_scope``),
else the trace id of OpenTelemetry's current span."""

from __future__ import annotations

from typing import NamedTuple

from opentelemetry import trace

from .. import _runtime
from ..core import current_request
from ._table import APP_MAX, REQUEST_ID_MAX, ROUTE_MAX


class Correlation(NamedTuple):
    trace_id: str | None
    request_id: str | None
    route: str | None
    app: str | None


def _span_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def _service_name() -> str | None:
    runtime = _runtime._runtime  # only when dbsight is configured: never configure it here
    return runtime.settings.service_name if runtime is not None else None


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


def current_correlation() -> Correlation:
    """The current request's ids (any of them None outside a request and a span)."""
    request = current_request()
    if request is None:
        return Correlation(_span_trace_id(), None, None, _cut(_service_name(), APP_MAX))
    return Correlation(
        request.trace_id if request.trace_id and len(request.trace_id) == 32 else _span_trace_id(),
        _cut(request.request_id, REQUEST_ID_MAX),
        _cut(request.route, ROUTE_MAX),
        _cut(request.app or _service_name(), APP_MAX),
    )
