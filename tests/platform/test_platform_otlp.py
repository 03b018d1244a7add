"""Traces and logs leave over OTLP when a collector is configured: gRPC (seed 004's
protocol) and HTTP, each to a real receiver on loopback. The request's server span, its
database span and its log lines carry the trace id the response's envelope shows, and what
is queued is flushed when the platform stops."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from platform_helpers import serve_in_process


class Received:
    def __init__(self) -> None:
        self.traces: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.logs: list[logs_service_pb2.ExportLogsServiceRequest] = []

    def spans(self) -> list[Any]:
        return [
            span
            for request in self.traces
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def log_records(self) -> list[Any]:
        return [
            record
            for request in self.logs
            for resource in request.resource_logs
            for scope in resource.scope_logs
            for record in scope.log_records
        ]

    def service_names(self) -> set[str]:
        names = set()
        for request in self.traces:
            for resource in request.resource_spans:
                for attribute in resource.resource.attributes:
                    if attribute.key == "service.name":
                        names.add(attribute.value.string_value)
        return names


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: Any) -> Any:
        self.received.traces.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: Any) -> Any:
        self.received.logs.append(request)
        return logs_service_pb2.ExportLogsServiceResponse()


@pytest.fixture
def grpc_collector() -> Iterator[tuple[str, Received]]:
    received = Received()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(received), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(received), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.stop(grace=None)


@pytest.fixture
def http_collector(httpserver: Any) -> tuple[str, Received]:
    from werkzeug import Response

    received = Received()

    def traces(request: Any) -> Any:
        received.traces.append(trace_service_pb2.ExportTraceServiceRequest.FromString(request.data))
        return Response(b"", content_type="application/x-protobuf")

    def logs(request: Any) -> Any:
        received.logs.append(logs_service_pb2.ExportLogsServiceRequest.FromString(request.data))
        return Response(b"", content_type="application/x-protobuf")

    httpserver.expect_request("/v1/traces", method="POST").respond_with_handler(traces)
    httpserver.expect_request("/v1/logs", method="POST").respond_with_handler(logs)
    return httpserver.url_for("/").rstrip("/"), received


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
async def test_traces_and_logs_exported(
    protocol: str,
    request: pytest.FixtureRequest,
    platform_pg_url: str,
    platform_settings_factory: Callable[..., Any],
    fresh_runtime: Any,
) -> None:
    from dbsight_platform.main import create_app

    collector = "grpc_collector" if protocol == "grpc" else "http_collector"
    endpoint, received = request.getfixturevalue(collector)
    settings = platform_settings_factory(
        platform_pg_url,
        otel_exporter_endpoint=endpoint,
        otel_exporter_protocol=protocol,
        otel_service_name="platform-under-test",
        log_level="INFO",
    )
    async with serve_in_process(create_app(settings)) as client:
        response = await client.get("/v1/app-b/products", params={"name": "otlp"})
        assert response.status_code == 200
        trace_id = response.json()["trace_id"]
        missing = await client.get("/v1/app-b/products/2147483647")
        missing_trace = missing.json()["trace_id"]
    # Leaving the lifespan flushed the exporters: everything has arrived.
    spans = [span for span in received.spans() if span.trace_id.hex() == trace_id]
    kinds = {span.kind for span in spans}
    assert 2 in kinds  # SPAN_KIND_SERVER: the request
    assert 3 in kinds  # SPAN_KIND_CLIENT: its queries
    server_span = next(span for span in spans if span.kind == 2)
    assert any(span.parent_span_id == server_span.span_id for span in spans if span.kind == 3)
    assert any(span.trace_id.hex() == missing_trace for span in received.spans())
    assert received.service_names() == {"platform-under-test"}
    records = received.log_records()
    assert any(record.trace_id.hex() == trace_id for record in records)
    assert all("otlp" not in record.body.string_value for record in records)  # no literals


async def test_nothing_exported_without_an_endpoint(
    platform_pg_url: str, platform_settings_factory: Callable[..., Any], fresh_runtime: Any
) -> None:
    from dbsight_platform.main import create_app

    app = create_app(platform_settings_factory(platform_pg_url))
    assert app.state.telemetry.tracer_provider is None
    async with serve_in_process(app) as client:
        response = await client.get("/v1/app-b/products")
    assert response.json()["trace_id"] == response.headers["traceparent"].split("-")[1]
