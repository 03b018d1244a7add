"""Helpers of the pool tests: a spec from a DSN, the server's view of its processes, waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg

from dbsight.proxy._backend import BackendSpec


def spec_from_dsn(dsn: str, **options: Any) -> BackendSpec:
    parts = urlsplit(dsn)
    return BackendSpec(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        database=unquote(parts.path.lstrip("/")),
        password=unquote(parts.password) if parts.password else None,
        **options,
    )


class ServerView:
    """The server's own account of the proxy's connections."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def fetch(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def alive(self, pid: int) -> bool:
        rows = await self.fetch("SELECT 1 FROM pg_stat_activity WHERE pid = %s", pid)
        return bool(rows)

    async def wait_gone(self, pid: int, timeout: float = 20.0) -> None:
        """The backend process ``pid`` has exited (its exit follows the socket's close)."""
        deadline = time.monotonic() + timeout
        while await self.alive(pid):
            assert time.monotonic() < deadline, f"server process {pid} is still there"
            await asyncio.sleep(0.02)

    async def terminate(self, pid: int) -> None:
        await self.fetch("SELECT pg_terminate_backend(%s)", pid)
        await self.wait_gone(pid)


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Let the event loop run until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)
