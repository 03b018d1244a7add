"""The distributed lock on a real Redis: exclusion, the token check on release and extend,
expiry, blocking and non-blocking acquisition, the context manager's errors, outages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dbsight_platform.redis_features import (
    LockNotAcquired,
    LockNotOwned,
    RedisLock,
    RedisUnavailable,
)


async def gone(client: Any, key: str, within_s: float = 5.0) -> bool:
    """Whether ``key`` disappears (expires) within ``within_s``."""
    for _ in range(int(within_s / 0.02)):
        if not await client.exists(key):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_one_holder_at_a_time(aredis: Any, redis_prefix: str) -> None:
    first = RedisLock(aredis, "job", prefix=redis_prefix, ttl_s=30)
    second = RedisLock(aredis, "job", prefix=redis_prefix, ttl_s=30, blocking=False)
    assert await first.acquire()
    assert await first.owned() and await second.locked()
    assert not await second.acquire()
    assert not await second.owned()
    await first.release()
    assert not await first.locked()
    assert await second.acquire()
    await second.release()


async def test_release_checks_the_token(aredis: Any, redis_prefix: str) -> None:
    """A holder whose lock expired and was taken by another can neither release nor extend
    the other's lock."""
    slow = RedisLock(aredis, "report", prefix=redis_prefix, ttl_s=0.2)
    assert await slow.acquire()
    assert await gone(aredis, slow.key)  # expired under the slow holder
    other = RedisLock(aredis, "report", prefix=redis_prefix, ttl_s=30, blocking=False)
    assert await other.acquire()
    with pytest.raises(LockNotOwned, match="expired"):
        await slow.extend(10)
    assert await other.owned()
    slow.token = "stolen?"  # even a token set by hand does not match
    with pytest.raises(LockNotOwned):
        await slow.release()
    assert await other.owned()
    await other.release()
    with pytest.raises(LockNotOwned, match="not held"):
        await other.release()


async def test_extend_adds_to_the_remaining_life(aredis: Any, redis_prefix: str) -> None:
    lock = RedisLock(aredis, "long", prefix=redis_prefix, ttl_s=5)
    async with lock:
        before = await aredis.pttl(lock.key)
        remaining = await lock.extend(60)
        assert remaining > 60 and remaining * 1000 > before
        assert await aredis.pttl(lock.key) > 60_000
    assert not await lock.locked()


async def test_lock_expires_by_itself(aredis: Any, redis_prefix: str) -> None:
    lock = RedisLock(aredis, "crashed", prefix=redis_prefix, ttl_s=0.3)
    assert await lock.acquire()
    assert 0 < await aredis.pttl(lock.key) <= 300
    assert await gone(aredis, lock.key)
    assert not await lock.owned()


async def test_blocking_waits_for_the_holder(aredis: Any, redis_prefix: str) -> None:
    holder = RedisLock(aredis, "shared", prefix=redis_prefix, ttl_s=30)
    await holder.acquire()
    waiter = RedisLock(aredis, "shared", prefix=redis_prefix, ttl_s=30, blocking_timeout_s=10)
    waiting = asyncio.create_task(waiter.acquire())
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await holder.release()
    assert await waiting
    assert await waiter.owned()
    await waiter.release()


async def test_context_manager_errors(aredis: Any, redis_prefix: str) -> None:
    holder = RedisLock(aredis, "busy", prefix=redis_prefix, ttl_s=30)
    await holder.acquire()
    with pytest.raises(LockNotAcquired, match="'busy'"):
        async with RedisLock(aredis, "busy", prefix=redis_prefix, blocking_timeout_s=0.1):
            pass
    with pytest.raises(LockNotAcquired):
        async with RedisLock(aredis, "busy", prefix=redis_prefix, blocking=False):
            pass
    await holder.release()
    # the block's own error is not hidden by the lock's release, even a failed one
    short = RedisLock(aredis, "busy", prefix=redis_prefix, ttl_s=0.1)
    with pytest.raises(KeyError):
        async with short:
            assert await gone(aredis, short.key)
            raise KeyError("the work's error")
    # a lock lost under a successful block is reported
    with pytest.raises(LockNotOwned):
        async with RedisLock(aredis, "busy", prefix=redis_prefix, ttl_s=0.1) as lost:
            assert await gone(aredis, lost.key)


async def test_invalid_arguments(aredis: Any, redis_prefix: str) -> None:
    with pytest.raises(ValueError):
        RedisLock(aredis, "", prefix=redis_prefix)
    with pytest.raises(ValueError):
        RedisLock(aredis, "x", prefix="")
    with pytest.raises(ValueError):
        RedisLock(aredis, "x", prefix=redis_prefix, ttl_s=0)
    lock = RedisLock(aredis, "x", prefix=redis_prefix)
    await lock.acquire()
    with pytest.raises(RuntimeError, match="already held"):
        await lock.acquire()
    await lock.release()


async def test_outage_is_redis_unavailable(dead_redis: Any) -> None:
    with pytest.raises(RedisUnavailable, match="lock acquire"):
        await RedisLock(dead_redis, "x").acquire()
