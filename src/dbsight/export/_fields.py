"""The JSON fields of a query record, shared by the query log and the slow-query log."""

from __future__ import annotations

from typing import Any

from ..core import QueryEvent


def event_fields(event: QueryEvent, include_bodies: bool) -> dict[str, Any]:
    """A query event as JSON-ready fields; statement text, parameters and the server's
    error message (which may quote literals) only with ``include_bodies``."""
    error = event.error
    fields: dict[str, Any] = {
        "duration_ms": round(event.duration_s * 1000.0, 3),
        "fingerprint": event.fingerprint,
        "normalized": event.normalized,
        "operation": event.operation,
        "tables": list(event.tables),
        "system": event.system,
        "source": event.source,
        "rows": event.rows,
        "outcome": event.outcome,
        "sqlstate": error.sqlstate if error is not None else None,
        "error_type": error.type if error is not None else None,
        "route": event.route,
        "request_id": event.request_id,
        "trace_id": event.trace_id,
        "span_id": event.span_id,
        "app": event.app,
        "database": event.database,
        "function": event.function,
    }
    if include_bodies:
        fields["sql"] = event.sql
        fields["params"] = event.params
        if error is not None and error.message:
            fields["error_message"] = error.message
    return fields
