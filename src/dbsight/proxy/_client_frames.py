"""What a client may send once logged in, and why a message header is refused: shared by the
sessions and their relays (`_session`, `_session_relay`, `_plain_relay`, `_pooled`)."""

from __future__ import annotations

from . import protocol as p

# What a client may send once started: Query, Parse, Bind, Execute, Describe, Close, Sync,
# Flush, Terminate, CopyData/Done/Fail, FunctionCall and the password/SASL messages.
CLIENT_TYPES = frozenset(b"QPBEDCSHXdcfFp")
# The same, as a table a message's first byte indexes (1: may be sent), which the compiled
# relays read with no Python call
CLIENT_TABLE = bytes(1 if t in CLIENT_TYPES else 0 for t in range(256))
COPY_DATA = ord("d")
TERMINATE = ord("X")
QUERY = ord("Q")


def frame_error(buf: bytes, i: int, length: int, max_size: int) -> p.ProtocolViolation | None:
    """Why the client message header at ``buf[i]`` is not acceptable, if it is not."""
    t = buf[i]
    if t not in CLIENT_TYPES:
        return p.ProtocolViolation(f"invalid frontend message type {bytes([t])!r}")
    if length < 4:
        return p.ProtocolViolation(f"invalid message length {length}")
    if length > max_size:
        return p.ProtocolViolation(
            f"message of type {bytes([t])!r} is {length} bytes, over the limit of {max_size}"
        )
    return None
