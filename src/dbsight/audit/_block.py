"""`audited`: record whether a block of work succeeded, in the right transaction each time.

Success is recorded in the caller's transaction when the block ends without an exception,
so the record commits with the change (and disappears with it if the commit fails). A
failure cannot be recorded there: the caller's transaction is about to roll back (and on
PostgreSQL, after a failed statement, accepts nothing more), so it is written on another
connection of the same engine, in a transaction of its own, and the exception is re-raised
unchanged. If even that write fails, a warning is logged and the block's own exception
still propagates: auditing never replaces the application's error.

With ``commit=True`` the block owns the transaction: `audited` commits after the success
record, and a failing commit is recorded as a failure too (after a rollback).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ._record import arecord, arecord_now, record, record_now
from ._redact import sanitize_error

logger = logging.getLogger("dbsight.audit")


@dataclass
class AuditEntry:
    """The record a block will write; the block may set ``entity_id`` once it knows it (a
    new row's id) and add to ``details``."""

    actor: Any
    operation: str
    entity_type: str
    entity_id: Any = None
    details: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "operation": self.operation,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "details": self.details or None,
        }


def _entry(actor: Any, operation: str, entity_type: str, entity_id: Any,
           details: Mapping[str, Any] | None) -> AuditEntry:  # fmt: skip
    return AuditEntry(actor, operation, entity_type, entity_id, dict(details or {}))


def _engine_of(target: Session | sa.Connection) -> sa.Engine:
    if isinstance(target, Session):
        bind = target.get_bind()
        return bind.engine if isinstance(bind, sa.Connection) else bind
    return target.engine


def _not_recorded(entry: AuditEntry, exc: BaseException, write_error: BaseException) -> None:
    logger.warning(
        "dbsight.audit: the failure of %s %s by %s could not be recorded: %s (the "
        "application's error was %s)",
        entry.operation, entry.entity_type, entry.actor, sanitize_error(write_error),
        sanitize_error(exc),
    )  # fmt: skip


@contextmanager
def audited(
    target: Session | sa.Connection,
    *,
    actor: Any,
    operation: str,
    entity_type: str,
    entity_id: Any = None,
    details: Mapping[str, Any] | None = None,
    commit: bool = False,
    engine: sa.Engine | None = None,
    table: sa.Table | None = None,
) -> Iterator[AuditEntry]:
    """Run a block that changes ``entity_type``/``entity_id`` in ``target``'s transaction
    and record its outcome (see the module docstring). ``engine`` is where a failure is
    written (default: ``target``'s)."""
    entry = _entry(actor, operation, entity_type, entity_id, details)
    try:
        yield entry
        record(target, table=table, **entry.fields())
        if commit:
            target.commit()
    except Exception as exc:
        if commit:
            target.rollback()
        try:
            record_now(engine or _engine_of(target), table=table, result="failure", error=exc,
                       **entry.fields())  # fmt: skip
        except Exception as write_error:
            _not_recorded(entry, exc, write_error)
        raise


def _async_engine_of(target: Any) -> Any:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    if isinstance(target, AsyncSession):
        bind = target.bind
        if isinstance(bind, AsyncEngine):
            return bind
        sync = target.sync_session.get_bind()
        return AsyncEngine(sync.engine if isinstance(sync, sa.Connection) else sync)
    return target.engine  # an AsyncConnection's AsyncEngine


@asynccontextmanager
async def aaudited(
    target: Any,
    *,
    actor: Any,
    operation: str,
    entity_type: str,
    entity_id: Any = None,
    details: Mapping[str, Any] | None = None,
    commit: bool = False,
    engine: Any = None,
    table: sa.Table | None = None,
) -> AsyncIterator[AuditEntry]:
    """`audited` for an ``AsyncSession`` or ``AsyncConnection`` (``engine``: an
    ``AsyncEngine``)."""
    entry = _entry(actor, operation, entity_type, entity_id, details)
    try:
        yield entry
        await arecord(target, table=table, **entry.fields())
        if commit:
            await target.commit()
    except Exception as exc:
        if commit:
            await target.rollback()
        try:
            await arecord_now(engine or _async_engine_of(target), table=table,
                              result="failure", error=exc, **entry.fields())  # fmt: skip
        except Exception as write_error:
            _not_recorded(entry, exc, write_error)
        raise
