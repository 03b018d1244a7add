"""httpx ``Client`` / ``AsyncClient`` instrumentation against a real HTTP server on loopback
that echoes the headers it received: external API metrics by service and status, spans,
W3C trace context propagation, errors re-raised unchanged, exact uninstrument."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from instrument_helpers import SPAN_ID, TRACE_ID
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState
from prometheus_client import generate_latest

import dbsight
from dbsight.core import Settings

# The application's tracer: a provider of its own, as an application would have.
APP_TRACER = TracerProvider().get_tracer("app")
SECRET = "s3cr3t-token"
OWN_TRACEPARENT = "00-11111111111111111111111111111111-2222222222222222-01"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def sampled(flags: str) -> bool:
    """The W3C sampled bit (OpenTelemetry also sets 0x02, "random trace id")."""
    return bool(int(flags, 16) & 1)



class _EchoHandler(BaseHTTPRequestHandler):
    """``/status/<code>`` answers with that code, ``/redirect`` sends to ``/echo``; anything
    else answers 200 with the request's headers as JSON (lower-case names)."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        status, body, extra = 200, b"", {}
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
        elif path == "/redirect":
            status, extra = 302, {"Location": "/echo"}
        else:
            headers = {name.lower(): value for name, value in self.headers.items()}
            body = json.dumps(headers).encode()
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """Base URL of the echo server (http://127.0.0.1:<port>)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def port(server: str) -> int:
    return int(server.rsplit(":", 1)[1])


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server) as c:
        yield c


@pytest.fixture
async def aclient(server: str) -> Any:
    async with httpx.AsyncClient(base_url=server) as c:
        yield c


@pytest.fixture
def spans(span_exporter: Any) -> tuple[InMemorySpanExporter, Any]:
    """(exporter of dbsight's spans, a tracer of the application's own for parent spans)."""
    return span_exporter[0], APP_TRACER


def requests(service: str, status: str) -> float:
    labels = {"service": service, "status": status}
    registry = dbsight.get_runtime().registry
    return registry.get_sample_value("external_api_requests_total", labels) or 0.0


def timed(service: str, status: str) -> float:
    labels = {"service": service, "status": status}
    registry = dbsight.get_runtime().registry
    value = registry.get_sample_value("external_api_request_duration_seconds_count", labels)
    return value or 0.0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_from_two_hosts(server: str, port: int) -> None:
    """GET /echo from 127.0.0.1 and /status/204 from localhost (one server, two hosts)."""
    with httpx.Client() as c:
        dbsight.instrument(c)
        c.get(f"{server}/echo")
        c.get(f"http://localhost:{port}/status/204")


def received(response: httpx.Response) -> dict[str, str]:
    return response.json()  # type: ignore[no-any-return]


# -- metrics ---------------------------------------------------------------------------------
def _calls(c: httpx.Client) -> list[tuple[int, bytes]]:
    responses = [
        c.get("/echo"),
        c.post("/echo", content=b"payload"),
        c.get("/status/404"),
        c.get("/status/503"),
        c.get("/redirect", follow_redirects=True),
    ]
    with c.stream("GET", "/echo") as streamed:
        responses.append(streamed)
        streamed.read()
    return [(r.status_code, r.headers["content-type"].encode()) for r in responses]


def test_requests_are_counted_by_service_and_status_with_unchanged_responses(
    client: httpx.Client, events: Any
) -> None:
    plain = _calls(client)
    handle = dbsight.instrument(client)
    assert (handle.source, handle.system, handle.target) == ("httpx", "http", client)
    assert _calls(client) == plain
    # unmapped hosts are labelled by host name; a followed redirect is one request
    assert requests("127.0.0.1", "200") == timed("127.0.0.1", "200") == 4
    assert requests("127.0.0.1", "404") == requests("127.0.0.1", "503") == 1
    assert requests("127.0.0.1", "302") == 0


def test_transport_errors_are_reraised_unchanged_and_labelled_error(
    configure_dbsight: Any,
) -> None:
    configure_dbsight()
    url = f"http://127.0.0.1:{closed_port()}/"
    with httpx.Client() as c:
        with pytest.raises(httpx.ConnectError) as plain:
            c.get(url)
        dbsight.instrument(c)
        with pytest.raises(httpx.ConnectError) as caught:
            c.get(url)
    assert type(caught.value) is type(plain.value)
    assert str(caught.value) == str(plain.value)
    assert requests("127.0.0.1", "error") == timed("127.0.0.1", "error") == 1


def test_service_names_come_from_settings(
    server: str, port: int, configure_dbsight: Any
) -> None:
    configure_dbsight(
        external_api_services={f"127.0.0.1:{port}": "echo", "LOCALHOST": "local"}
    )
    get_from_two_hosts(server, port)
    assert requests("echo", "200") == 1
    assert requests("local", "204") == 1


def test_the_services_setting_is_read_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DBSIGHT_EXTERNAL_API_SERVICES", '{"API.Stripe.com": "stripe"}')
    assert Settings().external_api_services == {"api.stripe.com": "stripe"}
    monkeypatch.setenv("DBSIGHT_EXTERNAL_API_SERVICES", '{"api.stripe.com": ""}')
    with pytest.raises(dbsight.ConfigError, match="external_api_services"):
        Settings()


def test_unmapped_hosts_pass_a_cardinality_guard(
    server: str, port: int, configure_dbsight: Any
) -> None:
    configure_dbsight(metrics_max_label_values=1)
    get_from_two_hosts(server, port)
    assert requests("127.0.0.1", "200") == 1
    assert requests("other", "204") == 1


# -- trace context ---------------------------------------------------------------------------
def test_spans_are_client_children_and_their_context_is_propagated(
    client: httpx.Client, port: int, spans: Any
) -> None:
    exporter, tracer = spans
    dbsight.instrument(client)
    with tracer.start_as_current_span("GET /orders/{id}") as parent:
        echoed = received(client.get(f"/echo?token={SECRET}"))
        client.get("/status/500")
    get = [s for s in exporter.get_finished_spans() if s.name == "GET"]
    assert len(get) == 2
    ok, failed = get
    parent_context = parent.get_span_context()
    for span in get:
        assert span.kind is SpanKind.CLIENT
        assert span.parent.span_id == parent_context.span_id
    match = TRACEPARENT.fullmatch(echoed["traceparent"])
    assert match is not None
    assert match.groups()[:2] == (
        format(parent_context.trace_id, "032x"),
        format(ok.context.span_id, "016x"),
    )
    assert sampled(match.group(3))
    assert dict(ok.attributes) == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": port,
        "url.full": f"http://127.0.0.1:{port}/echo",
        "url.scheme": "http",
        "http.response.status_code": 200,
    }
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.attributes["http.response.status_code"] == 500
    assert failed.attributes["error.type"] == "500"
    assert failed.status.status_code is StatusCode.ERROR


def test_query_strings_only_with_query_bodies_and_never_credentials(
    server: str, port: int, configure_dbsight: Any
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    configure_dbsight(tracer_provider=provider, include_query_bodies=True)
    with httpx.Client() as c:
        dbsight.instrument(c)
        c.get(f"http://user:{SECRET}@127.0.0.1:{port}/echo?q=1#part")
    (span,) = exporter.get_finished_spans()
    assert span.attributes["url.full"] == f"http://127.0.0.1:{port}/echo?q=1"
    provider.shutdown()


def test_transport_error_spans(spans: Any) -> None:
    exporter, _ = spans
    with httpx.Client() as c:
        dbsight.instrument(c)
        with pytest.raises(httpx.ConnectError):
            c.get(f"http://127.0.0.1:{closed_port()}/")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ConnectError"
    assert "http.response.status_code" not in span.attributes


def test_tracestate_is_propagated_with_the_span(client: httpx.Client, spans: Any) -> None:
    dbsight.instrument(client)
    remote = SpanContext(
        int(TRACE_ID, 16),
        int(SPAN_ID, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "opaque")]),
    )
    with trace.use_span(NonRecordingSpan(remote)):
        echoed = received(client.get("/echo"))
    assert echoed["traceparent"].startswith(f"00-{TRACE_ID}-")
    assert echoed["tracestate"] == "vendor=opaque"


def test_without_tracing_the_request_scope_trace_is_propagated(
    client: httpx.Client, events: Any
) -> None:
    dbsight.instrument(client)
    assert "traceparent" not in received(client.get("/echo"))  # no trace to join
    with dbsight.request_scope(trace_id=TRACE_ID, span_id=SPAN_ID):
        first = received(client.get("/echo"))["traceparent"]
        second = received(client.get("/echo"))["traceparent"]
    for value in (first, second):
        match = TRACEPARENT.fullmatch(value)
        assert match is not None
        assert match.group(1) == TRACE_ID and match.group(3) == "01"
        assert match.group(2) != "0" * 16
    assert first != second  # a fresh span id per request


def test_without_dbsight_tracing_an_application_span_is_propagated(
    client: httpx.Client, events: Any
) -> None:
    dbsight.instrument(client)
    provider = TracerProvider()  # the application's own, not given to dbsight
    with provider.get_tracer("app").start_as_current_span("job") as span:
        echoed = received(client.get("/echo"))
    context = span.get_span_context()
    match = TRACEPARENT.fullmatch(echoed["traceparent"])
    assert match is not None
    assert match.groups()[:2] == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    provider.shutdown()


def test_a_traceparent_set_by_the_caller_is_kept(
    client: httpx.Client, spans: Any
) -> None:
    _, tracer = spans
    dbsight.instrument(client)
    with tracer.start_as_current_span("job"):
        echoed = received(client.get("/echo", headers={"traceparent": OWN_TRACEPARENT}))
    assert echoed["traceparent"] == OWN_TRACEPARENT
    with dbsight.request_scope(trace_id=TRACE_ID):
        echoed = received(client.get("/echo", headers={"TraceParent": OWN_TRACEPARENT}))
    assert echoed["traceparent"] == OWN_TRACEPARENT


def test_a_request_sent_again_gets_a_fresh_traceparent(
    client: httpx.Client, events: Any
) -> None:
    dbsight.instrument(client)
    request = client.build_request("GET", "/echo")
    with dbsight.request_scope(trace_id=TRACE_ID):
        first = received(client.send(request))["traceparent"]
        second = received(client.send(request))["traceparent"]
    assert first != second and first.startswith(f"00-{TRACE_ID}-")


# -- async -----------------------------------------------------------------------------------
async def test_async_client(aclient: httpx.AsyncClient, spans: Any) -> None:
    exporter, tracer = spans
    handle = dbsight.instrument(aclient)
    assert dbsight.instrument(aclient) is handle
    with tracer.start_as_current_span("job"):
        echoed = received(await aclient.get("/echo"))
        assert (await aclient.get("/status/404")).status_code == 404
        async with aclient.stream("GET", "/echo") as streamed:
            assert received(httpx.Response(200, content=await streamed.aread()))
    with pytest.raises(httpx.ConnectError):
        await aclient.get(f"http://127.0.0.1:{closed_port()}/")
    (first, *_) = [s for s in exporter.get_finished_spans() if s.name == "GET"]
    assert echoed["traceparent"].split("-")[2] == f"{first.context.span_id:016x}"
    assert requests("127.0.0.1", "200") == 2
    assert requests("127.0.0.1", "404") == requests("127.0.0.1", "error") == 1

    handle.uninstrument()
    assert "send" not in vars(aclient)
    with tracer.start_as_current_span("job"):
        assert "traceparent" not in received(await aclient.get("/echo"))
    assert requests("127.0.0.1", "200") == 2


# -- lifecycle -------------------------------------------------------------------------------
def test_uninstrument_restores_the_client_exactly(
    client: httpx.Client, events: Any
) -> None:
    before = dict(vars(client))
    handle = dbsight.instrument(client)
    assert dbsight.instrument(client) is handle
    handle.uninstrument()
    handle.uninstrument()
    assert vars(client) == before
    assert client.send.__func__ is httpx.Client.send
    with dbsight.request_scope(trace_id=TRACE_ID):
        assert "traceparent" not in received(client.get("/echo"))
    assert requests("127.0.0.1", "200") == 0
    assert dbsight.instrument(client) is not handle


def test_disabled_dbsight_neither_records_nor_injects(
    client: httpx.Client, configure_dbsight: Any
) -> None:
    configure_dbsight(enabled=False)
    dbsight.instrument(client)
    with dbsight.request_scope(trace_id=TRACE_ID):
        assert "traceparent" not in received(client.get("/echo"))
    assert b"external_api" not in generate_latest(dbsight.get_runtime().registry)
