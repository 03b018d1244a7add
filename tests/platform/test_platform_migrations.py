"""The platform's migrations on PostgreSQL and MariaDB: upgrade creates exactly the tables the
models describe (Alembic finds no difference), downgrade removes them all and its own
version row, and upgrading again works: the migrations are reversible."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from dbsight_platform.core.config import load_settings

TABLES = {
    "app_a_accounts",
    "app_a_orders",
    "app_b_products",
    "app_b_inventory",
    "dbsight_audit_log",
    "app_a_users",
}


@pytest.fixture(params=["postgresql", "mysql"])
def empty_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database of each backend; dropped afterwards."""
    if request.param == "postgresql":
        server = request.getfixturevalue("pg_server")
        with server.temporary_database() as dsn:
            yield dsn
    else:
        server = request.getfixturevalue("mysql_server")
        name = server.create_database()
        try:
            yield server.dsn(name)
        finally:
            server.drop_database(name)


def schema_state(url: str) -> tuple[set[str], list[Any]]:
    """(tables, differences between the database and the models' metadata)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from dbsight_platform.migrations.env_settings import VERSION_TABLE
    from dbsight_platform.migrations.metadata import target_metadata

    async def read() -> tuple[set[str], list[Any]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:

                def inspect_sync(sync: Any) -> tuple[set[str], list[Any]]:
                    tables = set(inspect(sync).get_table_names())
                    context = MigrationContext.configure(
                        sync, opts={"compare_type": True, "version_table": VERSION_TABLE}
                    )
                    return tables, compare_metadata(context, target_metadata)

                return await connection.run_sync(inspect_sync)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def run_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": "redis://127.0.0.1:6379/0"}
    return subprocess.run(
        [sys.executable, "-m", "dbsight_platform", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    from dbsight_platform.migrations import runner

    settings = load_settings(database_url=empty_database_url, redis_url="redis://127.0.0.1:6379/0")
    url = settings.database_url
    assert runner.current_revision(settings) is None

    result = run_cli(empty_database_url, "migrate")
    assert result.returncode == 0, result.stderr
    assert "database at revision 0003" in result.stdout
    tables, differences = schema_state(url)
    assert TABLES | {"platform_alembic_version"} == tables
    assert differences == []

    result = run_cli(empty_database_url, "downgrade", "base")
    assert result.returncode == 0, result.stderr
    assert "database at revision base" in result.stdout
    tables, _ = schema_state(url)
    assert tables <= {"platform_alembic_version"}
    assert runner.current_revision(settings) is None

    runner.upgrade(settings)
    assert runner.current_revision(settings) == runner.head_revision(settings) == "0003"
    runner.downgrade(settings)  # one step back: the users go, the rest stays
    assert schema_state(url)[0] & TABLES == TABLES - {"app_a_users"}
    runner.downgrade(settings)  # and the audit log
    assert schema_state(url)[0] & TABLES == TABLES - {"app_a_users", "dbsight_audit_log"}
