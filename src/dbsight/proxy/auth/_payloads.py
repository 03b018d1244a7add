"""The bodies of the authentication messages, both directions, as raw payload bytes.

Backend ``R`` (Authentication*) payloads start with an int32 request code; the frontend answers
every request with a ``p`` message whose body depends on that request. Framing (type byte and
length) is the codec's job: the exchange drivers deal in ``(type, payload)`` pairs.
"""

from __future__ import annotations

import struct

from ._errors import MalformedAuthMessage

AUTHENTICATION = b"R"
PASSWORD = b"p"

AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12

_INT32 = struct.Struct(">i")

Message = tuple[bytes, bytes]


def authentication(code: int, data: bytes = b"") -> Message:
    """An ``R`` message: ``(b"R", int32 code + data)``."""
    return AUTHENTICATION, _INT32.pack(code) + data


def authentication_sasl(mechanisms: tuple[str, ...]) -> Message:
    body = b"".join(name.encode("ascii") + b"\0" for name in mechanisms) + b"\0"
    return authentication(AUTH_SASL, body)


def read_authentication(payload: bytes) -> tuple[int, bytes]:
    """``(code, data)`` of an ``R`` payload."""
    if len(payload) < 4:
        raise MalformedAuthMessage(
            "invalid authentication request", detail=f"{len(payload)}-byte payload"
        )
    return _INT32.unpack_from(payload)[0], bytes(payload[4:])


def read_mechanisms(data: bytes) -> list[str]:
    """The mechanism names of an AuthenticationSASL request (NUL-terminated, then a NUL)."""
    if not data.endswith(b"\0"):
        raise MalformedAuthMessage(
            "invalid authentication request", detail="SASL mechanism list is not terminated"
        )
    names = data[:-1].split(b"\0")
    if names == [b""]:
        return []
    if not data.endswith(b"\0\0") or b"" in names[:-1]:
        raise MalformedAuthMessage(
            "invalid authentication request", detail="malformed SASL mechanism list"
        )
    return [name.decode("latin-1") for name in names[:-1]]


def password_message(password: bytes) -> Message:
    """PasswordMessage: one NUL-terminated string (cleartext, or the md5 response)."""
    if b"\0" in password:
        raise ValueError("a password sent in a password message cannot contain a NUL byte")
    return PASSWORD, password + b"\0"


def sasl_initial_response(mechanism: str, data: bytes | None) -> Message:
    length = -1 if data is None else len(data)
    return PASSWORD, mechanism.encode("ascii") + b"\0" + _INT32.pack(length) + (data or b"")


def sasl_response(data: bytes) -> Message:
    return PASSWORD, data


def read_password(payload: bytes) -> bytes:
    """The string of a PasswordMessage payload (without its NUL), as PostgreSQL checks it."""
    if not payload.endswith(b"\0") or payload.index(b"\0") != len(payload) - 1:
        raise MalformedAuthMessage("invalid password packet size")
    return bytes(payload[:-1])


def read_sasl_initial_response(payload: bytes) -> tuple[str, bytes | None]:
    """``(mechanism, data)`` of a SASLInitialResponse payload; data None when length is -1."""
    end = payload.find(b"\0")
    if end < 0 or len(payload) < end + 5:
        raise MalformedAuthMessage(
            "invalid SASLInitialResponse", detail="no NUL-terminated mechanism and length"
        )
    length = _INT32.unpack_from(payload, end + 1)[0]
    data = bytes(payload[end + 5 :])
    if length == -1 and not data:
        return payload[:end].decode("latin-1"), None
    if length != len(data):
        raise MalformedAuthMessage(
            "invalid SASLInitialResponse",
            detail=f"data length {length} but {len(data)} bytes follow",
        )
    return payload[:end].decode("latin-1"), data
