"""What the proxy's statement events share with the in-process ones: their system and source,
the error a failed statement is recorded with, and the application's request and trace a
sqlcommenter comment names (`dbsight.proxy._exchange` opens and closes the events).
"""

from __future__ import annotations

from typing import Any

from ..core._comment_context import CommentContext, split_comment
from ..core._correlation import remote_context

__all__ = [
    "SOURCE", "SYSTEM", "ServerError", "SessionFacts", "remote_parent", "split_comment",
]  # fmt: skip

SOURCE = "proxy"
SYSTEM = "postgresql"


class SessionFacts:
    """Who a session's statements come from, as their events say it: its database, user,
    application_name and client address (the ``state`` of the recorder's lean path, which
    reads it when a batch is folded). Never changed once made: when the client's
    application_name changes, the session makes a new one, and the statements that ran
    before keep the old."""

    __slots__ = ("application_name", "client_addr", "database", "user")

    explainer = None  # (relayed statements are not explained)

    def __init__(
        self,
        database: str | None,
        user: str | None,
        application_name: str | None,
        client_addr: str | None,
    ) -> None:
        self.database = database
        self.user = user
        self.application_name = application_name
        self.client_addr = client_addr


class ServerError(Exception):
    """The server's ErrorResponse for a relayed statement (what the recorder records)."""

    def __init__(self, sqlstate: str | None, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def remote_parent(comment: CommentContext) -> Any:
    """The OpenTelemetry context of the sender's span a sqlcommenter ``traceparent`` names
    (the parent of the proxy's span for the statement), or None without one."""
    if comment.trace_id is None or comment.span_id is None:
        return None
    return remote_context(
        comment.trace_id, comment.span_id, comment.trace_flags, comment.tracestate
    )
