"""What the proxy's statement events share with the in-process ones: their system and source,
the error a failed statement is recorded with, and the application's request and trace a
sqlcommenter comment names (`dbsight.proxy._exchange` opens and closes the events).
"""

from __future__ import annotations

from typing import Any

from ..core._comment_context import CommentContext, split_comment
from ..core._correlation import remote_context

__all__ = ["SOURCE", "SYSTEM", "ServerError", "remote_parent", "split_comment"]

SOURCE = "proxy"
SYSTEM = "postgresql"


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
