"""OpenTelemetry SDK for the platform: traces and logs over OTLP, gRPC (seed 004 §5.4) or
HTTP, when ``PLATFORM_OTEL_EXPORTER_ENDPOINT`` names a collector.

Spans and log records are batched and exported in a background thread, so a slow or absent
collector never holds a request; the exporters retry with back-off and then drop. Without
an endpoint nothing is installed and nothing leaves the process. `Telemetry.shutdown`
flushes what is queued (the last step of a graceful shutdown).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..core.config import Settings

log = logging.getLogger("dbsight_platform.telemetry")
EXPORT_TIMEOUT_S = 5


@dataclass
class Telemetry:
    """The installed providers (None when nothing is exported) and the log handler."""

    tracer_provider: Any = None
    logger_provider: Any = None
    log_handler: logging.Handler | None = None
    _closed: bool = field(default=False, repr=False)

    def flush(self, timeout_ms: int = 5000) -> None:
        for provider in (self.tracer_provider, self.logger_provider):
            if provider is not None:
                provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        """Flush and stop the exporters; the log handler leaves the root logger."""
        if self._closed:
            return
        self._closed = True
        if self.log_handler is not None:
            logging.getLogger().removeHandler(self.log_handler)
        for provider in (self.tracer_provider, self.logger_provider):
            if provider is not None:
                try:
                    provider.shutdown()
                except Exception:  # a collector gone at exit must not fail the shutdown
                    log.warning("telemetry shutdown failed", exc_info=True)


def _http_url(endpoint: str, signal: str) -> str:
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return f"{endpoint.rstrip('/')}/v1/{signal}"
    return endpoint


def _exporters(settings: Settings) -> tuple[Any, Any]:
    endpoint = settings.otel_exporter_endpoint
    assert endpoint is not None
    if settings.otel_exporter_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
            OTLPLogExporter as GrpcLogExporter,
        )
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        insecure = endpoint.startswith("http://")
        return (
            GrpcSpanExporter(endpoint=endpoint, insecure=insecure, timeout=EXPORT_TIMEOUT_S),
            GrpcLogExporter(endpoint=endpoint, insecure=insecure, timeout=EXPORT_TIMEOUT_S),
        )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HttpLogExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return (
        HttpSpanExporter(endpoint=_http_url(endpoint, "traces"), timeout=EXPORT_TIMEOUT_S),
        HttpLogExporter(endpoint=_http_url(endpoint, "logs"), timeout=EXPORT_TIMEOUT_S),
    )


def setup_telemetry(settings: Settings) -> Telemetry:
    """Install the SDK providers exporting to the configured collector, or nothing."""
    if settings.otel_exporter_endpoint is None:
        return Telemetry()
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create(
        {
            "service.name": settings.service_name,
            "deployment.environment.name": settings.environment,
        }
    )
    span_exporter, log_exporter = _exporters(settings)
    tracer_provider = TracerProvider(
        resource=resource,
        sampler=ParentBased(TraceIdRatioBased(settings.effective_trace_sample_rate)),
    )
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
    with warnings.catch_warnings():  # the SDK's handler is deprecated for a contrib one
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
    logging.getLogger().addHandler(handler)
    return Telemetry(tracer_provider, logger_provider, handler)
