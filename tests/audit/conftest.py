"""Engines on a fresh PostgreSQL database (embedded cluster) and a fresh MariaDB database,
through real drivers, with the audit table created; each dropped after its test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dbsight import audit

SYNC_DRIVERS = {"postgresql": "psycopg", "mariadb": "pymysql"}
ASYNC_DRIVERS = {"postgresql": "asyncpg", "mariadb": "aiomysql"}


def driver_url(dsn: str, driver: str) -> str:
    scheme, rest = dsn.split("://", 1)
    return f"{scheme.split('+')[0]}+{driver}://{rest}"


@pytest.fixture(params=["postgresql", "mariadb"])
def database_dsn(request: pytest.FixtureRequest) -> str:
    """A fresh database's plain URL (postgresql://... or mysql://...)."""
    return request.getfixturevalue("pg_dsn" if request.param == "postgresql" else "mysql_dsn")


def _system(dsn: str) -> str:
    return "postgresql" if dsn.startswith("postgres") else "mariadb"


@pytest.fixture
def engine(database_dsn: str) -> Iterator[sa.Engine]:
    """A sync engine (psycopg or PyMySQL) with the audit table created."""
    engine = sa.create_engine(driver_url(database_dsn, SYNC_DRIVERS[_system(database_dsn)]))
    audit.create_audit_table(engine)
    yield engine
    engine.dispose()


@pytest.fixture
async def async_engine(database_dsn: str) -> AsyncIterator[AsyncEngine]:
    """An async engine (asyncpg or aiomysql) with the audit table created."""
    engine = create_async_engine(driver_url(database_dsn, ASYNC_DRIVERS[_system(database_dsn)]))
    await audit.create_audit_table_async(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def audit_rows() -> Any:
    """``audit_rows(engine)``: every audit record, oldest first, as mappings."""

    def read(engine: sa.Engine) -> list[Any]:
        table = audit.audit_log
        with engine.connect() as connection:
            return list(connection.execute(sa.select(table).order_by(table.c.id)).mappings())

    return read
