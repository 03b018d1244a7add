"""The audit log's table: one SQLAlchemy Core definition for PostgreSQL, MySQL/MariaDB (and
SQLite), attachable to an application's own ``MetaData`` (SQLModel's too) so that its
migrations create it, or created directly with `create_audit_table`.

Times are stored in UTC: ``timestamptz`` on PostgreSQL, ``DATETIME(6)`` holding UTC on MySQL
(which has no time zone type); they come back as aware UTC datetimes either way. ``details``
is ``JSONB`` on PostgreSQL and ``JSON`` on MySQL/MariaDB. The indexes are the query builder's
access paths: by time, by actor and time, by entity and time, by result and time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect

DEFAULT_TABLE_NAME = "dbsight_audit_log"

# Column sizes; `record` refuses longer actor/operation/entity values rather than cut them.
ACTOR_MAX = 200
OPERATION_MAX = 64
ENTITY_TYPE_MAX = 100
ENTITY_ID_MAX = 200
ERROR_MAX = 1000
TRACE_ID_MAX = 32
REQUEST_ID_MAX = 128
ROUTE_MAX = 300
APP_MAX = 200

SUCCESS = "success"
FAILURE = "failure"
RESULTS = (SUCCESS, FAILURE)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """An aware UTC datetime on every database: ``timestamptz`` on PostgreSQL, a
    microsecond ``DATETIME(6)`` holding UTC on MySQL/MariaDB and SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"an audit time must be timezone-aware, got {value!r}")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _columns() -> list[sa.Column[Any]]:
    """Fresh Column objects (a Column belongs to one table: each table gets its own)."""
    return [
        # BIGINT everywhere but SQLite, whose autoincrement wants INTEGER
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(ACTOR_MAX), nullable=False),
        sa.Column("operation", sa.String(OPERATION_MAX), nullable=False),
        sa.Column("entity_type", sa.String(ENTITY_TYPE_MAX), nullable=False),
        sa.Column("entity_id", sa.String(ENTITY_ID_MAX), nullable=True),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("error", sa.String(ERROR_MAX), nullable=True),
        sa.Column("details", _json(), nullable=True),
        sa.Column("trace_id", sa.String(TRACE_ID_MAX), nullable=True),
        sa.Column("request_id", sa.String(REQUEST_ID_MAX), nullable=True),
        sa.Column("route", sa.String(ROUTE_MAX), nullable=True),
        sa.Column("app", sa.String(APP_MAX), nullable=True),
    ]  # fmt: skip


# index suffix -> its columns, in order
INDEXES: dict[str, tuple[str, ...]] = {
    "occurred_at": ("occurred_at",),
    "actor": ("actor", "occurred_at"),
    "entity": ("entity_type", "entity_id", "occurred_at"),
    "result": ("result", "occurred_at"),
}


def index_name(table_name: str, suffix: str) -> str:
    """``ix_<table>_<suffix>``: index names are per schema, so they carry the table's."""
    return f"ix_{table_name}_{suffix}"


def add_audit_table(
    metadata: sa.MetaData, name: str = DEFAULT_TABLE_NAME, *, schema: str | None = None
) -> sa.Table:
    """Define the audit table in ``metadata`` (an application's, e.g. ``SQLModel.metadata``)
    and return it; ``metadata.create_all()`` and Alembic's autogenerate then include it.
    Defined already (same name and schema): the existing table is returned."""
    key = f"{schema}.{name}" if schema else name
    if key in metadata.tables:
        return metadata.tables[key]
    table = sa.Table(name, metadata, *_columns(), schema=schema, comment="dbsight audit log")
    for suffix, columns in INDEXES.items():
        sa.Index(index_name(name, suffix), *(table.c[column] for column in columns))
    return table


# dbsight's own definition, used when a caller passes no table
audit_metadata = sa.MetaData()
audit_log = add_audit_table(audit_metadata)


def create_audit_table(bind: sa.Engine | sa.Connection, table: sa.Table | None = None) -> None:
    """Create the table and its indexes unless they exist (``CREATE TABLE`` is transactional
    on PostgreSQL only: on MySQL it commits by itself)."""
    target = audit_log if table is None else table
    _run_ddl(bind, lambda connection: target.create(connection, checkfirst=True))


def drop_audit_table(bind: sa.Engine | sa.Connection, table: sa.Table | None = None) -> None:
    """Drop the table if it exists."""
    target = audit_log if table is None else table
    _run_ddl(bind, lambda connection: target.drop(connection, checkfirst=True))


def _run_ddl(bind: sa.Engine | sa.Connection, ddl: Callable[[sa.Connection], None]) -> None:
    """Run ``ddl`` in a transaction of its own on an Engine, or on the caller's Connection."""
    if isinstance(bind, sa.Engine):
        with bind.begin() as connection:
            ddl(connection)
    else:
        ddl(bind)


async def create_audit_table_async(bind: Any, table: sa.Table | None = None) -> None:
    """`create_audit_table` for an ``AsyncEngine`` or ``AsyncConnection``."""
    from sqlalchemy.ext.asyncio import AsyncEngine

    table = audit_log if table is None else table
    if isinstance(bind, AsyncEngine):
        async with bind.begin() as connection:
            await connection.run_sync(lambda sync: table.create(sync, checkfirst=True))
    else:
        await bind.run_sync(lambda sync: table.create(sync, checkfirst=True))


def migration_upgrade(
    op: Any, name: str = DEFAULT_TABLE_NAME, *, schema: str | None = None
) -> None:
    """Create the audit table from an Alembic migration's ``upgrade()``::

        from dbsight.audit import migration_upgrade
        def upgrade() -> None:
            migration_upgrade(op)
    """
    op.create_table(name, *_columns(), schema=schema, comment="dbsight audit log")
    for suffix, columns in INDEXES.items():
        op.create_index(index_name(name, suffix), name, list(columns), schema=schema)


def migration_downgrade(
    op: Any, name: str = DEFAULT_TABLE_NAME, *, schema: str | None = None
) -> None:
    """Drop the audit table (and its indexes) from an Alembic migration's ``downgrade()``."""
    for suffix in INDEXES:
        op.drop_index(index_name(name, suffix), table_name=name, schema=schema)
    op.drop_table(name, schema=schema)


def now_utc() -> datetime:
    return datetime.now(UTC)
