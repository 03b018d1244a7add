"""The query builder's statements, as SQLAlchemy Core: one definition compiles for
PostgreSQL, MySQL/MariaDB and SQLite. Times are compared with bound UTC datetimes computed
in Python (the clock `record` stamps with), never with a server's ``NOW()``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ._table import FAILURE


class utc_day(FunctionElement[Any]):  # noqa: N801 - reads as the SQL function it renders
    """The UTC calendar day of an audit time."""

    type = sa.Date()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day)
def _utc_day(element: utc_day, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"  # SQLite: stored as UTC text


@compiles(utc_day, "mysql")
@compiles(utc_day, "mariadb")
def _utc_day_mysql(element: utc_day, compiler: Any, **kw: Any) -> str:
    return f"DATE({compiler.process(element.clauses, **kw)})"  # DATETIME holding UTC


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: Any, **kw: Any) -> str:
    # timestamptz -> date would use the session's TimeZone: convert to UTC first
    return f"CAST(({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC') AS DATE)"


def _newest_first(statement: sa.Select[Any], table: sa.Table) -> sa.Select[Any]:
    return statement.order_by(table.c.occurred_at.desc(), table.c.id.desc())


def recent(table: sa.Table, limit: int) -> sa.Select[Any]:
    return _newest_first(sa.select(table), table).limit(limit)


def by_actor(table: sa.Table, actor: str, since: datetime | None, limit: int) -> sa.Select[Any]:
    statement = sa.select(table).where(table.c.actor == actor)
    if since is not None:
        statement = statement.where(table.c.occurred_at >= since)
    return _newest_first(statement, table).limit(limit)


def by_entity(table: sa.Table, entity_type: str, entity_id: str | None,
              limit: int) -> sa.Select[Any]:  # fmt: skip
    statement = sa.select(table).where(table.c.entity_type == entity_type)
    if entity_id is not None:
        statement = statement.where(table.c.entity_id == entity_id)
    return _newest_first(statement, table).limit(limit)


def failed(table: sa.Table, since: datetime, limit: int) -> sa.Select[Any]:
    statement = sa.select(table).where(table.c.result == FAILURE, table.c.occurred_at >= since)
    return _newest_first(statement, table).limit(limit)


def older_ids(table: sa.Table, cutoff: datetime, batch: int) -> sa.Select[Any]:
    return (
        sa.select(table.c.id)
        .where(table.c.occurred_at < cutoff)
        .order_by(table.c.occurred_at, table.c.id)
        .limit(batch)
    )


def count_older(table: sa.Table, cutoff: datetime) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(table).where(table.c.occurred_at < cutoff)


def delete_ids(table: sa.Table, ids: list[Any]) -> sa.Delete:
    return sa.delete(table).where(table.c.id.in_(ids))


def _failures(table: sa.Table) -> sa.ColumnElement[Any]:
    return sa.func.sum(sa.case((table.c.result == FAILURE, 1), else_=0))


def report_statements(
    table: sa.Table, start: datetime, end: datetime, top: int
) -> dict[str, sa.Select[Any]]:
    """Each aggregate of a compliance report over ``start <= occurred_at < end``, by name:
    rows of (key, total, failures), but ``actors`` (one count) and ``errors`` (text, count)."""
    c = table.c
    period = sa.and_(c.occurred_at >= start, c.occurred_at < end)
    total = sa.func.count().label("total")
    failures = _failures(table).label("failures")

    def grouped(key: sa.ColumnElement[Any]) -> sa.Select[Any]:
        return sa.select(key, total, failures).where(period).group_by(key)

    day = utc_day(c.occurred_at).label("day")
    return {
        "operation": grouped(c.operation),
        "entity_type": grouped(c.entity_type),
        "day": grouped(day),
        "actor": grouped(c.actor).order_by(total.desc(), c.actor).limit(top),
        "actors": sa.select(sa.func.count(sa.distinct(c.actor))).where(period),
        "errors": sa.select(c.error, sa.func.count().label("n"))
        .where(period, c.result == FAILURE)
        .group_by(c.error)
        .order_by(sa.desc("n"), c.error)
        .limit(top),
    }
