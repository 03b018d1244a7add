"""The JSON fields of a query record, shared by the query log and the slow-query log."""

from __future__ import annotations

from typing import Any

from ..core import QueryEvent, public_message


def event_fields(event: QueryEvent, include_bodies: bool) -> dict[str, Any]:
    """A query event as JSON-ready fields; statement text and parameters only with
    ``include_bodies``, the error message in full only then (see `error_message`)."""
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
    if error is not None:
        message = error_message(event, include_bodies)
        if message:
            fields["error_message"] = message
    if include_bodies:
        fields["sql"] = event.sql
        fields["params"] = event.params
    return fields


def error_message(event: QueryEvent, include_bodies: bool) -> str | None:
    """A failed statement's error message: as the server (or client library) gave it with
    ``include_bodies``, else only what cannot quote the statement's values."""
    error = event.error
    if error is None:
        return None
    if include_bodies:
        return error.message or None
    return public_message(error, event.system)
