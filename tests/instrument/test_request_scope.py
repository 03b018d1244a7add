"""``dbsight.request_scope()`` around a job gives what the middleware gives a web request: a
trace id and span (a root, or a child of the current span), a request id, N+1 findings at the
end and the block's database time; real queries on PostgreSQL through psycopg, a real HTTP
server on loopback receiving an instrumented httpx client's ``traceparent``."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest
from opentelemetry.sdk.trace import TracerProvider

import dbsight

ROUTE = "/jobs/nightly"
LOOKUP = "SELECT pg_sleep(%s), %s::int"


class _Echo(BaseHTTPRequestHandler):
    """Answers every GET with the request's headers as JSON (lower-case names)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def conn(pg_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
def findings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="dbsight.n_plus_one")
    return caplog


def traceparent_sent(client: httpx.Client, url: str) -> list[str]:
    """(trace id, span id, flags) of the ``traceparent`` the echo server received."""
    value = client.get(url).json().get("traceparent")
    assert value is not None, "no traceparent sent"
    return list(value.split("-")[1:])


def n_plus_one_total(route: str) -> float:
    registry = dbsight.get_runtime().registry
    return registry.get_sample_value("db_client_n_plus_one_total", {"route": route}) or 0.0


def test_a_job_scope_finds_n_plus_one_and_has_a_trace_without_tracing(
    conn: Any, echo: str, configure_dbsight: Any, findings: pytest.LogCaptureFixture
) -> None:
    events = configure_dbsight(tracing_enabled=False)
    dbsight.instrument(conn)
    with httpx.Client() as client:
        dbsight.instrument(client)
        with dbsight.request_scope(route=ROUTE) as request:
            for item in range(7):  # seven identical 17 ms lookups: an N+1 pattern
                conn.execute(LOOKUP, (0.017, item))
            trace_id, _, flags = traceparent_sent(client, echo)
    assert len(request.request_id) == 32 and len(request.trace_id or "") == 32
    assert trace_id == request.trace_id and flags == "01"
    lookups = events.matching("pg_sleep")
    assert len(lookups) == 7
    assert {(e.request_id, e.trace_id, e.route) for e in lookups} == {
        (request.request_id, request.trace_id, ROUTE)
    }
    assert request.queries == 7
    assert request.db_time_s == pytest.approx(sum(e.duration_s for e in lookups))
    [finding] = [r for r in findings.records if r.name == "dbsight.n_plus_one"]
    assert finding.route == ROUTE and finding.count == 7  # type: ignore[attr-defined]
    assert finding.request_id == request.request_id  # type: ignore[attr-defined]
    assert n_plus_one_total(ROUTE) == 1
    [entry] = dbsight.stats.n_plus_one()
    assert (entry["route"], entry["count"]) == (ROUTE, 7)


def test_a_job_scope_is_a_root_span_parent_of_its_queries_and_calls(
    conn: Any, echo: str, span_exporter: Any
) -> None:
    exporter, _ = span_exporter
    dbsight.instrument(conn)
    with httpx.Client() as client:
        dbsight.instrument(client)
        with dbsight.request_scope(route=ROUTE) as request:
            conn.execute("SELECT 1")
            trace_id, parent_id, flags = traceparent_sent(client, echo)
    spans = exporter.get_finished_spans()
    [scope] = [s for s in spans if s.name == ROUTE]
    assert scope.parent is None and scope.kind.name == "INTERNAL"
    assert scope.attributes["dbsight.request_id"] == request.request_id
    assert (request.trace_id, request.span_id) == (
        f"{scope.context.trace_id:032x}",
        f"{scope.context.span_id:016x}",
    )
    [query] = [s for s in spans if s.kind.name == "CLIENT" and s.name == "SELECT"]
    [call] = [s for s in spans if s.kind.name == "CLIENT" and s.name == "GET"]
    for child in (query, call):
        assert child.parent is not None and child.parent.span_id == scope.context.span_id
    assert trace_id == request.trace_id and parent_id == f"{call.context.span_id:016x}"
    assert int(flags, 16) & 1  # sampled (OpenTelemetry may add 0x02, random trace id)


def test_a_scope_inside_a_span_is_its_child_and_errors_propagate(
    conn: Any, span_exporter: Any
) -> None:
    exporter, _ = span_exporter
    dbsight.instrument(conn)
    app_tracer = TracerProvider().get_tracer("app")  # the application's own tracer
    with app_tracer.start_as_current_span("worker") as outer:
        with pytest.raises(psycopg.errors.DivisionByZero):
            with dbsight.request_scope(route="job:divide") as request:
                conn.execute("SELECT 1 / 0")
    outer_context = outer.get_span_context()
    [scope] = [s for s in exporter.get_finished_spans() if s.name == "job:divide"]
    assert scope.parent is not None and scope.parent.span_id == outer_context.span_id
    assert scope.context.trace_id == outer_context.trace_id
    assert request.trace_id == f"{outer_context.trace_id:032x}"
    assert scope.status.status_code.name == "ERROR"
    assert scope.attributes["error.type"] == "DivisionByZero"


def test_a_scope_continues_a_trace_it_is_given(conn: Any, span_exporter: Any) -> None:
    exporter, collector = span_exporter
    dbsight.instrument(conn)
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with dbsight.request_scope("job-1", trace_id=caller_trace, span_id=caller_span) as request:
        conn.execute("SELECT 2")
    [scope] = [s for s in exporter.get_finished_spans() if s.name == "request_scope"]
    assert f"{scope.context.trace_id:032x}" == caller_trace
    assert scope.parent is not None and f"{scope.parent.span_id:016x}" == caller_span
    [event] = collector.matching("SELECT 2")
    assert (event.request_id, event.trace_id) == ("job-1", caller_trace)
    assert request.span_id == f"{scope.context.span_id:016x}"


def test_a_scope_without_dbsight_tracing_takes_the_current_span_ids(
    conn: Any, configure_dbsight: Any
) -> None:
    events = configure_dbsight(tracing_enabled=False)
    dbsight.instrument(conn)
    app_tracer = TracerProvider().get_tracer("app")
    with app_tracer.start_as_current_span("worker") as outer:
        with dbsight.request_scope() as request:
            conn.execute("SELECT 3")
    context = outer.get_span_context()
    assert (request.trace_id, request.span_id) == (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
    )
    [event] = events.matching("SELECT 3")
    assert event.trace_id == request.trace_id
