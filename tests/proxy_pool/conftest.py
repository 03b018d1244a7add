"""Server connections and pools against the test's real PostgreSQL, cleaned up afterwards."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from pool_helpers import ServerView, spec_from_dsn

from dbsight.proxy._backend import BackendSpec
from dbsight.proxy._pool import BackendPool


@pytest.fixture
def spec(pg_dsn: str) -> BackendSpec:
    return spec_from_dsn(pg_dsn)


@pytest.fixture
def server(pg_dsn: str) -> ServerView:
    return ServerView(pg_dsn)


@pytest.fixture
async def make_pool(spec: BackendSpec) -> AsyncIterator[Callable[..., BackendPool]]:
    """``make_pool(max_size=1, ...)`` -> a pool on the test's database, closed afterwards."""
    pools: list[BackendPool] = []

    def make(pool_spec: BackendSpec | None = None, **options: Any) -> BackendPool:
        options.setdefault("maintenance_interval_s", 3600)  # tests call maintain() themselves
        pool = BackendPool(pool_spec or spec, **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port
