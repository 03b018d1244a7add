"""The features on a client made with ``decode_responses=True`` (replies as ``str``, as many
services configure redis-py): the same behaviour as with bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

from dbsight_platform.redis_features import (
    FeatureFlags,
    Flag,
    Hit,
    RedisCache,
    RedisLock,
    SessionStore,
    SlidingWindowLimiter,
)


@pytest.fixture
async def decoded(redis_url: str) -> AsyncIterator[Any]:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_features_with_str_replies(decoded: Any, redis_prefix: str) -> None:
    lock = RedisLock(decoded, "job", prefix=redis_prefix)
    async with lock:
        assert await lock.owned()
        assert await lock.extend(1) > 1

    flags = FeatureFlags(decoded, prefix=redis_prefix)
    await flags.set("beta", percentage=40)
    assert await flags.all() == {"beta": Flag(True, 40.0)}

    cache = RedisCache(decoded, prefix=redis_prefix + "c:")
    await cache.set("k", {"ü": [1, None]}, tags=["t"])
    assert await cache.get("k", tags=["t"]) == Hit({"ü": [1, None]})
    await cache.invalidate_tags("t")
    assert await cache.get("k", tags=["t"]) is None

    sessions = SessionStore(decoded, ttl_s=60, prefix=redis_prefix + "s:")
    session = await sessions.create({"user": "alice"})
    assert (await sessions.get(session.id)).data == {"user": "alice"}  # type: ignore[union-attr]

    limiter = SlidingWindowLimiter(decoded, prefix=redis_prefix + "rl:")
    results = [await limiter.hit("ip", limit=1, window_s=30) for _ in range(2)]
    assert [r.allowed for r in results] == [True, False]
