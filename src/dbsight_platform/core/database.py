"""The one async SQLAlchemy engine and its session factory, shared by every application.

The pool follows seed 004 §9.6 (size 10 per worker, overflow 20, recycle 3600 s, pre-ping);
a connect attempt is bounded so that a database that is down answers 503 quickly instead of
holding the request. Sessions never expire objects on commit (the service returns them after
committing) and are closed when the request ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from .config import Settings

CONNECT_TIMEOUT_S = 5


def engine_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``create_async_engine`` for these settings."""
    if settings.database_backend == "postgresql":
        connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_S}
    else:
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S, "charset": "utf8mb4"}
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_recycle": settings.db_pool_recycle_s,
        "pool_pre_ping": settings.db_pool_pre_ping,
        "pool_timeout": settings.db_pool_timeout_s,
        "echo": settings.db_echo,
        "connect_args": connect_args,
    }


class Database:
    """The engine and the session factory; `close()` returns every pooled connection."""

    def __init__(self, settings: Settings) -> None:
        self.engine: AsyncEngine = create_async_engine(
            settings.database_url, **engine_options(settings)
        )
        self.sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, autoflush=False
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for one unit of work; rolled back if left with a transaction open."""
        async with self.sessions() as session:
            yield session

    async def close(self) -> None:
        await self.engine.dispose()
