"""Just enough PostgreSQL framing, by hand, for the authentication tests' sockets.

Kept independent of the codec package on purpose: these tests check the auth building blocks
against real servers and clients, not the codec.
"""

from __future__ import annotations

import socket
import struct

PROTOCOL_3_0 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


def frame(type_: bytes, payload: bytes) -> bytes:
    return type_ + struct.pack(">i", len(payload) + 4) + payload


def cstrings(*values: str) -> bytes:
    return b"".join(value.encode() + b"\0" for value in values)


def startup_message(**parameters: str) -> bytes:
    body = struct.pack(">i", PROTOCOL_3_0) + cstrings(*sum(parameters.items(), ())) + b"\0"
    return struct.pack(">i", len(body) + 4) + body


def parse_startup(body: bytes) -> dict[str, str]:
    items = body[4:].rstrip(b"\0").split(b"\0")
    return {k.decode(): v.decode() for k, v in zip(items[::2], items[1::2], strict=True)}


def error_response(sqlstate: str, message: str) -> bytes:
    fields = b"SFATAL\0VFATAL\0C" + sqlstate.encode() + b"\0M" + message.encode() + b"\0\0"
    return frame(b"E", fields)


def error_fields(payload: bytes) -> dict[str, str]:
    return {item[:1].decode(): item[1:].decode() for item in payload.split(b"\0") if item}


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return data


def read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    type_ = recv_exactly(sock, 1)
    (length,) = struct.unpack(">i", recv_exactly(sock, 4))
    return type_, recv_exactly(sock, length - 4)
