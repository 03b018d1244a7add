"""Errors of the codec: each one says which SQLSTATE the proxy answers the peer with."""

from __future__ import annotations

PROTOCOL_VIOLATION = "08P01"


class ProtocolError(Exception):
    """Base of every error the codec raises on bytes it was fed.

    ``sqlstate`` is what to put in the ErrorResponse sent back before closing the connection.
    Feeding arbitrary bytes to a reader raises nothing but subclasses of this.
    """

    def __init__(self, message: str, sqlstate: str = PROTOCOL_VIOLATION) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate


class ProtocolViolation(ProtocolError):
    """The peer sent bytes that are not valid protocol 3.0: answer 08P01 and close."""


class MessageTooLarge(ProtocolViolation):
    """A message announced a length above the reader's ``max_message_size``.

    Raised as soon as the 5-byte header is seen, before any of the body is buffered. The
    SQLSTATE is 08P01 (protocol_violation), as PostgreSQL itself answers an over-long message
    ("invalid message length"); catch this class to tell the two cases apart.
    """

    def __init__(self, message: str, length: int, limit: int) -> None:
        super().__init__(message)
        self.length = length
        self.limit = limit


class SessionStateError(ProtocolViolation):
    """A backend message arrived that the session state cannot match to anything sent.

    The tracked state no longer mirrors the server's: the proxy should close the session.
    """
