"""Why the proxy could not give a client a server connection, each with the SQLSTATE to answer.

The session layer turns any of these into the client's ErrorResponse with ``error_response()``:
the client sees the same codes PostgreSQL itself would use (08006 when the server cannot be
reached, 53300 when every connection is taken, the server's own code when it refused a login).
"""

from __future__ import annotations

from typing import Literal

from . import protocol as p

CONNECTION_FAILURE = "08006"
TOO_MANY_CONNECTIONS = "53300"
CANNOT_CONNECT_NOW = "57P03"
ADMIN_SHUTDOWN = "57P01"


class BackendError(Exception):
    """Base of the pool's errors: ``sqlstate`` and a ``message`` fit to send to the client."""

    def __init__(self, message: str, sqlstate: str, *, detail: str | None = None) -> None:
        super().__init__(message if detail is None else f"{message} ({detail})")
        self.message = message
        self.sqlstate = sqlstate
        self.detail = detail

    def error_response(self, severity: Literal["ERROR", "FATAL"] = "FATAL") -> bytes:
        """The ErrorResponse a client gets for this failure."""
        return p.error_response(self.sqlstate, self.message, severity, detail=self.detail)


class BackendUnavailable(BackendError):
    """The server cannot be reached, or its connection broke (08006 unless said otherwise)."""

    def __init__(
        self, message: str, sqlstate: str = CONNECTION_FAILURE, *, detail: str | None = None
    ) -> None:
        super().__init__(message, sqlstate, detail=detail)


class BackendRefused(BackendError):
    """The server answered the login with an ErrorResponse (wrong password, no such database,
    too many clients, starting up...): its SQLSTATE and message are passed on as they are."""

    @classmethod
    def from_error(cls, error: p.ErrorResponse) -> BackendRefused:
        return cls(
            error.message or "the server refused the connection",
            error.sqlstate or CONNECTION_FAILURE,
            detail=error.detail,
        )

    @property
    def transient(self) -> bool:
        """Worth retrying: the server is starting or shutting down, or is full for now."""
        return self.sqlstate in (CANNOT_CONNECT_NOW, TOO_MANY_CONNECTIONS)


class BackendQueryError(BackendError):
    """A statement the pool itself ran (reset, prepare) failed; the connection is still usable."""

    def __init__(self, error: p.ErrorResponse) -> None:
        super().__init__(
            error.message or "statement failed", error.sqlstate or "XX000", detail=error.detail
        )
        self.error = error


class PoolTimeout(BackendError):
    """No server connection became free within the wait timeout (53300, like PostgreSQL's
    "too many connections": the client may retry later)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, TOO_MANY_CONNECTIONS)


class PoolClosed(BackendError):
    """The pool was closed while the client waited (or after): the proxy is shutting down."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ADMIN_SHUTDOWN)
