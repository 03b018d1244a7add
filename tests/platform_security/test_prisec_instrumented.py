"""Every Redis feature on a client instrumented by dbsight (``dbsight.instrument(client)``):
the Lua scripts (EVALSHA, and the reload after SCRIPT FLUSH, whose NoScriptError must reach
redis-py unchanged), the cache's pipeline and the plain commands behave as on a plain client,
and dbsight records them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

import dbsight
from dbsight.core import Settings
from dbsight.instrument import uninstrument_all
from dbsight_platform.redis_features import (
    FeatureFlags,
    LockNotOwned,
    RedisCache,
    RedisLock,
    SessionStore,
    SlidingWindowLimiter,
)
from dbsight_platform.security import TokenCodec, TokenRevocationList


def count(operation: str, result: str) -> float:
    labels = {"backend": "redis", "operation": operation, "result": result}
    value = dbsight.get_runtime().registry.get_sample_value("cache_operations_total", labels)
    return value or 0.0


@pytest.fixture
async def instrumented(fresh_runtime: Any, redis_url: str) -> AsyncIterator[Any]:
    dbsight.configure(Settings(explain_slow_queries=False))
    client = redis.asyncio.Redis.from_url(redis_url)
    handle = dbsight.instrument(client)
    assert handle.system == "redis"
    try:
        yield client
    finally:
        uninstrument_all()
        await client.aclose()


async def test_features_on_an_instrumented_client(instrumented: Any, redis_prefix: str) -> None:
    client = instrumented
    await client.script_flush()  # the first EVALSHA of each script meets NOSCRIPT

    lock = RedisLock(client, "job", prefix=redis_prefix, ttl_s=30)
    async with lock:
        assert await lock.extend(5) > 30
    other = RedisLock(client, "job", prefix=redis_prefix)
    other.token = "not-the-holder"
    with pytest.raises(LockNotOwned):
        await other.release()

    limiter = SlidingWindowLimiter(client, prefix=redis_prefix + "rl:")
    allowed = [(await limiter.hit("ip", limit=2, window_s=30)).allowed for _ in range(3)]
    assert allowed == [True, True, False]

    cache = RedisCache(client, prefix=redis_prefix + "cache:")
    calls = []

    async def load() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    assert await cache.get_or_load("k", load, tags=["t"]) == {"n": 1}
    assert await cache.get_or_load("k", load, tags=["t"]) == {"n": 1}
    await cache.invalidate_tags("t")  # a pipeline
    assert await cache.get_or_load("k", load, tags=["t"]) == {"n": 2}

    sessions = SessionStore(client, ttl_s=60, prefix=redis_prefix + "s:")
    session = await sessions.create({"user": "alice"})
    assert (await sessions.get(session.id)).data == {"user": "alice"}  # type: ignore[union-attr]

    flags = FeatureFlags(client, prefix=redis_prefix)
    await flags.set("beta", percentage=100)
    assert await flags.is_enabled("beta", "alice")

    revocations = TokenRevocationList(client, prefix=redis_prefix + "revoked:")
    claims = TokenCodec("instrumented-test-secret-" + "0" * 32).issue("alice").claims
    assert await revocations.revoke(claims.token_id, claims.expires_at)
    assert await revocations.is_revoked(claims.token_id)

    # dbsight saw the scripts (including the NOSCRIPT misses it let through), the pipeline
    # and the plain commands
    assert count("evalsha", "ok") >= 6
    assert count("evalsha", "error") >= 2
    assert count("script load", "ok") >= 2
    assert count("pipeline", "ok") >= 1
    assert count("incrby", "ok") >= 1  # redis-py sends INCR as INCRBY
    assert count("getex", "hit") >= 1
    assert count("hget", "hit") >= 1
    assert count("exists", "hit") >= 1
