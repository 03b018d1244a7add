"""Fixtures of the platform's security and Redis-feature tests: an asyncio Redis client on
the test server (keys under the test's own ``redis_prefix``, deleted afterwards) and one on a
port where nothing listens, for the outage paths."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[Any]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def dead_redis() -> AsyncIterator[Any]:
    """A client of a port nobody listens on (bound and closed at once), without retries."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = redis.asyncio.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    yield client
    await client.aclose()
