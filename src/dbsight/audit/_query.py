"""`AuditLogQueryBuilder` (a SQLAlchemy ``Engine`` or ``Connection``) and
`AsyncAuditLogQueryBuilder` (``AsyncEngine``/``AsyncConnection``): the audit log's common
questions, one Core statement each (see `_statements`), on PostgreSQL and MySQL/MariaDB.

A compliance report's aggregates are read in one ``REPEATABLE READ`` transaction, so its
numbers agree with each other while records keep arriving.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from . import _statements as q
from ._results import AuditRecord, ComplianceReport, assemble_report
from ._table import audit_log, now_utc

MAX_LIMIT = 100_000
MAX_REPORT_DAYS = 3660


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def _since_hours(hours: float) -> datetime:
    if not 0 < hours <= 24 * MAX_REPORT_DAYS:
        raise ValueError(f"hours must be more than 0 and at most {24 * MAX_REPORT_DAYS}")
    return now_utc() - timedelta(hours=hours)


def _aware(since: datetime | None) -> datetime | None:
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be a timezone-aware datetime")
    return since


def report_period(start: date, end: date) -> tuple[datetime, datetime, date, date]:
    """``[start 00:00 UTC, end + 1 day 00:00 UTC)``: whole UTC days, ``end`` included. A
    datetime given counts as its UTC day."""
    first = start.astimezone(UTC).date() if isinstance(start, datetime) else start
    last = end.astimezone(UTC).date() if isinstance(end, datetime) else end
    if last < first:
        raise ValueError(f"the report's end ({last}) is before its start ({first})")
    if (last - first).days >= MAX_REPORT_DAYS:
        raise ValueError(f"a report covers at most {MAX_REPORT_DAYS} days")
    lo = datetime.combine(first, time(), UTC)
    hi = datetime.combine(last + timedelta(days=1), time(), UTC)
    return lo, hi, first, last


def _snapshot(dialect_name: str) -> dict[str, Any]:
    """One snapshot for a report's queries (SQLite's transactions are serializable as
    they are)."""
    if dialect_name in ("postgresql", "mysql", "mariadb"):
        return {"isolation_level": "REPEATABLE READ"}
    return {}


def _records(result: sa.Result[Any]) -> list[AuditRecord]:
    return [AuditRecord.from_row(row) for row in result.mappings()]


class AuditLogQueryBuilder:
    """Queries on the audit log through a sync ``Engine`` (a connection per call) or an open
    ``Connection`` (used as it is). Lists are newest first."""

    def __init__(self, bind: sa.Engine | sa.Connection, table: sa.Table | None = None) -> None:
        self.bind = bind
        self.table = audit_log if table is None else table

    @contextmanager
    def _connect(self, **options: Any) -> Iterator[sa.Connection]:
        if isinstance(self.bind, sa.Connection):
            yield self.bind
            return
        with self.bind.connect() as connection:
            if options:
                connection = connection.execution_options(**options)
            with connection.begin():
                yield connection

    def _fetch(self, statement: sa.Select[Any]) -> list[AuditRecord]:
        with self._connect() as connection:
            return _records(connection.execute(statement))

    def recent_operations(self, limit: int = 100) -> list[AuditRecord]:
        """The ``limit`` newest records."""
        return self._fetch(q.recent(self.table, _limit(limit)))

    def by_user(
        self, user: str, *, since: datetime | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """What ``user`` (the actor) did, since ``since`` if given."""
        return self._fetch(q.by_actor(self.table, str(user), _aware(since), _limit(limit)))

    def by_entity(
        self, entity_type: str, entity_id: Any = None, *, limit: int = 1000
    ) -> list[AuditRecord]:
        """The history of one entity (of every entity of the type without ``entity_id``)."""
        entity = None if entity_id is None else str(entity_id)
        return self._fetch(q.by_entity(self.table, entity_type, entity, _limit(limit)))

    def failed_operations(self, hours: float = 24, *, limit: int = 1000) -> list[AuditRecord]:
        """The failures of the last ``hours`` hours."""
        return self._fetch(q.failed(self.table, _since_hours(hours), _limit(limit)))

    def compliance_report(self, start: date, end: date, *, top: int = 10) -> ComplianceReport:
        """Counts over the UTC days ``start`` to ``end`` (both included); see
        `ComplianceReport`."""
        lo, hi, first, last = report_period(start, end)
        statements = q.report_statements(self.table, lo, hi, _limit(top))
        with self._connect(**_snapshot(self.bind.dialect.name)) as connection:
            rows = {name: list(connection.execute(s)) for name, s in statements.items()}
        return assemble_report(first, last, rows, now_utc())


class AsyncAuditLogQueryBuilder:
    """`AuditLogQueryBuilder` for an ``AsyncEngine`` or ``AsyncConnection``."""

    def __init__(self, bind: Any, table: sa.Table | None = None) -> None:
        self.bind = bind
        self.table = audit_log if table is None else table

    async def _run(self, statements: dict[str, sa.Select[Any]], **options: Any) -> dict[str, Any]:
        from sqlalchemy.ext.asyncio import AsyncConnection

        if isinstance(self.bind, AsyncConnection):
            return {name: (await self.bind.execute(s)) for name, s in statements.items()}
        async with self.bind.connect() as connection:
            if options:
                connection = await connection.execution_options(**options)
            async with connection.begin():
                return {name: await connection.execute(s) for name, s in statements.items()}

    async def _fetch(self, statement: sa.Select[Any]) -> list[AuditRecord]:
        result = (await self._run({"rows": statement}))["rows"]
        return _records(result)

    async def recent_operations(self, limit: int = 100) -> list[AuditRecord]:
        return await self._fetch(q.recent(self.table, _limit(limit)))

    async def by_user(
        self, user: str, *, since: datetime | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        return await self._fetch(q.by_actor(self.table, str(user), _aware(since), _limit(limit)))

    async def by_entity(
        self, entity_type: str, entity_id: Any = None, *, limit: int = 1000
    ) -> list[AuditRecord]:
        entity = None if entity_id is None else str(entity_id)
        return await self._fetch(q.by_entity(self.table, entity_type, entity, _limit(limit)))

    async def failed_operations(
        self, hours: float = 24, *, limit: int = 1000
    ) -> list[AuditRecord]:
        return await self._fetch(q.failed(self.table, _since_hours(hours), _limit(limit)))

    async def compliance_report(
        self, start: date, end: date, *, top: int = 10
    ) -> ComplianceReport:
        lo, hi, first, last = report_period(start, end)
        statements = q.report_statements(self.table, lo, hi, _limit(top))
        results = await self._run(statements, **_snapshot(self.bind.dialect.name))
        rows = {name: list(result) for name, result in results.items()}
        return assemble_report(first, last, rows, now_utc())
