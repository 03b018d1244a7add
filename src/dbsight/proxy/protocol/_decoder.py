"""Message bodies -> message objects, with every field checked against the message's end.

The framing (lengths, limits, startup phase) is the reader's job; this module only turns one
complete message into a value and raises ``ProtocolViolation`` naming the message and the
field when the body does not hold what its type promises.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NoReturn

from . import _messages as m
from ._errors import ProtocolViolation

_INT16 = struct.Struct(">h")
_UINT16 = struct.Struct(">H")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_FIELD = struct.Struct(">IhIhih")  # RowDescription field after its name: 18 bytes

MIN_SECRET_KEY = 4
MAX_SECRET_KEY = 256  # protocol 3.2 allows up to 256 bytes; 3.0 always sends 4

_STATUS = {ord(s.value): s for s in m.TransactionStatus}


class _Cursor:
    """Reads fields from ``data[pos:]``; every read is bounds-checked."""

    __slots__ = ("data", "end", "pos", "what")

    def __init__(self, data: bytes, pos: int, what: str) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data)
        self.what = what

    def fail(self, problem: str) -> NoReturn:
        raise ProtocolViolation(f"malformed {self.what} message: {problem}")

    def _need(self, size: int, field: str) -> int:
        pos = self.pos
        if pos + size > self.end:
            self.fail(f"{field} runs past the end of the message")
        self.pos = pos + size
        return pos

    def int16(self, field: str) -> int:
        return _INT16.unpack_from(self.data, self._need(2, field))[0]

    def count(self, field: str, item_size: int) -> int:
        """An unsigned int16 count of items of at least ``item_size`` bytes that must fit."""
        n = _UINT16.unpack_from(self.data, self._need(2, field))[0]
        if n * item_size > self.end - self.pos:
            self.fail(f"{field} {n} does not fit in the {self.end - self.pos} bytes left")
        return n

    def int32(self, field: str) -> int:
        return _INT32.unpack_from(self.data, self._need(4, field))[0]

    def uint32(self, field: str) -> int:
        return _UINT32.unpack_from(self.data, self._need(4, field))[0]

    def byte(self, field: str) -> int:
        return self.data[self._need(1, field)]

    def cstring(self, field: str) -> str:
        data, pos = self.data, self.pos
        nul = data.find(b"\0", pos, self.end)
        if nul < 0:
            self.fail(f"{field} is not NUL-terminated")
        self.pos = nul + 1
        return data[pos:nul].decode("utf-8", "surrogateescape")

    def take(self, size: int, field: str) -> bytes:
        pos = self._need(size, field)
        return self.data[pos : pos + size]

    def value(self, field: str) -> bytes | None:
        """An int32 length (-1: NULL) followed by that many bytes."""
        size = self.int32(f"{field} length")
        if size == -1:
            return None
        if size < 0:
            self.fail(f"{field} has negative length {size}")
        return self.take(size, field)

    def rest(self) -> bytes:
        pos, self.pos = self.pos, self.end
        return self.data[pos:]

    def finish(self) -> None:
        if self.pos != self.end:
            self.fail(f"{self.end - self.pos} unexpected bytes after the last field")

    def int16s(self, n: int, field: str) -> tuple[int, ...]:
        if not n:
            return ()
        return struct.unpack_from(f">{n}h", self.data, self._need(2 * n, field))

    def oids(self, n: int, field: str) -> tuple[int, ...]:
        if not n:
            return ()
        return struct.unpack_from(f">{n}I", self.data, self._need(4 * n, field))

    def kind(self) -> m.DescribeKind:
        code = self.byte("kind")
        if code == 0x53:  # 'S'
            return "S"
        if code == 0x50:  # 'P'
            return "P"
        self.fail(f"kind must be 'S' or 'P', got {bytes([code])!r}")


# ====================================================================== startup packets


def decode_startup(raw: bytes) -> m.StartupPacket:
    """An untyped packet (length, int32 code, body); the reader has checked length and code."""
    code = _INT32.unpack_from(raw, 4)[0]
    if code == m.SSL_REQUEST_CODE:
        return m.SSLRequest()
    if code == m.GSSENC_REQUEST_CODE:
        return m.GSSENCRequest()
    if code == m.CANCEL_REQUEST_CODE:
        c = _Cursor(raw, 8, "CancelRequest")
        pid = c.int32("process id")
        return m.CancelRequest(pid, c.rest())
    c = _Cursor(raw, 8, "StartupMessage")
    parameters: dict[str, str] = {}
    while True:
        name = c.cstring("parameter name")
        if not name:
            break
        parameters[name] = c.cstring(f"value of parameter {name!r}")
    c.finish()
    return m.StartupMessage(parameters, code)


# ====================================================================== frontend


def _query(c: _Cursor) -> m.Query:
    query = c.cstring("query")
    c.finish()
    return m.Query(query)


def _parse(c: _Cursor) -> m.Parse:
    name = c.cstring("statement name")
    query = c.cstring("query")
    n = c.count("parameter type count", 4)
    types = c.oids(n, "parameter types")
    c.finish()
    return m.Parse(name, query, types)


def _bind(c: _Cursor) -> m.Bind:
    portal = c.cstring("portal name")
    statement = c.cstring("statement name")
    formats = c.int16s(c.count("parameter format count", 2), "parameter formats")
    n = c.count("parameter count", 4)
    value = c.value
    values = tuple([value("parameter value") for _ in range(n)])
    results = c.int16s(c.count("result format count", 2), "result formats")
    c.finish()
    return m.Bind(portal, statement, formats, values, results)


def _kind_and_name(cls: type[m.Describe | m.Close]) -> Callable[[_Cursor], object]:
    def decode(c: _Cursor) -> object:
        kind = c.kind()
        name = c.cstring("name")
        c.finish()
        return cls(kind, name)

    return decode


def _execute(c: _Cursor) -> m.Execute:
    portal = c.cstring("portal name")
    max_rows = c.int32("max rows")
    c.finish()
    return m.Execute(portal, max_rows)


def _copy_fail(c: _Cursor) -> m.CopyFail:
    message = c.cstring("error message")
    c.finish()
    return m.CopyFail(message)


def _empty(message: object) -> Callable[[_Cursor], object]:
    def decode(c: _Cursor) -> object:
        c.finish()
        return message

    return decode


_FRONTEND: dict[bytes, tuple[str, Callable[[_Cursor], object]]] = {
    b"Q": ("Query", _query),
    b"P": ("Parse", _parse),
    b"B": ("Bind", _bind),
    b"D": ("Describe", _kind_and_name(m.Describe)),
    b"E": ("Execute", _execute),
    b"S": ("Sync", _empty(m.Sync())),
    b"H": ("Flush", _empty(m.Flush())),
    b"C": ("Close", _kind_and_name(m.Close)),
    b"d": ("CopyData", lambda c: m.CopyData(c.rest())),
    b"c": ("CopyDone", _empty(m.CopyDone())),
    b"f": ("CopyFail", _copy_fail),
    b"X": ("Terminate", _empty(m.Terminate())),
    b"F": ("FunctionCall", lambda c: m.FunctionCall(c.rest())),
    b"p": ("PasswordMessage", lambda c: m.PasswordMessage(c.rest())),
}


def decode_frontend(type_: bytes, raw: bytes) -> m.FrontendMessage:
    """Decode one complete frontend message (``raw`` includes its header)."""
    if not type_:
        return decode_startup(raw)
    entry = _FRONTEND.get(type_)
    if entry is None:
        return m.Unknown(type_, raw[5:])
    name, decode = entry
    return decode(_Cursor(raw, 5, name))  # type: ignore[return-value]


# ====================================================================== backend


def _authentication(c: _Cursor) -> m.Authentication:
    code = c.int32("authentication code")
    if code == m.AUTH_OK:
        c.finish()
        return m.AuthenticationOk()
    if code == m.AUTH_CLEARTEXT_PASSWORD:
        c.finish()
        return m.AuthenticationCleartextPassword()
    if code == m.AUTH_MD5_PASSWORD:
        salt = c.take(4, "salt")
        c.finish()
        return m.AuthenticationMD5Password(salt)
    if code == m.AUTH_SASL:
        mechanisms = []
        while True:
            mechanism = c.cstring("mechanism name")
            if not mechanism:
                break
            mechanisms.append(mechanism)
        c.finish()
        return m.AuthenticationSASL(tuple(mechanisms))
    if code == m.AUTH_SASL_CONTINUE:
        return m.AuthenticationSASLContinue(c.rest())
    if code == m.AUTH_SASL_FINAL:
        return m.AuthenticationSASLFinal(c.rest())
    return m.AuthenticationOther(code, c.rest())


def _parameter_status(c: _Cursor) -> m.ParameterStatus:
    name = c.cstring("parameter name")
    value = c.cstring("parameter value")
    c.finish()
    return m.ParameterStatus(name, value)


def _secret_key(c: _Cursor) -> bytes:
    key = c.rest()
    if not MIN_SECRET_KEY <= len(key) <= MAX_SECRET_KEY:
        c.fail(f"secret key of {len(key)} bytes (allowed: {MIN_SECRET_KEY} to {MAX_SECRET_KEY})")
    return key


def _backend_key_data(c: _Cursor) -> m.BackendKeyData:
    pid = c.int32("process id")
    return m.BackendKeyData(pid, _secret_key(c))


def _ready_for_query(c: _Cursor) -> m.ReadyForQuery:
    code = c.byte("transaction status")
    c.finish()
    status = _STATUS.get(code)
    if status is None:
        c.fail(f"transaction status must be I, T or E, got {bytes([code])!r}")
    return m.ReadyForQuery(status)


def _negotiate(c: _Cursor) -> m.NegotiateProtocolVersion:
    minor = c.int32("newest minor version")
    n = c.int32("option count")
    if n < 0 or n > c.end - c.pos:
        c.fail(f"option count {n} does not fit in the {c.end - c.pos} bytes left")
    options = tuple([c.cstring("option name") for _ in range(n)])
    c.finish()
    return m.NegotiateProtocolVersion(minor, options)


def _row_description(c: _Cursor) -> m.RowDescription:
    n = c.count("field count", 19)
    fields = []
    unpack = _FIELD.unpack_from
    for _ in range(n):
        name = c.cstring("field name")
        table, attr, type_oid, size, modifier, fmt = unpack(c.data, c._need(18, "field"))
        fields.append(m.FieldDescription(name, table, attr, type_oid, size, modifier, fmt))
    c.finish()
    return m.RowDescription(tuple(fields))


def _data_row(c: _Cursor) -> m.DataRow:
    n = c.count("column count", 4)
    value = c.value
    values = tuple([value("column value") for _ in range(n)])
    c.finish()
    return m.DataRow(values)


def _command_complete(c: _Cursor) -> m.CommandComplete:
    tag = c.cstring("command tag")
    c.finish()
    return m.CommandComplete(tag)


def _fields(c: _Cursor) -> dict[str, str]:
    fields: dict[str, str] = {}
    while True:
        code = c.byte("field code (or the terminating NUL)")
        if code == 0:
            c.finish()
            return fields
        fields[chr(code)] = c.cstring(f"field {chr(code)!r}")


def _copy_response(cls: type) -> Callable[[_Cursor], object]:
    def decode(c: _Cursor) -> object:
        overall = c.byte("format")
        formats = c.int16s(c.count("column count", 2), "column formats")
        c.finish()
        return cls(overall, formats)

    return decode


def _parameter_description(c: _Cursor) -> m.ParameterDescription:
    oids = c.oids(c.count("parameter count", 4), "parameter types")
    c.finish()
    return m.ParameterDescription(oids)


def _notification(c: _Cursor) -> m.NotificationResponse:
    pid = c.int32("process id")
    channel = c.cstring("channel")
    payload = c.cstring("payload")
    c.finish()
    return m.NotificationResponse(pid, channel, payload)


def _function_call_response(c: _Cursor) -> m.FunctionCallResponse:
    value = c.value("result")
    c.finish()
    return m.FunctionCallResponse(value)


_BACKEND: dict[bytes, tuple[str, Callable[[_Cursor], object]]] = {
    b"R": ("Authentication", _authentication),
    b"S": ("ParameterStatus", _parameter_status),
    b"K": ("BackendKeyData", _backend_key_data),
    b"Z": ("ReadyForQuery", _ready_for_query),
    b"v": ("NegotiateProtocolVersion", _negotiate),
    b"T": ("RowDescription", _row_description),
    b"D": ("DataRow", _data_row),
    b"C": ("CommandComplete", _command_complete),
    b"I": ("EmptyQueryResponse", _empty(m.EmptyQueryResponse())),
    b"E": ("ErrorResponse", lambda c: m.ErrorResponse(_fields(c))),
    b"N": ("NoticeResponse", lambda c: m.NoticeResponse(_fields(c))),
    b"1": ("ParseComplete", _empty(m.ParseComplete())),
    b"2": ("BindComplete", _empty(m.BindComplete())),
    b"3": ("CloseComplete", _empty(m.CloseComplete())),
    b"n": ("NoData", _empty(m.NoData())),
    b"t": ("ParameterDescription", _parameter_description),
    b"s": ("PortalSuspended", _empty(m.PortalSuspended())),
    b"G": ("CopyInResponse", _copy_response(m.CopyInResponse)),
    b"H": ("CopyOutResponse", _copy_response(m.CopyOutResponse)),
    b"W": ("CopyBothResponse", _copy_response(m.CopyBothResponse)),
    b"d": ("CopyData", lambda c: m.CopyData(c.rest())),
    b"c": ("CopyDone", _empty(m.CopyDone())),
    b"A": ("NotificationResponse", _notification),
    b"V": ("FunctionCallResponse", _function_call_response),
}


def decode_backend(type_: bytes, raw: bytes) -> m.BackendMessage:
    """Decode one complete backend message (``raw`` includes its header)."""
    if not type_:
        return m.EncryptionResponse(raw == b"S")
    entry = _BACKEND.get(type_)
    if entry is None:
        return m.Unknown(type_, raw[5:])
    name, decode = entry
    return decode(_Cursor(raw, 5, name))  # type: ignore[return-value]


FRONTEND_NAMES = {code: name for code, (name, _) in _FRONTEND.items()}
BACKEND_NAMES = {code: name for code, (name, _) in _BACKEND.items()}
