"""JSON log lines with request and trace ids, and the per-query log sink."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from dbsight.core import Recorder, Settings, request_scope
import dbsight
from dbsight.embedded import free_port
from dbsight.export import JsonFormatter, QueryLogSink, configure_json_logging
from dbsight.export.logging import QUERY_LOGGER, FallbackJsonLog

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


# -- dbsight's event loggers when the application configured no logging ---------------------
@pytest.fixture
def unhandled() -> logging.Logger:
    """A logger no handler would show records of: outside the logger tree (pytest attaches
    its capture handlers to the root and to every registered non-propagating logger)."""
    return logging.Logger("test.dbsight.fallback")


def stderr_lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_records_nothing_handles_are_json_lines_on_stderr_from_the_default_level(
    unhandled: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    log = FallbackJsonLog(unhandled, logging.INFO)
    assert log.falling_back
    assert log.enabled(logging.INFO) and not log.enabled(logging.DEBUG)
    with request_scope("req-9", route="/orders/{id}"):
        log.log(logging.INFO, "GET %s %d", "/orders/9", 200, extra={"status": 200})
    log.log(logging.DEBUG, "not shown")
    (line,) = stderr_lines(capsys)
    assert line["message"] == "GET /orders/9 200" and line["status"] == 200
    assert line["level"] == "INFO" and line["logger"] == "test.dbsight.fallback"
    assert line["request_id"] == "req-9" and line["route"] == "/orders/{id}"


def test_a_level_set_on_the_logger_is_respected_without_any_handler(
    unhandled: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    log = FallbackJsonLog(unhandled, logging.INFO)
    unhandled.setLevel(logging.WARNING)  # the access log silenced, no logging configured
    assert not log.enabled(logging.INFO)
    log.log(logging.INFO, "silenced")
    unhandled.setLevel(logging.DEBUG)
    log.log(logging.DEBUG, "asked for")
    unhandled.disabled = True  # as dictConfig(disable_existing_loggers=True) leaves it
    log.log(logging.WARNING, "disabled")
    assert [line["message"] for line in stderr_lines(capsys)] == ["asked for"]


def test_once_the_application_adds_a_handler_records_go_there_only(
    unhandled: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    log = FallbackJsonLog(unhandled, logging.INFO)
    log.log(logging.INFO, "before")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("APP %(levelname)s %(message)s"))
    unhandled.addHandler(handler)
    unhandled.setLevel(logging.INFO)
    assert not log.falling_back
    log.log(logging.INFO, "after")
    assert [line["message"] for line in stderr_lines(capsys)] == ["before"]
    assert buffer.getvalue() == "APP INFO after\n"


def test_configure_json_logging_is_exported_from_dbsight() -> None:
    assert dbsight.configure_json_logging is configure_json_logging
    assert "configure_json_logging" in dbsight.__all__


# An ordinary instrumented FastAPI service, with the logging uvicorn sets up (none for the
# root logger). GET /logging?level=INFO configures the root logger as an application does,
# here once the service has been running for a while.
SERVICE = """\
import logging

from fastapi import FastAPI
from sqlalchemy import create_engine, text

import dbsight

app = FastAPI()
engine = create_engine("sqlite://")
dbsight.instrument(app)
dbsight.instrument(engine)


@app.get("/orders/{order_id}")
def order(order_id: int) -> dict:
    with engine.connect() as conn:
        for _ in range(3):  # an N+1 pattern, each statement over the slow threshold
            conn.execute(text("SELECT :id"), {"id": order_id}).all()
    return {"id": order_id}


@app.get("/logging")
def configure_logging(level: str) -> dict:
    logging.basicConfig(
        level=level, format="APP %(levelname)s %(name)s %(message)s", force=True
    )
    return {}
"""


class Service:
    """The service under uvicorn in a process of its own, its stderr in a file."""

    def __init__(self, directory: Path) -> None:
        (directory / "service.py").write_text(SERVICE)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBSIGHT_")}
        env.update(
            DBSIGHT_SLOW_QUERY_THRESHOLD_MS="0.0001",
            DBSIGHT_N_PLUS_ONE_THRESHOLD="3",
            DBSIGHT_N_PLUS_ONE_MIN_TOTAL_MS="0",
        )
        port = free_port()
        self.stderr = directory / "stderr.log"
        with self.stderr.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "service:app", "--port", str(port)],
                cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def get(self, path: str, **params: str) -> None:
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, self.stderr.read_text()
            try:
                self.client.get(path, params=params).raise_for_status()
                return
            except httpx.TransportError:  # not listening yet
                assert time.monotonic() < deadline, self.stderr.read_text()
                time.sleep(0.1)

    def lines(self) -> list[str]:
        return self.stderr.read_text().splitlines()

    def wait_for(self, line: str) -> list[str]:
        """The lines once ``line`` is among them (a request's log lines follow its answer)."""
        deadline = time.monotonic() + 10
        while line not in (lines := self.lines()):
            assert time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.05)
        return lines

    def stop(self) -> None:
        self.client.close()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def json_lines(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_under_uvicorn_dbsight_logs_json_lines_until_the_application_configures_logging(
    tmp_path: Path,
) -> None:
    service = Service(tmp_path)
    try:
        # 1. no logging configured: access, slow-query and N+1 records as JSON lines
        service.get("/orders/7")
        deadline = time.monotonic() + 10
        while not [x for x in json_lines(service.lines()) if x.get("path") == "/orders/7"]:
            assert time.monotonic() < deadline, service.stderr.read_text()
            time.sleep(0.05)
        logged = json_lines(service.lines())
        (access,) = [x for x in logged if x.get("path") == "/orders/7"]
        assert access["logger"] == "dbsight.access" and access["level"] == "INFO"
        assert access["message"] == "GET /orders/7 200" and access["status"] == 200
        assert access["route"] == "/orders/{order_id}" and len(access["request_id"]) == 32
        slow = [x for x in logged if "threshold_ms" in x]
        assert len(slow) == 3 and all(x["normalized"] == "SELECT $1" for x in slow)
        (n_plus_one,) = [x for x in logged if x.get("logger") == "dbsight.n_plus_one"]
        assert n_plus_one["count"] == 3 and n_plus_one["request_id"] == access["request_id"]
        assert not [line for line in service.lines() if line.startswith(("APP ", "N+1", "GET"))]

        # 2. the application configures the root logger: its handler, its format, once
        service.get("/logging", level="INFO")
        before = len(service.lines())
        service.get("/orders/8")
        lines = service.wait_for("APP INFO dbsight.access GET /orders/8 200")[before:]
        assert not json_lines(lines)
        assert len([line for line in lines if line.startswith("APP WARNING dbsight.slow {")]) == 3
        assert len([line for line in lines if "/orders/8" in line]) == 1

        # 3. at WARNING: no access line at all, neither the application's nor dbsight's
        service.get("/logging", level="WARNING")
        before = len(service.lines())
        service.get("/orders/9")
        service.get("/logging", level="INFO")
        service.get("/orders/10")
        lines = service.wait_for("APP INFO dbsight.access GET /orders/10 200")[before:]
        assert not json_lines(lines)
        assert not [line for line in lines if "/orders/9" in line]
        assert len([line for line in lines if line.startswith("APP WARNING dbsight.slow")]) == 6
    finally:
        service.stop()
