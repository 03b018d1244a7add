"""Errors of authentication: each carries the SQLSTATE the proxy answers the peer with.

PostgreSQL tells a client little about why it failed (``password authentication failed for
user "x"`` whatever the cause) so that probing learns nothing; ``message`` is that text, fit to
send, while ``detail`` says what really went wrong and belongs in the proxy's own log only.
"""

from __future__ import annotations

INVALID_PASSWORD = "28P01"
PROTOCOL_VIOLATION = "08P01"
INVALID_AUTHORIZATION = "28000"


class AuthenticationFailed(Exception):
    """The exchange ended without authenticating the peer.

    ``sqlstate`` is 28P01 (invalid_password) for a wrong password or an unknown user, 08P01
    (protocol_violation) for a malformed or out-of-order message (see ``MalformedAuthMessage``).
    Send ``ErrorResponse(FATAL, sqlstate, message)`` and close the connection.
    """

    def __init__(
        self, message: str, sqlstate: str = INVALID_PASSWORD, *, detail: str | None = None
    ) -> None:
        super().__init__(message if detail is None else f"{message} ({detail})")
        self.message = message
        self.sqlstate = sqlstate
        self.detail = detail

    @classmethod
    def for_user(cls, user: str, detail: str) -> AuthenticationFailed:
        """PostgreSQL's one message for every password failure, whatever the cause."""
        return cls(f'password authentication failed for user "{user}"', detail=detail)


class MalformedAuthMessage(AuthenticationFailed):
    """The peer's message does not follow SCRAM (RFC 5802) or the authentication protocol."""

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message, PROTOCOL_VIOLATION, detail=detail)
