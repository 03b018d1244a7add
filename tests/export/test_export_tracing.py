"""OpenTelemetry spans per statement: parentage, semantic-convention attributes, sampling,
privacy, and export over OTLP/HTTP to a local stand-in collector."""

from __future__ import annotations

import gzip
import http.server
import threading

import psycopg
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, SpanKind, StatusCode

from dbsight.core import Recorder, Settings
from dbsight.export import TracingSink
from dbsight.export.tracing import otlp_traces_url

SECRET = "s3cr3t-literal"
SQL = f"SELECT id, name FROM users WHERE email = '{SECRET}'"


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def make(provider, **settings) -> tuple[Recorder, TracingSink]:
    config = Settings(**settings)
    sink = TracingSink(config, tracer_provider=provider)
    rec = Recorder(config)
    rec.add_observer(sink)
    return rec, sink


def test_span_is_a_client_child_of_the_current_span(provider, exporter):
    rec, sink = make(provider)
    assert sink.active
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("GET /users/{id}") as parent:
        ctx = rec.start(SQL, "postgresql", "psycopg", database="shop")
        # the query span is not made current: the application's span stays current
        assert trace.get_current_span() is parent
        event = rec.finish(ctx, rows=1)

    spans = {span.name: span for span in exporter.get_finished_spans()}
    span = spans["SELECT users"]
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.context.trace_id == parent.get_span_context().trace_id
    assert event.trace_id == format(span.context.trace_id, "032x")
    assert event.span_id == format(span.context.span_id, "016x")

    attributes = dict(span.attributes)
    assert attributes["db.system"] == "postgresql"
    assert attributes["db.system.name"] == "postgresql"
    assert attributes["db.operation.name"] == "SELECT"
    assert attributes["db.collection.name"] == "users"
    assert attributes["db.namespace"] == "shop"
    assert attributes["db.query.text"] == event.normalized
    assert attributes["db.response.returned_rows"] == 1
    assert attributes["dbsight.fingerprint"] == event.fingerprint
    assert attributes["dbsight.source"] == "psycopg"
    assert span.status.status_code is StatusCode.UNSET
    assert not any(SECRET in str(v) for v in attributes.values())


def test_failed_statement_from_a_real_server_sets_error_status(provider, exporter, pg_dsn):
    rec, _ = make(provider)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, email text)")
        conn.execute("INSERT INTO users VALUES (1, 'a@example.com')")
        sql = f"INSERT INTO users VALUES (1, '{SECRET}')"
        ctx = rec.start(sql, "postgresql", "psycopg")
        with pytest.raises(psycopg.errors.UniqueViolation) as excinfo:
            conn.execute(sql)
        event = rec.fail(ctx, excinfo.value)

    (span,) = exporter.get_finished_spans()
    assert span.name == "INSERT users"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["db.response.status_code"] == "23505" == event.error.sqlstate
    assert span.attributes["error.type"] == "UniqueViolation"
    assert SECRET not in (span.status.description or "")
    assert not any(SECRET in str(v) for v in span.attributes.values())
    assert not any(SECRET in str(e.attributes) for e in span.events)


def test_query_bodies_are_exported_only_when_enabled(provider, exporter):
    rec, _ = make(provider, include_query_bodies=True)
    ctx = rec.start(SQL, "postgresql", "test")
    rec.fail(ctx, ValueError(f"bad value {SECRET}"))
    (span,) = exporter.get_finished_spans()
    assert span.attributes["db.query.text"] == SQL
    assert span.status.description == f"bad value {SECRET}"


def test_no_span_under_an_unsampled_parent_or_when_the_root_is_not_sampled(provider, exporter):
    rec, _ = make(provider)
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("app")
    with unsampled.start_as_current_span("unsampled request"):
        ctx = rec.start(SQL, "postgresql", "test")
        assert ctx.span is None
        rec.finish(ctx)

    rec, _ = make(provider, trace_sample_rate=0.0)
    ctx = rec.start(SQL, "postgresql", "test")
    assert ctx.span is None and ctx.trace_id is None
    rec.finish(ctx)

    # a provider whose sampler says no gives a non-recording span: no attributes, no ids
    rec, _ = make(TracerProvider(sampler=ALWAYS_OFF))
    ctx = rec.start(SQL, "postgresql", "test")
    assert ctx.span is None and ctx.trace_id is None
    rec.finish(ctx)
    assert exporter.get_finished_spans() == ()


def test_a_decision_for_one_statement_overrides_the_rate(provider, exporter):
    """The proxy's sample step decides per statement: sampled=True under a 0 rate gives a
    span, sampled=False under rate 1 none (an unsampled parent still wins)."""
    rec, _ = make(provider, trace_sample_rate=0.0)
    rec.finish(rec.start(SQL, "postgresql", "test", sampled=True))
    rec, _ = make(provider)
    ctx = rec.start(SQL, "postgresql", "test", sampled=False)
    assert ctx.span is None
    rec.finish(ctx)
    assert len(exporter.get_finished_spans()) == 1
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("app")
    with unsampled.start_as_current_span("unsampled request"):
        ctx = rec.start(SQL, "postgresql", "test", sampled=True)
        assert ctx.span is None
        rec.finish(ctx)


def test_root_statements_start_their_own_trace(provider, exporter):
    rec, _ = make(provider)
    rec.finish(rec.start("BEGIN", "postgresql", "test"))
    (span,) = exporter.get_finished_spans()
    assert span.parent is None
    assert span.name == span.attributes["db.operation.name"]
    assert "db.collection.name" not in span.attributes


def test_inactive_without_an_sdk_provider():
    assert not TracingSink(Settings(), tracer_provider=NoOpTracerProvider()).active
    if not isinstance(trace.get_tracer_provider(), ProxyTracerProvider):
        pytest.skip("a global tracer provider was installed by another test")
    assert not TracingSink(Settings()).active


class _Collector(http.server.BaseHTTPRequestHandler):
    """A stand-in OTLP/HTTP collector that keeps what it receives."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def collector():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_otlp_endpoint_exports_to_a_local_collector(collector):
    host, port = collector.server_address
    settings = Settings(otlp_endpoint=f"http://{host}:{port}", service_name="shop")
    sink = TracingSink(settings)
    assert sink.active
    rec = Recorder(settings)
    rec.add_observer(sink)
    rec.finish(rec.start(SQL, "postgresql", "asyncpg"), rows=3)
    sink.close()  # shuts down the provider dbsight built, which flushes the batch

    assert collector.received, "nothing was exported"
    path, content_type, body = collector.received[0]
    assert path == "/v1/traces"
    assert content_type == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "shop"
    spans = [span for scope in resource_spans.scope_spans for span in scope.spans]
    (span,) = spans
    assert span.name == "SELECT users"
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["db.system.name"].string_value == "postgresql"
    assert attributes["db.response.returned_rows"].int_value == 3
    assert SECRET not in attributes["db.query.text"].string_value
    assert SECRET.encode() not in body


def test_otlp_url_gets_the_traces_path_only_when_it_has_none():
    assert otlp_traces_url("http://127.0.0.1:4318") == "http://127.0.0.1:4318/v1/traces"
    assert otlp_traces_url("http://127.0.0.1:4318/") == "http://127.0.0.1:4318/v1/traces"
    custom = "http://collector:4318/custom/path"
    assert otlp_traces_url(custom) == custom

