"""A statement's parameters as PostgreSQL reads them in text form, and psycopg's ``%s`` /
``%(name)s`` placeholders as the ``$n`` ones the server sees: what a planner needs to plan
a statement with the values it really ran with (``PREPARE`` then ``EXPLAIN EXECUTE``)."""

from __future__ import annotations

import datetime
import enum
import json
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

__all__ = ["CannotConvert", "as_text", "dollar_placeholders", "has_placeholders"]

# psycopg's own reading of a query string: every % starts a placeholder, quotes or not
# (a literal % is written %%), as psycopg._queries does.
_PYFORMAT: Final = re.compile(r"%(?:\(([^)]+)\))?(.)", re.S)
_PLACEHOLDER: Final = re.compile(r"\$\d|%[sbt(]")
_DOLLAR: Final = re.compile(r"\$(\d+)")


class CannotConvert(ValueError):
    """The statement's parameters have no faithful text form here."""


def has_placeholders(sql: str) -> bool:
    """Whether ``sql`` names parameters (``$1``, or psycopg's ``%s``, ``%(name)s``)."""
    return _PLACEHOLDER.search(sql) is not None


def dollar_placeholders(sql: str, params: Any) -> tuple[str, tuple[str | None, ...]]:
    """``sql`` with ``$n`` placeholders and its parameters as text.

    ``params`` a mapping: ``sql`` uses ``%(name)s`` (one ``$n`` per name, however often it
    appears); a sequence with ``%s`` in ``sql``: psycopg's positional style; a sequence
    otherwise: ``sql`` already has ``$n`` (asyncpg, the server's own style)."""
    if isinstance(params, Mapping):
        names: dict[str, int] = {}

        def named(match: re.Match[str]) -> str:
            name, kind = match.group(1), match.group(2)
            if name is None:
                if kind == "%":
                    return "%"
                raise CannotConvert("a positional placeholder with named parameters")
            if kind not in "sbt":
                raise CannotConvert(f"unknown placeholder %({name}){kind}")
            if name not in params:
                raise CannotConvert(f"no parameter {name!r}")
            return f"${names.setdefault(name, len(names) + 1)}"

        text = _PYFORMAT.sub(named, sql)
        return text, tuple(as_text(params[name]) for name in names)
    if isinstance(params, str | bytes) or not isinstance(params, Sequence):
        raise CannotConvert(f"parameters of type {type(params).__name__}")
    values = tuple(as_text(value) for value in params)
    if "%" not in sql:
        highest = max((int(n) for n in _DOLLAR.findall(sql)), default=0)
        if highest != len(values):
            raise CannotConvert(f"${highest} the highest placeholder for {len(values)} values")
        return sql, values
    count = 0

    def positional(match: re.Match[str]) -> str:
        nonlocal count
        name, kind = match.group(1), match.group(2)
        if name is None and kind == "%":
            return "%"
        if name is not None or kind not in "sbt":
            raise CannotConvert("not a positional placeholder")
        count += 1
        return f"${count}"

    text = _PYFORMAT.sub(positional, sql)
    if count != len(values):
        raise CannotConvert(f"{count} placeholders for {len(values)} parameters")
    return text, values


def as_text(value: Any) -> str | None:
    """``value`` in PostgreSQL's text input form (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, str):  # a str-based enum too: its value, as psycopg sends it
        return value if type(value) is str else str.__str__(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds"
    if isinstance(value, enum.Enum):  # psycopg sends a plain enum member by its name
        return value.name
    if isinstance(value, Mapping):
        return json.dumps(value, default=str)
    if isinstance(value, list | tuple):
        return _array(value)
    wrapped = getattr(value, "obj", _MISSING)  # psycopg's Json / Jsonb wrappers
    if wrapped is not _MISSING:
        return json.dumps(wrapped, default=str)
    return str(value)  # UUID, ipaddress, Range ...: their str() is the text form


_MISSING = object()


def _array(values: Sequence[Any]) -> str:
    items = []
    for value in values:
        if isinstance(value, list | tuple):
            items.append(_array(value))
            continue
        text = as_text(value)
        if text is None:
            items.append("NULL")
        else:
            items.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(items) + "}"
