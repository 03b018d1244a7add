"""Turn any client library's exception into a `QueryError` (class name, SQLSTATE, message),
and say what of its message may be shown without ``include_query_bodies``.

A server's error message can quote the values a statement carried:
``invalid input syntax for type integer: "abc"``, a DETAIL ``Key (email)=(bob@x.com) already
exists``, the statement line psycopg appends, a client library's ``invalid input for query
argument $1: 'abc'``. `public_message` keeps what cannot: the first line only (DETAIL, HINT,
CONTEXT and statement excerpts follow it), as is when PostgreSQL's messages of that SQLSTATE
quote only names (relations, columns, constraints: the normalized text shows those too), with
quoted strings and numbers masked otherwise, and nothing at all for a PL/pgSQL ``RAISE``,
whose text is the application's own.
"""

from __future__ import annotations

import re

from ._event import QueryError
from ._mysql_sqlstates import mysql_sqlstate

# SQLSTATEs (or classes) whose PostgreSQL messages quote values, not names: masked.
_VALUE_CLASSES = frozenset({"22", "HV", "XX"})  # data exceptions, FDW, internal errors
_VALUE_CODES = frozenset({"42601"})  # syntax error at or near "<any token, literals too>"
# PL/pgSQL RAISE EXCEPTION and ASSERT: the message is whatever the function wrote.
_WITHHELD_CODES = frozenset({"P0001", "P0004"})
# quoted strings ('' and "" escapes), hex bytes, numbers not part of a name or a $n parameter
_LITERAL = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\b0x[0-9A-Fa-f]+\b"
    r"|(?<![\w$.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])"
)
# SQLAlchemy's asyncpg adapter prefixes the driver's class: "<class '...'>: message"
_CLASS_PREFIX = re.compile(r"<class '[^']*'>: ")
MAX_MESSAGE_LEN = 300


def _sqlstate(exc: BaseException) -> str | None:
    # asyncpg and psycopg 3 expose ``sqlstate``; psycopg2 and SQLAlchemy's adapters ``pgcode``.
    for attr in ("sqlstate", "pgcode"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and len(value) == 5:
            return value
    return None


def error_info(exc: BaseException) -> QueryError:
    """Describe a failed statement; SQLAlchemy's wrapper is looked through to the driver's error."""
    inner = getattr(exc, "orig", None)
    candidates = [exc] if not isinstance(inner, BaseException) else [inner, exc]
    cause = exc.__cause__
    if isinstance(cause, BaseException):
        candidates.append(cause)
    sqlstate = None
    for candidate in candidates:
        sqlstate = _sqlstate(candidate)
        if sqlstate is None:
            sqlstate = mysql_sqlstate(candidate)  # a MySQL driver's (error number, message)
        if sqlstate is not None:
            break
    described = candidates[0]
    args = described.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        message = args[1]  # MySQL drivers: (error code, message), whose str() is the tuple's
    else:
        message = str(described)
    return QueryError(type=type(described).__name__, sqlstate=sqlstate, message=message)


def _mask(match: re.Match[str]) -> str:
    text = match.group()
    if text[0] in "'\"":
        return f"{text[0]}?{text[0]}"
    return "?"


def public_message(error: QueryError, system: str = "postgresql") -> str | None:
    """The part of ``error.message`` that is safe to log and export without
    ``include_query_bodies`` (see the module docstring); None when there is none."""
    message = error.message
    if not message:
        return None
    first = message.partition("\n")[0].strip()
    if first.startswith("<class '"):
        first = _CLASS_PREFIX.sub("", first, count=1)
    if not first:
        return None
    sqlstate = error.sqlstate
    if sqlstate is not None and system == "postgresql":
        if sqlstate in _WITHHELD_CODES:
            return None
        if sqlstate[:2] not in _VALUE_CLASSES and sqlstate not in _VALUE_CODES:
            return first[:MAX_MESSAGE_LEN]
    # a value class, another database's message or a client library's: mask what may be values
    return _LITERAL.sub(_mask, first)[:MAX_MESSAGE_LEN]


def error_summary(error: QueryError, message: str | None) -> str:
    """``23505 UniqueViolation: duplicate key value ...`` (SQLSTATE and message when known)."""
    head = f"{error.sqlstate} {error.type}" if error.sqlstate else error.type
    return f"{head}: {message}" if message else head
