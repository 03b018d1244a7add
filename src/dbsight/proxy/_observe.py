"""What the proxy's statement events share with the in-process ones: their system and source,
the error a failed statement is recorded with, and the application's trace a sqlcommenter
``traceparent`` comment points at (`dbsight.proxy._exchange` opens and closes the events).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from ..core._sqlcomment import parse_comment

SOURCE = "proxy"
SYSTEM = "postgresql"


class ServerError(Exception):
    """The server's ErrorResponse for a relayed statement (what the recorder records)."""

    def __init__(self, sqlstate: str | None, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def remote_parent(sql: str) -> Any:
    """The OpenTelemetry context of a sqlcommenter ``traceparent`` ending ``sql``, or None."""
    if "*/" not in sql:
        return None
    value = parse_comment(sql).get("traceparent")
    if not value:
        return None
    parts = value.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    remote = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
    return trace.set_span_in_context(NonRecordingSpan(remote))
