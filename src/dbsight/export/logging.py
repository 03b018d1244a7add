"""JSON logs that carry request and trace ids, and the per-query log sink.

`JsonFormatter` writes one JSON object per line with the request context (request id,
route) and the trace context (the current OpenTelemetry span, else the request's ids)
of the code that logged, plus any ``extra`` fields. `QueryLogSink` logs every statement
to the ``dbsight.query`` logger at DEBUG (sampled) and every failed one at WARNING::

    query failed insert users: 23505 UniqueViolation: duplicate key value violates unique
    constraint "users_email_key"                                         (one line)
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from opentelemetry import trace

from ..core import QueryObserver, current_request, error_summary
from ._fields import event_fields

if TYPE_CHECKING:
    from ..core import QueryContext, QueryEvent, Settings

QUERY_LOGGER = "dbsight.query"

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_get_current_span = trace.get_current_span
_random = random.random


def _timestamp(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the request and trace ids, extras.

    Fields given explicitly in ``extra`` win over those read from the context, and fields
    whose value is None are left out.
    """

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request = current_request()
        if request is not None:
            data["request_id"] = request.request_id
            data["route"] = request.route
            data["trace_id"] = request.trace_id
            data["span_id"] = request.span_id
        span_context = _get_current_span().get_span_context()
        if span_context.is_valid:
            data["trace_id"] = format(span_context.trace_id, "032x")
            data["span_id"] = format(span_context.span_id, "016x")
        for key, value in record.__dict__.items():
            if value is not None and key not in _RECORD_ATTRS and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(
            {key: value for key, value in data.items() if value is not None},
            default=str,
            separators=(",", ":"),
        )


def configure_json_logging(
    level: int | str = logging.INFO,
    stream: IO[str] | None = None,
    logger: str | logging.Logger | None = None,
) -> logging.Handler:
    """Log JSON lines to ``stream`` (stderr by default) from ``logger`` (the root logger).

    Idempotent: calling it again reuses the handler it installed (switching it to the new
    stream and level) instead of adding a second one.
    """
    target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    stream = stream if stream is not None else sys.stderr
    handler: logging.StreamHandler[Any] | None = None
    for existing in target.handlers:
        if getattr(existing, "_dbsight_json", False) and isinstance(
            existing, logging.StreamHandler
        ):
            handler = existing
            break
    if handler is None:
        handler = logging.StreamHandler(stream)
        handler._dbsight_json = True  # type: ignore[attr-defined]
        handler.setFormatter(JsonFormatter())
        target.addHandler(handler)
    elif handler.stream is not stream:
        handler.setStream(stream)
    target.setLevel(level)
    return handler


def _target(event: QueryEvent) -> str:
    """``select users``, or ``select`` for a statement without a table."""
    table = event.table
    return f"{event.operation} {table}" if table else event.operation


class QueryLogSink(QueryObserver):
    """Every statement at DEBUG to ``dbsight.query`` (sampled at ``effective_log_sample_rate``),
    every failed statement at WARNING (never sampled: failures are what logs are for).

    Costs one cached ``isEnabledFor`` check per statement while that logger is off. The
    statement text and parameters are logged only with ``include_query_bodies``, the error
    message in full only then (otherwise what `dbsight.core.public_message` keeps of it).
    """

    name = "dbsight.query_log"

    def __init__(self, settings: Settings, logger: logging.Logger | None = None) -> None:
        self.logger = logger if logger is not None else logging.getLogger(QUERY_LOGGER)
        self._enabled_for = self.logger.isEnabledFor
        # Logger's own cache of isEnabledFor answers (cleared in place by setLevel): a dict
        # lookup per statement instead of a Python call while the logger is off.
        cache = getattr(self.logger, "_cache", None)
        self._cached = cache.get if isinstance(cache, dict) else (lambda level: None)
        self._rate = settings.effective_log_sample_rate
        self._include_bodies = settings.include_query_bodies

    def after_query(self, ctx: QueryContext, event: QueryEvent) -> None:
        enabled = self._cached(logging.DEBUG)
        if enabled is None:
            enabled = self._enabled_for(logging.DEBUG)
        if not enabled:
            return
        sampled = ctx.sampled  # decided for this statement, else by the rate
        if sampled is None:
            rate = self._rate
            if rate < 1.0 and _random() >= rate:
                return
        elif not sampled:
            return
        self.logger.debug(
            "query %s %.3f ms",
            _target(event),
            event.duration_s * 1000.0,
            extra=self._fields(event),
        )

    def on_error(self, ctx: QueryContext, event: QueryEvent) -> None:
        if not self._enabled_for(logging.WARNING):
            return
        error = event.error
        fields = self._fields(event)
        self.logger.warning(
            "query failed %s: %s",
            _target(event),
            error_summary(error, fields.get("error_message")) if error is not None else "error",
            extra=fields,
        )

    def _fields(self, event: QueryEvent) -> dict[str, Any]:
        return event_fields(event, self._include_bodies)
