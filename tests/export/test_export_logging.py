"""JSON log lines with request and trace ids, and the per-query log sink."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from dbsight.core import Recorder, Settings, request_scope
from dbsight.export import JsonFormatter, QueryLogSink, configure_json_logging
from dbsight.export.logging import QUERY_LOGGER

SECRET = "s3cr3t-literal"


class PgError(Exception):
    sqlstate = "42P01"


@pytest.fixture
def capture():
    """A named logger writing JSON lines into a buffer; yields (logger, read_lines)."""
    created: list[logging.Logger] = []

    def make(name: str, level: int = logging.DEBUG):
        buffer = io.StringIO()
        logger = logging.getLogger(name)
        handler = configure_json_logging(level, stream=buffer, logger=logger)
        logger.propagate = False
        created.append(logger)

        def lines() -> list[dict]:
            handler.flush()
            return [json.loads(line) for line in buffer.getvalue().splitlines()]

        return logger, lines

    yield make
    for logger in created:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


def test_formatter_writes_one_json_object_with_context_and_extras(capture):
    logger, lines = capture("test.dbsight.json")
    with request_scope("req-42", route="/orders/{id}", trace_id="a" * 32, span_id="b" * 16):
        logger.info("hello %s", "world", extra={"order_id": 7, "skipped": None})
    logger.warning("outside")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")

    first, second, third = lines()
    assert first["message"] == "hello world"
    assert first["level"] == "INFO"
    assert first["logger"] == "test.dbsight.json"
    assert first["ts"].endswith("Z") and "T" in first["ts"]
    assert first["request_id"] == "req-42"
    assert first["route"] == "/orders/{id}"
    assert first["trace_id"] == "a" * 32 and first["span_id"] == "b" * 16
    assert first["order_id"] == 7
    assert "skipped" not in first
    assert "request_id" not in second and "trace_id" not in second
    assert "RuntimeError: boom" in third["exception"]


def test_formatter_prefers_the_current_opentelemetry_span(capture):
    logger, lines = capture("test.dbsight.json.otel")
    tracer = TracerProvider().get_tracer("test")
    with request_scope("req-1", trace_id="a" * 32, span_id="b" * 16):
        with tracer.start_as_current_span("handler") as span:
            logger.info("in span")
    (line,) = lines()
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["request_id"] == "req-1"
    assert trace.get_current_span().get_span_context().is_valid is False


def test_configure_json_logging_is_idempotent():
    logger = logging.getLogger("test.dbsight.idempotent")
    first, second = io.StringIO(), io.StringIO()
    try:
        handler = configure_json_logging(logging.INFO, stream=first, logger=logger)
        again = configure_json_logging("DEBUG", stream=second, logger=logger)
        assert handler is again
        assert logger.handlers == [handler]
        assert isinstance(handler.formatter, JsonFormatter)
        assert logger.level == logging.DEBUG
        logger.propagate = False
        logger.debug("to the second stream")
        assert first.getvalue() == ""
        assert json.loads(second.getvalue())["message"] == "to the second stream"
    finally:
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


def make_recorder(**settings) -> Recorder:
    config = Settings(**settings)
    rec = Recorder(config)
    rec.add_observer(QueryLogSink(config))
    return rec


def test_query_log_records_each_query_at_debug_with_its_context(capture):
    _, lines = capture(QUERY_LOGGER)
    rec = make_recorder()
    with request_scope("req-7", route="/users/{id}", trace_id="c" * 32, span_id="d" * 16):
        ctx = rec.start(f"SELECT * FROM users WHERE email = '{SECRET}'", "postgresql", "psycopg")
        event = rec.finish(ctx, rows=2)
    (line,) = lines()
    assert line["level"] == "DEBUG"
    assert line["logger"] == QUERY_LOGGER
    assert line["fingerprint"] == event.fingerprint
    assert line["normalized"] == event.normalized
    assert line["operation"] == "select"
    assert line["tables"] == ["users"]
    assert line["rows"] == 2
    assert line["outcome"] == "ok"
    assert line["duration_ms"] >= 0
    assert line["source"] == "psycopg" and line["system"] == "postgresql"
    assert line["route"] == "/users/{id}" and line["request_id"] == "req-7"
    assert line["trace_id"] == "c" * 32 and line["span_id"] == "d" * 16
    assert SECRET not in json.dumps(line)
    assert "sql" not in line and "params" not in line


def test_errors_are_logged_at_warning_even_when_queries_are_sampled_away(capture):
    _, lines = capture(QUERY_LOGGER)
    rec = make_recorder(log_sample_rate=0.0)
    rec.finish(rec.start("SELECT * FROM users", "postgresql", "test"))
    sql = f"SELECT * FROM missing WHERE x = '{SECRET}'"
    ctx = rec.start(sql, "postgresql", "test")
    # as psycopg words it: the server's message, then the statement's line
    rec.fail(ctx, PgError(f'relation "missing" does not exist\nLINE 1: {sql}\n  ^'))
    (line,) = lines()
    assert line["level"] == "WARNING"
    assert line["outcome"] == "error"
    assert line["sqlstate"] == "42P01"
    assert line["error_type"] == "PgError"
    assert line["error_message"] == 'relation "missing" does not exist'
    assert line["message"] == (
        'query failed select missing: 42P01 PgError: relation "missing" does not exist'
    )
    assert SECRET not in json.dumps(line)


def test_query_bodies_are_logged_only_when_enabled(capture):
    _, lines = capture(QUERY_LOGGER)
    rec = make_recorder(include_query_bodies=True)
    sql = f"SELECT * FROM users WHERE email = %s AND note = '{SECRET}'"
    rec.finish(rec.start(sql, "postgresql", "test", params=("a@example.com",)), rows=0)
    ctx = rec.start(sql, "postgresql", "test", params=("b@example.com",))
    rec.fail(ctx, PgError(f"bad {SECRET}"))
    ok, failed = lines()
    assert ok["sql"] == sql and ok["params"] == ["a@example.com"]
    assert failed["error_message"] == f"bad {SECRET}"


def test_nothing_is_logged_while_the_query_logger_is_off(capture):
    _, lines = capture(QUERY_LOGGER, level=logging.ERROR)
    rec = make_recorder()
    rec.finish(rec.start("SELECT 1", "postgresql", "test"))
    rec.fail(rec.start("SELECT 1", "postgresql", "test"), PgError("x"))
    assert lines() == []
