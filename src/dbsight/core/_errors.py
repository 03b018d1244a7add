"""Turn any client library's exception into a `QueryError` (class name and SQLSTATE)."""

from __future__ import annotations

from ._event import QueryError


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
        if sqlstate is not None:
            break
    described = candidates[0]
    return QueryError(type=type(described).__name__, sqlstate=sqlstate, message=str(described))
