"""Alembic environment: runs the platform's migrations on its async engine (asyncpg or
aiomysql), in one transaction per migration where the database allows (PostgreSQL; MySQL
commits DDL as it goes). The version table is ``platform_alembic_version`` so that another
Alembic history in the same database is left alone."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from dbsight_platform.migrations.env_settings import VERSION_TABLE
from dbsight_platform.migrations.metadata import target_metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
        transaction_per_migration=True,
        **kwargs,  # type: ignore[arg-type]
    )


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
