"""Logging with the trace context on every line (seed 004 §5.3).

Production and staging write JSON lines (dbsight's `JsonFormatter`: ts, level, logger,
message, request_id, route, trace_id, span_id, service.name, extras); development writes readable lines
that end with the trace id. Either way dbsight's access log (one line per request, with its
duration, status, query count and trace) is the request log, at INFO.
"""

from __future__ import annotations

import logging
import sys

from opentelemetry import trace

import dbsight
from dbsight.export.logging import JsonFormatter

from ..core.config import Settings

HANDLER_NAME = "dbsight_platform.console"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s [trace=%(trace_id)s]"


class TraceContextFilter(logging.Filter):
    """Puts ``trace_id`` on every record (the request's, else the current span's, else -)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id") or record.trace_id is None:
            request = dbsight.current_request()
            trace_id = request.trace_id if request is not None else None
            if not trace_id:
                span_context = trace.get_current_span().get_span_context()
                trace_id = format(span_context.trace_id, "032x") if span_context.is_valid else "-"
            record.trace_id = trace_id
        return True


class ServiceNameFilter(logging.Filter):
    """Puts ``service.name`` on every record (seed 004 §5.3.1's standard fields)."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.setdefault("service.name", self.service_name)
        return True


def configure_logging(settings: Settings) -> logging.Handler:
    """Install (or replace) the platform's console handler on the root logger."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    if settings.effective_log_format == "json":
        handler.addFilter(ServiceNameFilter(settings.service_name))
        handler.setFormatter(JsonFormatter())
    else:
        handler.addFilter(TraceContextFilter())
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    logging.getLogger("dbsight.access").setLevel(logging.INFO)
    # httpx logs every URL, query string included, at INFO: outside calls are recorded by
    # dbsight's external_api_* metrics and spans instead.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler
