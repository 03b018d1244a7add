"""Statements relayed by the proxy, as `QueryEvent`s in the same recorder and sinks as the
in-process instruments.

A statement starts at its first message (a Query, or the first Parse/Bind of an Execute, as
`SessionState` dates it) and ends at its CommandComplete or ErrorResponse. Its recorder
context is opened when the client's request is seen (so a span starts then) and finished
with the rows of the command tag, or failed with the server's SQLSTATE.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from .._runtime import recorder
from ..core._sqlcomment import parse_comment
from .protocol import Completion, PendingRequest, RequestKind

SOURCE = "proxy"
SYSTEM = "postgresql"
_STATEMENT_KINDS = frozenset((RequestKind.QUERY, RequestKind.EXECUTE))


class ServerError(Exception):
    """The server's ErrorResponse for a relayed statement (what the recorder records)."""

    def __init__(self, sqlstate: str | None, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _remote_parent(sql: str) -> Any:
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


class StatementObserver:
    """Opens and closes recorder contexts for one client session's statements."""

    def __init__(
        self,
        *,
        user: str | None,
        database: str | None,
        application_name: str | None,
        client_addr: str | None,
    ) -> None:
        self.user = user
        self.database = database
        self.application_name = application_name
        self.client_addr = client_addr
        self._open: dict[int, Any] = {}  # id(PendingRequest) -> recorder context

    def requested(self, request: PendingRequest) -> None:
        """A Query or Execute the client sent (its text known from the session state)."""
        if request.kind not in _STATEMENT_KINDS or not recorder.active:
            return
        sql = request.query if request.query is not None else ""
        parent = _remote_parent(sql)
        token = otel_context.attach(parent) if parent is not None else None
        try:
            ctx = recorder.start(sql, SYSTEM, SOURCE, database=self.database, user=self.user)
        finally:
            if token is not None:
                otel_context.detach(token)
        if request.started_at is not None:  # from its first message, not from now
            ctx.started = request.started_at
            ctx.started_at = time.time() - (time.perf_counter() - request.started_at)
        ctx.application_name = self.application_name
        ctx.client_addr = self.client_addr
        self._open[id(request)] = (request, ctx)

    def completed(self, completion: Completion) -> None:
        for skipped in completion.skipped:
            self._open.pop(id(skipped), None)  # never ran: the server skipped to Sync
        entry = self._open.pop(id(completion.request), None)
        if entry is None:
            return
        ctx = entry[1]
        error = completion.error
        if error is None:
            recorder.finish(ctx, completion.rows)
        else:
            recorder.fail(ctx, ServerError(error.sqlstate, error.message or ""))

    def abandoned(self) -> None:
        """The session ended with statements unanswered (the client left mid-query)."""
        open_, self._open = self._open, {}
        for _, ctx in open_.values():
            recorder.fail(ctx, ServerError("57014", "client disconnected; statement cancelled"))
