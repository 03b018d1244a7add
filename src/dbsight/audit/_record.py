"""Writing audit records: `record` in the caller's transaction (a rollback drops the record
with the change it describes), `record_now` in a transaction of its own (for what must be
kept although the caller's work rolls back: a failure, a refused login). Each has an
``async`` twin (`arecord`, `arecord_now`) for ``AsyncSession``/``AsyncConnection``/
``AsyncEngine``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ._correlation import current_correlation
from ._redact import redact, sanitize_error
from ._table import (
    ACTOR_MAX,
    ENTITY_ID_MAX,
    ENTITY_TYPE_MAX,
    OPERATION_MAX,
    RESULTS,
    audit_log,
    now_utc,
)


def _text(name: str, value: Any, limit: int, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    text = "" if value is None else str(value)
    if required and not text.strip():
        raise ValueError(f"audit {name} must not be empty")
    if len(text) > limit:
        raise ValueError(f"audit {name} is {len(text)} characters long; at most {limit}")
    return text


def _system(dialect: sa.engine.Dialect) -> str:
    return "mysql" if dialect.name in ("mysql", "mariadb") else dialect.name


def audit_row(
    *,
    actor: Any,
    operation: str,
    entity_type: str,
    entity_id: Any = None,
    result: str = "success",
    details: Mapping[str, Any] | None = None,
    error: BaseException | str | None = None,
    occurred_at: datetime | None = None,
    system: str = "postgresql",
) -> dict[str, Any]:
    """The column values of one record, validated and sanitized (see `record`)."""
    if result not in RESULTS:
        raise ValueError(f"audit result must be one of {', '.join(RESULTS)}, got {result!r}")
    when = occurred_at if occurred_at is not None else now_utc()
    if when.tzinfo is None:
        raise ValueError("audit occurred_at must be timezone-aware")
    correlation = current_correlation()
    return {
        "occurred_at": when,
        "actor": _text("actor", actor, ACTOR_MAX),
        "operation": _text("operation", operation, OPERATION_MAX),
        "entity_type": _text("entity_type", entity_type, ENTITY_TYPE_MAX),
        "entity_id": _text("entity_id", entity_id, ENTITY_ID_MAX, required=False),
        "result": result,
        "error": sanitize_error(error, system),
        "details": redact(details),
        "trace_id": correlation.trace_id,
        "request_id": correlation.request_id,
        "route": correlation.route,
        "app": correlation.app,
    }


def _insert(dialect: sa.engine.Dialect, table: sa.Table | None, **fields: Any) -> sa.Insert:
    """The INSERT of one record (`audit_row`'s checks run here, before anything is written)
    into ``table`` or dbsight's own `audit_log`, for either twin to execute."""
    row = audit_row(system=_system(dialect), **fields)
    return sa.insert(audit_log if table is None else table).values(**row)


def _connection(target: Session | sa.Connection) -> sa.Connection:
    if isinstance(target, Session):
        return target.connection()  # the session's current transaction (begun if need be)
    if isinstance(target, sa.Connection):
        return target
    if isinstance(target, sa.Engine):
        raise TypeError(
            "record() writes in the caller's transaction: pass the Session or Connection of "
            "the change it describes (record_now(engine, ...) writes in a transaction of its own)"
        )
    raise TypeError(
        f"record() takes a Session or Connection, not {type(target).__name__} "
        "(arecord() takes an AsyncSession or AsyncConnection)"
    )


def record(
    target: Session | sa.Connection,
    *,
    actor: Any,
    operation: str,
    entity_type: str,
    entity_id: Any = None,
    result: str = "success",
    details: Mapping[str, Any] | None = None,
    error: BaseException | str | None = None,
    table: sa.Table | None = None,
) -> None:
    """Insert one audit record in ``target``'s transaction: committed with the caller's
    change, rolled back with it.

    ``actor`` is who did it (a user id, a service account); ``operation`` what (create,
    update, delete, login ...); ``entity_type``/``entity_id`` on what; ``result`` is
    ``"success"`` or ``"failure"``. ``details`` is stored as JSON with secrets redacted by
    key name; ``error`` (an exception or a text) is stored without values a statement
    carried. The time (UTC), trace id, request id, route and app come from the current
    request. A bad argument raises ValueError before anything is written; a failing insert
    raises, so the caller's transaction does not commit a change without its record.
    """
    connection = _connection(target)
    connection.execute(_insert(
        connection.dialect, table, actor=actor, operation=operation, entity_type=entity_type,
        entity_id=entity_id, result=result, details=details, error=error,
    ))  # fmt: skip


def record_now(engine: sa.Engine, *, table: sa.Table | None = None, **fields: Any) -> None:
    """`record` in a transaction of its own on ``engine``, committed before it returns."""
    with engine.begin() as connection:
        record(connection, table=table, **fields)


async def _async_connection(target: Any) -> Any:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

    if isinstance(target, AsyncSession):
        return await target.connection()
    if isinstance(target, AsyncConnection):
        return target
    if isinstance(target, AsyncEngine):
        raise TypeError(
            "arecord() writes in the caller's transaction: pass the AsyncSession or "
            "AsyncConnection of the change it describes (arecord_now(engine, ...) writes in a "
            "transaction of its own)"
        )
    raise TypeError(
        f"arecord() takes an AsyncSession or AsyncConnection, not {type(target).__name__} "
        "(record() takes a Session or Connection)"
    )


async def arecord(
    target: Any,
    *,
    actor: Any,
    operation: str,
    entity_type: str,
    entity_id: Any = None,
    result: str = "success",
    details: Mapping[str, Any] | None = None,
    error: BaseException | str | None = None,
    table: sa.Table | None = None,
) -> None:
    """`record` for an ``AsyncSession`` or ``AsyncConnection``: in its transaction."""
    connection = await _async_connection(target)
    await connection.execute(_insert(
        connection.dialect, table, actor=actor, operation=operation, entity_type=entity_type,
        entity_id=entity_id, result=result, details=details, error=error,
    ))  # fmt: skip


async def arecord_now(engine: Any, *, table: sa.Table | None = None, **fields: Any) -> None:
    """`arecord` in a transaction of its own on an ``AsyncEngine``, committed before it
    returns."""
    async with engine.begin() as connection:
        await arecord(connection, table=table, **fields)
