"""Message objects -> bytes: ``encode(message)`` for every class, and the builders a proxy sends.

``encode`` raises ``ValueError`` for a message that cannot be put on the wire (a string with
a NUL in it, a number out of its field's range, a secret key of the wrong size): those are
bugs of the caller, never of the peer, so they are not ``ProtocolError``s.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Literal

from . import _messages as m
from ._decoder import MAX_SECRET_KEY, MIN_SECRET_KEY

_INT16 = struct.Struct(">h")
_UINT16 = struct.Struct(">H")
_INT32 = struct.Struct(">i")
_FIELD = struct.Struct(">IhIhih")
_NULL = _INT32.pack(-1)


def _cstr(text: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    if b"\0" in data:
        raise ValueError(
            f"string {text[:40]!r} contains a NUL byte, which the protocol cannot carry"
        )
    return data + b"\0"


def _typed(type_: bytes, body: bytes) -> bytes:
    return type_ + _INT32.pack(len(body) + 4) + body


def _count(items: tuple[Any, ...] | list[Any]) -> bytes:
    return _UINT16.pack(len(items))


def _int16s(values: tuple[int, ...]) -> bytes:
    return _count(values) + struct.pack(f">{len(values)}h", *values)


def _oids(values: tuple[int, ...]) -> bytes:
    return _count(values) + struct.pack(f">{len(values)}I", *values)


def _value(value: bytes | None) -> bytes:
    return _NULL if value is None else _INT32.pack(len(value)) + value


def _secret_key(key: bytes) -> bytes:
    if not MIN_SECRET_KEY <= len(key) <= MAX_SECRET_KEY:
        raise ValueError(
            f"secret key of {len(key)} bytes (allowed: {MIN_SECRET_KEY} to {MAX_SECRET_KEY})"
        )
    return bytes(key)


def _kind(kind: str) -> bytes:
    if kind not in ("S", "P"):
        raise ValueError(f"kind must be 'S' or 'P', got {kind!r}")
    return kind.encode()


# ====================================================================== startup packets


def _startup(msg: m.StartupMessage) -> bytes:
    parts = [_INT32.pack(msg.protocol_version)]
    for name, value in msg.parameters.items():
        if not name:
            raise ValueError("a startup parameter name cannot be empty")
        parts += (_cstr(name), _cstr(value))
    parts.append(b"\0")
    body = b"".join(parts)
    return _INT32.pack(len(body) + 4) + body


def _cancel(msg: m.CancelRequest) -> bytes:
    key = _secret_key(msg.secret_key)
    return (
        _INT32.pack(12 + len(key)) + _INT32.pack(m.CANCEL_REQUEST_CODE) + _INT32.pack(msg.pid) + key
    )


_SSL_REQUEST = _INT32.pack(8) + _INT32.pack(m.SSL_REQUEST_CODE)
_GSSENC_REQUEST = _INT32.pack(8) + _INT32.pack(m.GSSENC_REQUEST_CODE)


# ====================================================================== frontend


def _parse(msg: m.Parse) -> bytes:
    return _typed(b"P", _cstr(msg.name) + _cstr(msg.query) + _oids(msg.param_types))


def _bind(msg: m.Bind) -> bytes:
    body = b"".join(
        [
            _cstr(msg.portal),
            _cstr(msg.statement),
            _int16s(msg.param_formats),
            _count(msg.values),
            *map(_value, msg.values),
            _int16s(msg.result_formats),
        ]
    )
    return _typed(b"B", body)


def _sasl_initial(msg: m.SASLInitialResponse) -> bytes:
    return _typed(b"p", _cstr(msg.mechanism) + _value(msg.data))


# ====================================================================== backend


def _auth(code: int, data: bytes = b"") -> bytes:
    return _typed(b"R", _INT32.pack(code) + data)


def _md5(msg: m.AuthenticationMD5Password) -> bytes:
    if len(msg.salt) != 4:
        raise ValueError(f"an MD5 salt has 4 bytes, got {len(msg.salt)}")
    return _auth(m.AUTH_MD5_PASSWORD, msg.salt)


def _sasl(msg: m.AuthenticationSASL) -> bytes:
    if any(not mechanism for mechanism in msg.mechanisms):
        raise ValueError("a SASL mechanism name cannot be empty")
    return _auth(m.AUTH_SASL, b"".join(map(_cstr, msg.mechanisms)) + b"\0")


def _negotiate(msg: m.NegotiateProtocolVersion) -> bytes:
    body = _INT32.pack(msg.newest_minor) + _INT32.pack(len(msg.unrecognized_options))
    return _typed(b"v", body + b"".join(map(_cstr, msg.unrecognized_options)))


def _row_description(msg: m.RowDescription) -> bytes:
    parts = [_count(msg.fields)]
    pack = _FIELD.pack
    for f in msg.fields:
        parts.append(_cstr(f.name))
        parts.append(
            pack(f.table_oid, f.column_attr, f.type_oid, f.type_size, f.type_modifier, f.format)
        )
    return _typed(b"T", b"".join(parts))


def _data_row(msg: m.DataRow) -> bytes:
    return _typed(b"D", b"".join([_count(msg.values), *map(_value, msg.values)]))


def _fields(type_: bytes, fields: dict[str, str]) -> bytes:
    parts = []
    for code, value in fields.items():
        if len(code) != 1 or not 0 < ord(code) < 256:
            raise ValueError(f"error field codes are single non-NUL bytes, got {code!r}")
        parts.append(code.encode("latin-1") + _cstr(value))
    parts.append(b"\0")
    return _typed(type_, b"".join(parts))


def _copy_response(type_: bytes) -> Callable[[Any], bytes]:
    def encode(msg: m.CopyInResponse | m.CopyOutResponse | m.CopyBothResponse) -> bytes:
        return _typed(type_, bytes([msg.format]) + _int16s(msg.column_formats))

    return encode


def _unknown(msg: m.Unknown) -> bytes:
    if len(msg.type) != 1:
        raise ValueError(f"a message type is one byte, got {msg.type!r}")
    return _typed(msg.type, msg.payload)


def _fixed(data: bytes) -> Callable[[Any], bytes]:
    return lambda _msg: data


_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    # startup phase
    m.StartupMessage: _startup,
    m.SSLRequest: _fixed(_SSL_REQUEST),
    m.GSSENCRequest: _fixed(_GSSENC_REQUEST),
    m.CancelRequest: _cancel,
    m.EncryptionResponse: lambda msg: b"S" if msg.accepted else b"N",
    # frontend
    m.Query: lambda msg: _typed(b"Q", _cstr(msg.query)),
    m.Parse: _parse,
    m.Bind: _bind,
    m.Describe: lambda msg: _typed(b"D", _kind(msg.kind) + _cstr(msg.name)),
    m.Execute: lambda msg: _typed(b"E", _cstr(msg.portal) + _INT32.pack(msg.max_rows)),
    m.Sync: _fixed(_typed(b"S", b"")),
    m.Flush: _fixed(_typed(b"H", b"")),
    m.Close: lambda msg: _typed(b"C", _kind(msg.kind) + _cstr(msg.name)),
    m.CopyFail: lambda msg: _typed(b"f", _cstr(msg.message)),
    m.Terminate: _fixed(_typed(b"X", b"")),
    m.FunctionCall: lambda msg: _typed(b"F", msg.payload),
    m.PasswordMessage: lambda msg: _typed(b"p", msg.payload),
    m.SASLInitialResponse: _sasl_initial,
    m.SASLResponse: lambda msg: _typed(b"p", msg.data),
    # both directions
    m.CopyData: lambda msg: _typed(b"d", msg.data),
    m.CopyDone: _fixed(_typed(b"c", b"")),
    # backend
    m.AuthenticationOk: _fixed(_auth(m.AUTH_OK)),
    m.AuthenticationCleartextPassword: _fixed(_auth(m.AUTH_CLEARTEXT_PASSWORD)),
    m.AuthenticationMD5Password: _md5,
    m.AuthenticationSASL: _sasl,
    m.AuthenticationSASLContinue: lambda msg: _auth(m.AUTH_SASL_CONTINUE, msg.data),
    m.AuthenticationSASLFinal: lambda msg: _auth(m.AUTH_SASL_FINAL, msg.data),
    m.AuthenticationOther: lambda msg: _auth(msg.code, msg.data),
    m.ParameterStatus: lambda msg: _typed(b"S", _cstr(msg.name) + _cstr(msg.value)),
    m.BackendKeyData: lambda msg: _typed(b"K", _INT32.pack(msg.pid) + _secret_key(msg.secret_key)),
    m.ReadyForQuery: lambda msg: _typed(b"Z", msg.status.value.encode()),
    m.NegotiateProtocolVersion: _negotiate,
    m.RowDescription: _row_description,
    m.DataRow: _data_row,
    m.CommandComplete: lambda msg: _typed(b"C", _cstr(msg.tag)),
    m.EmptyQueryResponse: _fixed(_typed(b"I", b"")),
    m.ErrorResponse: lambda msg: _fields(b"E", msg.fields),
    m.NoticeResponse: lambda msg: _fields(b"N", msg.fields),
    m.ParseComplete: _fixed(_typed(b"1", b"")),
    m.BindComplete: _fixed(_typed(b"2", b"")),
    m.CloseComplete: _fixed(_typed(b"3", b"")),
    m.NoData: _fixed(_typed(b"n", b"")),
    m.ParameterDescription: lambda msg: _typed(b"t", _oids(msg.type_oids)),
    m.PortalSuspended: _fixed(_typed(b"s", b"")),
    m.CopyInResponse: _copy_response(b"G"),
    m.CopyOutResponse: _copy_response(b"H"),
    m.CopyBothResponse: _copy_response(b"W"),
    m.NotificationResponse: lambda msg: _typed(
        b"A", _INT32.pack(msg.pid) + _cstr(msg.channel) + _cstr(msg.payload)
    ),
    m.FunctionCallResponse: lambda msg: _typed(b"V", _value(msg.value)),
    m.Unknown: _unknown,
}


def encode(message: object) -> bytes:
    """The wire bytes of one message (of either side)."""
    encoder = _ENCODERS.get(type(message))
    if encoder is None:
        raise TypeError(f"not a protocol message: {type(message).__name__}")
    try:
        return encoder(message)
    except struct.error as exc:
        raise ValueError(f"cannot encode {type(message).__name__}: {exc}") from exc
    except UnicodeEncodeError as exc:
        raise ValueError(f"cannot encode {type(message).__name__}: {exc}") from exc


# ====================================================================== builders


def error_response(
    sqlstate: str,
    message: str,
    severity: Literal["ERROR", "FATAL", "PANIC"] = "ERROR",
    detail: str | None = None,
    hint: str | None = None,
) -> bytes:
    """An ErrorResponse from the proxy itself; FATAL tells the client the session is over."""
    if len(sqlstate) != 5 or not sqlstate.isascii() or not sqlstate.isalnum():
        raise ValueError(f"a SQLSTATE is 5 ASCII letters or digits, got {sqlstate!r}")
    fields = {
        m.FIELD_SEVERITY_LOCALIZED: severity,
        m.FIELD_SEVERITY: severity,
        m.FIELD_SQLSTATE: sqlstate,
        m.FIELD_MESSAGE: message,
    }
    if detail is not None:
        fields[m.FIELD_DETAIL] = detail
    if hint is not None:
        fields[m.FIELD_HINT] = hint
    return encode(m.ErrorResponse(fields))


def ready_for_query(status: m.TransactionStatus | str = m.TransactionStatus.IDLE) -> bytes:
    return encode(m.ReadyForQuery(m.TransactionStatus(status)))


def authentication_ok() -> bytes:
    return encode(m.AuthenticationOk())


def parameter_status(name: str, value: str) -> bytes:
    return encode(m.ParameterStatus(name, value))


def backend_key_data(pid: int, secret_key: bytes | int) -> bytes:
    """``secret_key`` as bytes, or as the int32 of protocol 3.0."""
    if isinstance(secret_key, int):
        if not -(2**31) <= secret_key < 2**32:
            raise ValueError(f"a protocol 3.0 secret key is 32 bits, got {secret_key}")
        secret_key = (secret_key & 0xFFFFFFFF).to_bytes(4, "big")
    return encode(m.BackendKeyData(pid, secret_key))


def encryption_response(accepted: bool) -> bytes:
    """The byte answering SSLRequest / GSSENCRequest."""
    return b"S" if accepted else b"N"


def authentication_sasl(mechanisms: tuple[str, ...] = ("SCRAM-SHA-256",)) -> bytes:
    return encode(m.AuthenticationSASL(mechanisms))


def authentication_sasl_continue(data: bytes) -> bytes:
    """Frames SCRAM's server-first-message."""
    return encode(m.AuthenticationSASLContinue(data))


def authentication_sasl_final(data: bytes) -> bytes:
    """Frames SCRAM's server-final-message (``v=<verifier>``)."""
    return encode(m.AuthenticationSASLFinal(data))
