"""JSON logs that carry request and trace ids, and the per-query log sink.

`JsonFormatter` writes one JSON object per line with the request context (request id,
route) and the trace context (the current OpenTelemetry span, else the request's ids)
of the code that logged, plus any ``extra`` fields. `QueryLogSink` logs every statement
to the ``dbsight.query`` logger at DEBUG (sampled) and every failed one at WARNING::

    query failed insert users: 23505 UniqueViolation: duplicate key value violates unique
    constraint "users_email_key"                                         (one line)

dbsight's event loggers (``dbsight.access``, ``dbsight.slow``, ``dbsight.n_plus_one``,
``dbsight.query``) log through a `FallbackJsonLog`: JSON lines on stderr while the
application configured no logging that would show their records, its handlers otherwise.
"""

from __future__ import annotations

import functools
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
    """Log JSON lines to ``stream`` (stderr by default) from ``logger`` (the root logger:
    the application's records and every library's, dbsight's included) at ``level``.

    dbsight's own event logs are JSON lines without it, as long as the application
    configures no logging (see `FallbackJsonLog`); this is for an application that wants
    all of its logs so. Idempotent: calling it again reuses the handler it installed
    (switching it to the new stream and level) instead of adding a second one.
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


class _StderrHandler(logging.Handler):
    """Writes to the ``sys.stderr`` of the moment, as `logging.lastResort` does (a test or a
    server may replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


class FallbackJsonLog:
    """One of dbsight's event loggers, whose records are JSON lines on stderr while nothing
    else would show them.

    While neither the logger nor an ancestor it propagates to has a handler (an application
    that configured no logging: uvicorn and gunicorn configure only loggers of their own),
    Python would drop its records below WARNING and print the others as bare messages. Then
    this writes the records from ``level`` on (or from the level set on the logger or on a
    ``dbsight`` logger above it) to stderr, formatted by ``formatter`` (`JsonFormatter`).
    Once a handler is there, added before or after dbsight started (``basicConfig``,
    ``dictConfig``, `configure_json_logging`), the records go to the application's handlers
    at the application's levels, and this writes nothing itself: its logging configuration
    is not overridden, and no line is written twice.

    Callers ask `enabled` before building a record's fields, then call `log`.
    """

    __slots__ = ("_handler", "level", "logger")

    def __init__(
        self,
        logger: str | logging.Logger,
        level: int,
        formatter: logging.Formatter | None = None,
    ) -> None:
        self.logger = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
        self.level = level
        self._handler = _StderrHandler()
        self._handler.setFormatter(formatter if formatter is not None else JsonFormatter())

    @property
    def falling_back(self) -> bool:
        """True while nothing but this would show the logger's records."""
        return not self.logger.hasHandlers()

    def enabled(self, level: int) -> bool:
        logger = self.logger
        if logger.hasHandlers():
            return logger.isEnabledFor(level)
        return self._writes(level)

    def log(self, level: int, msg: str, *args: object, extra: dict[str, Any] | None = None) -> None:
        logger = self.logger
        if logger.hasHandlers():
            if logger.isEnabledFor(level):
                logger.log(level, msg, *args, extra=extra, stacklevel=2)
        elif self._writes(level):
            record = logger.makeRecord(
                logger.name, level, "(unknown file)", 0, msg, args, None, extra=extra
            )
            if logger.filter(record):
                self._handler.handle(record)

    def _writes(self, level: int) -> bool:
        logger = self.logger
        if logger.disabled or logger.manager.disable >= level:
            return False
        # The first level set below the root (whose WARNING is Python's default, not a
        # choice), else this log's own.
        current: logging.Logger | None = logger
        while current is not None and current is not logging.root:
            if current.level:
                return level >= current.level
            current = current.parent
        return level >= self.level


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
        self._log = FallbackJsonLog(self.logger, logging.WARNING)
        # Per statement, the logger's own (cached) answer: it says yes whenever the fallback
        # would write a DEBUG line too (a DEBUG level set on the logger), and `log` decides.
        self._enabled_for = self.logger.isEnabledFor
        # Logger's own cache of isEnabledFor answers (cleared in place by setLevel): a dict
        # lookup per statement instead of a Python call while the logger is off.
        cache = getattr(self.logger, "_cache", None)
        self._cached = cache.get if isinstance(cache, dict) else (lambda level: None)
        if isinstance(cache, dict):
            # The recorder's gate (see `dbsight.core.QueryObserver`): False exactly when
            # `after_query` would return at its first check, one C call and no event.
            self.after_query_wanted = functools.partial(cache.get, logging.DEBUG)
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
        self._log.log(
            logging.DEBUG,
            "query %s %.3f ms",
            _target(event),
            event.duration_s * 1000.0,
            extra=self._fields(event),
        )

    def on_error(self, ctx: QueryContext, event: QueryEvent) -> None:
        if not self._log.enabled(logging.WARNING):
            return
        error = event.error
        fields = self._fields(event)
        self._log.log(
            logging.WARNING,
            "query failed %s: %s",
            _target(event),
            error_summary(error, fields.get("error_message")) if error is not None else "error",
            extra=fields,
        )

    def _fields(self, event: QueryEvent) -> dict[str, Any]:
        return event_fields(event, self._include_bodies)
