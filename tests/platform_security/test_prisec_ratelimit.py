"""The sliding-window limiter on a real Redis: the limit within a window, retry_after, the
window sliding, atomicity under concurrency, keys apart, reset, outages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dbsight_platform.redis_features import RedisUnavailable, SlidingWindowLimiter


async def test_limit_within_a_window_then_admitted_again(aredis: Any, redis_prefix: str) -> None:
    limiter = SlidingWindowLimiter(aredis, prefix=redis_prefix)
    results = [await limiter.hit("ip:1", limit=3, window_s=1.0) for _ in range(5)]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0, 0]
    assert all(r.limit == 3 and r.retry_after_s == 0 for r in results[:3])
    refused = results[3]
    assert 0 < refused.retry_after_s <= 1.0
    assert 0 < results[0].reset_after_s <= 1.0
    # refused requests were not counted: once the oldest leaves the window, one is admitted
    await asyncio.sleep(refused.retry_after_s + 0.05)
    again = await limiter.hit("ip:1", limit=3, window_s=1.0)
    assert again.allowed
    assert await aredis.zcard(redis_prefix + "ip:1") <= 3


async def test_the_window_slides(aredis: Any, redis_prefix: str) -> None:
    """Requests older than the window are forgotten, the ones inside it count, whatever
    fixed window they would fall in: the set is seeded with times relative to the server's
    clock (one 61 s old, one 50 s old, one 1 s old) for a 60 s window."""
    limiter = SlidingWindowLimiter(aredis, prefix=redis_prefix)
    seconds, micros = await aredis.time()
    now_us = seconds * 1_000_000 + micros
    await aredis.zadd(
        redis_prefix + "k",
        {
            "old": now_us - 61_000_000,
            "inside-50s": now_us - 50_000_000,
            "inside-1s": now_us - 1_000_000,
        },
    )
    admitted = await limiter.hit("k", limit=3, window_s=60)
    assert admitted.allowed and admitted.remaining == 0
    assert await aredis.zscore(redis_prefix + "k", "old") is None
    refused = await limiter.hit("k", limit=3, window_s=60)
    assert not refused.allowed
    # admitted again when the 50 s old request leaves the window, in about 10 s
    assert 0 < refused.retry_after_s <= 10
    assert refused.retry_after_s > 5


async def test_concurrent_hits_never_exceed_the_limit(aredis: Any, redis_prefix: str) -> None:
    limiter = SlidingWindowLimiter(aredis, prefix=redis_prefix)
    results = await asyncio.gather(*(limiter.hit("burst", limit=5, window_s=30) for _ in range(40)))
    assert sum(r.allowed for r in results) == 5
    assert sorted(r.remaining for r in results if r.allowed) == [0, 1, 2, 3, 4]
    assert 0 < await aredis.pttl(redis_prefix + "burst") <= 30_000


async def test_keys_are_apart_and_reset(aredis: Any, redis_prefix: str) -> None:
    limiter = SlidingWindowLimiter(aredis, prefix=redis_prefix)
    assert (await limiter.hit("a", limit=1, window_s=30)).allowed
    assert not (await limiter.hit("a", limit=1, window_s=30)).allowed
    assert (await limiter.hit("b", limit=1, window_s=30)).allowed
    await limiter.reset("a")
    assert (await limiter.hit("a", limit=1, window_s=30)).allowed


async def test_invalid_arguments(aredis: Any, redis_prefix: str) -> None:
    limiter = SlidingWindowLimiter(aredis, prefix=redis_prefix)
    with pytest.raises(ValueError):
        await limiter.hit("a", limit=0, window_s=1)
    with pytest.raises(ValueError):
        await limiter.hit("a", limit=1, window_s=0)
    with pytest.raises(ValueError):
        await limiter.hit("", limit=1, window_s=1)


async def test_outage_is_redis_unavailable(dead_redis: Any) -> None:
    with pytest.raises(RedisUnavailable, match="rate limit"):
        await SlidingWindowLimiter(dead_redis).hit("a", limit=1, window_s=1)
