"""Bind parameters as text, for a capture a replay can send again.

A client sends each parameter in text or binary format (the Bind's format codes); asyncpg,
and psycopg for numbers, send binary. A replay sends text with the unknown type and lets the
server infer each type from the statement, as for a literal, so a binary value is turned into
the text the type's output function would print, from the parameter's type OID: the Parse's
declared type, or the server's ParameterDescription when the client asked for one (a
declared 0 leaves the type to the server). A value of a type not known here, or text that is
not UTF-8, is kept as ``{"hex": ..., "format": "binary"|"text"}`` (and its ``type`` OID when
one was known), which a replay cannot send: it reports the statement instead of guessing.

This runs when a statement with parameters is written to a capture with ``capture_params``
on, never on the relay's path otherwise.
"""

from __future__ import annotations

import ipaddress
import math
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

_EPOCH_DATE: Final = date(2000, 1, 1)
_EPOCH: Final = datetime(2000, 1, 1)
_INT64_MAX: Final = 2**63 - 1
_INT64_MIN: Final = -(2**63)
_INT32_MAX: Final = 2**31 - 1
_INT32_MIN: Final = -(2**31)


_unpack_int16 = struct.Struct(">h").unpack_from
_unpack_int32 = struct.Struct(">i").unpack_from


def parameter_types(buf: bytes, start: int, end: int) -> list[int]:
    """The type OIDs at ``start``: an int16 count, then an int32 per parameter, as both a
    Parse's declared types (after its text) and a ParameterDescription's body hold them."""
    if end - start < 2:
        return []
    (count,) = _unpack_int16(buf, start)
    if count <= 0 or start + 2 + 4 * count > end:
        return []
    return list(struct.unpack_from(f">{count}I", buf, start + 2))


def bind_parameters(buf: bytes, start: int, end: int) -> tuple[tuple[int, ...], list[bytes | None]]:
    """The format codes and parameter values of a Bind body from its format codes on (None
    for NULL); text and binary values alike, as sent."""
    (nformats,) = _unpack_int16(buf, start)
    formats = struct.unpack_from(f">{nformats}h", buf, start + 2) if nformats > 0 else ()
    i = start + 2 + 2 * nformats
    (count,) = _unpack_int16(buf, i)
    i += 2
    values: list[bytes | None] = []
    for _ in range(count):
        (length,) = _unpack_int32(buf, i)
        i += 4
        if length < 0:
            values.append(None)
            continue
        if i + length > end:
            raise ValueError("a Bind parameter runs past the end of its message")
        values.append(bytes(buf[i : i + length]))
        i += length
    return formats, values


@dataclass(slots=True)
class BoundParams:
    """A Bind's parameters as sent: ``types`` the statement's parameter type OIDs (a list
    the exchange fills in place when a ParameterDescription arrives; empty or short when
    unknown), ``formats`` the Bind's format codes (none: all text; one: for all), ``values``
    the raw values (None for NULL)."""

    types: list[int]
    formats: tuple[int, ...]
    values: list[bytes | None]

    def as_text(self) -> list[Any]:
        """Each value as its text (None for NULL), or ``{"hex", "format"[, "type"]}``."""
        formats = self.formats
        out: list[Any] = []
        for n, value in enumerate(self.values):
            if value is None:
                out.append(None)
                continue
            if not formats:
                binary = False
            elif len(formats) == 1:
                binary = formats[0] == 1
            else:
                binary = n < len(formats) and formats[n] == 1
            oid = self.types[n] if n < len(self.types) else 0
            out.append(binary_text(oid, value) if binary else _utf8(value))
        return out


def _utf8(value: bytes) -> Any:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"hex": value.hex(), "format": "text"}


def binary_text(oid: int, value: bytes) -> Any:
    """A binary-format value of type ``oid`` as the server's text for it, or the hex form."""
    decoder = _DECODERS.get(oid)
    if decoder is None and oid in _ARRAYS:
        decoder = _array
    if decoder is not None:
        try:
            return decoder(value)
        except (ValueError, struct.error, OverflowError, UnicodeDecodeError, IndexError):
            pass  # malformed for its type: kept as it was sent
    unknown: dict[str, Any] = {"hex": value.hex(), "format": "binary"}
    if oid:
        unknown["type"] = oid
    return unknown


# -- scalars ------------------------------------------------------------------------------
def _int(fmt: str) -> Callable[[bytes], str]:
    unpack = struct.Struct(fmt).unpack

    def decode(value: bytes) -> str:
        return str(unpack(value)[0])

    return decode


def _float(fmt: str) -> Callable[[bytes], str]:
    unpack = struct.Struct(fmt).unpack

    def decode(value: bytes) -> str:
        number: float = unpack(value)[0]
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return repr(number)  # shortest text that reads back as the same double (or float4)

    return decode


def _bool(value: bytes) -> str:
    if len(value) != 1:
        raise ValueError("bool is one byte")
    return "true" if value[0] else "false"


def _text(value: bytes) -> str:
    return value.decode()


def _jsonb(value: bytes) -> str:  # a version byte (1), then the text
    if not value or value[0] != 1:
        raise ValueError("unknown jsonb version")
    return value[1:].decode()


def _bytea(value: bytes) -> str:
    return "\\x" + value.hex()


def _uuid(value: bytes) -> str:
    return str(uuid.UUID(bytes=value))


def _numeric(value: bytes) -> str:
    ndigits, weight, sign, dscale = struct.unpack_from(">hhHH", value)
    if sign == 0xC000:
        return "NaN"
    if sign == 0xD000:
        return "Infinity"
    if sign == 0xF000:
        return "-Infinity"
    digits = struct.unpack_from(f">{ndigits}H", value, 8)
    if len(value) != 8 + 2 * ndigits or sign not in (0, 0x4000):
        raise ValueError("malformed numeric")
    groups = "".join(f"{d:04d}" for d in digits)  # base-10000 digits, 4 decimals each
    point = (weight + 1) * 4  # where the decimal point falls in ``groups``
    if point <= 0:
        whole, fraction = "", "0" * -point + groups
    elif point >= len(groups):
        whole, fraction = groups + "0" * (point - len(groups)), ""
    else:
        whole, fraction = groups[:point], groups[point:]
    text = whole.lstrip("0") or "0"
    if dscale:
        text += "." + (fraction + "0" * dscale)[:dscale]
    return ("-" + text) if sign == 0x4000 else text


def _date(value: bytes) -> str:
    (days,) = struct.unpack(">i", value)
    if days == _INT32_MAX:
        return "infinity"
    if days == _INT32_MIN:
        return "-infinity"
    return (_EPOCH_DATE + timedelta(days=days)).isoformat()


def _clock(micros: int) -> str:
    seconds, micro = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{hour:02d}:{minute:02d}:{second:02d}"
    return f"{text}.{micro:06d}" if micro else text


def _time(value: bytes) -> str:
    return _clock(struct.unpack(">q", value)[0])


def _timetz(value: bytes) -> str:
    micros, zone = struct.unpack(">qi", value)  # zone: seconds west of UTC
    return _clock(micros) + _offset(-zone)


def _offset(east: int) -> str:
    sign = "+" if east >= 0 else "-"
    hours, rest = divmod(abs(east), 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    return f"{text}:{seconds:02d}" if seconds else text


def _timestamp(value: bytes) -> str:
    (micros,) = struct.unpack(">q", value)
    if micros == _INT64_MAX:
        return "infinity"
    if micros == _INT64_MIN:
        return "-infinity"
    moment = _EPOCH + timedelta(microseconds=micros)  # OverflowError past year 9999 / before 1
    return moment.isoformat(sep=" ")


def _timestamptz(value: bytes) -> str:
    text = _timestamp(value)
    return text if text.endswith("infinity") else text + "+00"


def _interval(value: bytes) -> str:
    micros, days, months = struct.unpack(">qii", value)
    sign = "-" if micros < 0 else ""
    return f"{months} mons {days} days {sign}{_clock(abs(micros))}"


def _inet(value: bytes) -> str:
    family, bits, is_cidr, size = value[0], value[1], value[2], value[3]
    raw = value[4 : 4 + size]
    if family not in (2, 3) or len(raw) != size or size not in (4, 16):
        raise ValueError("malformed inet")
    address = ipaddress.ip_address(raw)
    if is_cidr or bits != 8 * size:
        return f"{address}/{bits}"
    return str(address)


# OIDs of pg_type (src/include/catalog/pg_type.dat); each decoder prints what the type's
# output function would, which its input function reads back.
_DECODERS: Final[dict[int, Callable[[bytes], str]]] = {
    16: _bool,
    17: _bytea,
    18: _text,  # "char"
    19: _text,  # name
    20: _int(">q"),  # int8
    21: _int(">h"),  # int2
    23: _int(">i"),  # int4
    25: _text,
    26: _int(">I"),  # oid
    28: _int(">I"),  # xid
    29: _int(">I"),  # cid
    114: _text,  # json
    142: _text,  # xml
    650: _inet,  # cidr
    700: _float(">f"),
    701: _float(">d"),
    705: _text,  # unknown
    869: _inet,
    1042: _text,  # bpchar
    1043: _text,  # varchar
    1082: _date,
    1083: _time,
    1114: _timestamp,
    1184: _timestamptz,
    1186: _interval,
    1266: _timetz,
    1700: _numeric,
    2205: _int(">I"),  # regclass
    2206: _int(">I"),  # regtype
    2950: _uuid,
    3802: _jsonb,
}
# array types whose elements the decoders above know (the element OID is in the value)
_ARRAYS: Final = frozenset({
    1000, 1001, 1002, 1003, 1005, 1007, 1009, 1014, 1015, 1016, 1021, 1022, 1028, 1115,
    1182, 1183, 1185, 1187, 1231, 1270, 2951, 199, 3807, 1041, 651, 143,
})  # fmt: skip


def _array(value: bytes) -> str:
    ndim, _has_null, element = struct.unpack_from(">iiI", value)
    decoder = _DECODERS.get(element)
    if decoder is None or ndim < 0 or ndim > 6:
        raise ValueError("array of an unknown element type")
    if ndim == 0:
        return "{}"
    dims: list[int] = []
    lower: list[int] = []
    i = 12
    for _ in range(ndim):
        size, low = struct.unpack_from(">ii", value, i)
        dims.append(size)
        lower.append(low)
        i += 8
    items: list[str] = []
    for _ in range(math.prod(dims)):
        (length,) = struct.unpack_from(">i", value, i)
        i += 4
        if length < 0:
            items.append("NULL")
            continue
        if i + length > len(value):
            raise ValueError("array element past the end")
        items.append(_quoted(decoder(value[i : i + length])))
        i += length
    if i != len(value):
        raise ValueError("bytes after the last array element")
    text = _nest(items, dims)
    if any(low != 1 for low in lower):
        bounds = "".join(f"[{low}:{low + size - 1}]" for low, size in zip(lower, dims))
        text = f"{bounds}={text}"
    return text


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _nest(items: Sequence[str], dims: Sequence[int]) -> str:
    if len(dims) == 1:
        return "{" + ",".join(items) + "}"
    step = len(items) // dims[0] if dims[0] else 0
    return (
        "{"
        + ",".join(_nest(items[k * step : (k + 1) * step], dims[1:]) for k in range(dims[0]))
        + "}"
    )
