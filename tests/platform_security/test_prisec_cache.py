"""Cache-aside on a real Redis: loading once, TTL, invalidation by key, tag and prefix, the
tag race, stampede protection, loader errors, corrupt entries, fail-open and outages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dbsight_platform.redis_features import Hit, RedisCache, RedisUnavailable


class Loader:
    """A loader counting its calls; returns ``value`` (or what ``values`` yields next)."""

    def __init__(self, value: Any = None, *, gate: asyncio.Event | None = None) -> None:
        self.value = value
        self.calls = 0
        self.gate = gate

    async def __call__(self) -> Any:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.value


def cache(client: Any, prefix: str, **kwargs: Any) -> RedisCache:
    return RedisCache(client, prefix=prefix, **kwargs)


async def test_loads_once_then_serves_from_redis(aredis: Any, redis_prefix: str) -> None:
    c = cache(aredis, redis_prefix, default_ttl_s=120)
    loader = Loader({"id": 1, "name": "Ada", "tags": ["x"]})
    assert await c.get_or_load("user:1", loader) == {"id": 1, "name": "Ada", "tags": ["x"]}
    assert await c.get_or_load("user:1", loader) == {"id": 1, "name": "Ada", "tags": ["x"]}
    assert loader.calls == 1
    assert 0 < await aredis.ttl(c.entry_key("user:1")) <= 120
    await c.get_or_load("user:2", Loader(2), ttl_s=7)
    assert 0 < await aredis.ttl(c.entry_key("user:2")) <= 7
    # None is a value: a cached "not found"
    missing = Loader(None)
    assert await c.get_or_load("user:404", missing) is None
    assert await c.get_or_load("user:404", missing) is None
    assert missing.calls == 1
    assert await c.get("user:404") == Hit(None)
    assert await c.get("nothing") is None
    assert not await aredis.exists(c.lock_key("user:1"))  # the load lock was released


async def test_invalidate_by_key(aredis: Any, redis_prefix: str) -> None:
    c = cache(aredis, redis_prefix)
    loader = Loader("v1")
    await c.get_or_load("k", loader)
    loader.value = "v2"
    assert await c.invalidate("k", "never-there") == 1
    assert await c.get_or_load("k", loader) == "v2"
    assert loader.calls == 2


async def test_invalidate_by_tag(aredis: Any, redis_prefix: str) -> None:
    c = cache(aredis, redis_prefix)
    profile, orders, other = Loader("p1"), Loader("o1"), Loader("x1")
    await c.get_or_load("profile:1", profile, tags=["user:1"])
    await c.get_or_load("orders:1", orders, tags=["user:1", "orders"])
    await c.get_or_load("profile:2", other, tags=["user:2"])
    await c.invalidate_tags("user:1")
    profile.value, orders.value = "p2", "o2"
    assert await c.get_or_load("profile:1", profile, tags=["user:1"]) == "p2"
    assert await c.get_or_load("orders:1", orders, tags=["user:1", "orders"]) == "o2"
    assert await c.get_or_load("profile:2", other, tags=["user:2"]) == "x1"
    assert (profile.calls, orders.calls, other.calls) == (2, 2, 1)
    # fresh again until the next invalidation; a read under other tags is a miss
    assert await c.get("orders:1", tags=["orders", "user:1"]) == Hit("o2")
    assert await c.get("orders:1", tags=["orders"]) is None
    await c.invalidate_tags("orders")
    assert await c.get("orders:1", tags=["user:1", "orders"]) is None


async def test_a_write_during_loading_makes_the_loaded_value_stale(
    aredis: Any, redis_prefix: str
) -> None:
    """The tag versions are read before the loader runs: a value loaded while a writer
    invalidated the tag is not served afterwards."""
    c = cache(aredis, redis_prefix)

    async def racing_loader() -> str:
        await c.invalidate_tags("user:1")  # a write lands while the old row is being read
        return "old"

    assert await c.get_or_load("profile:1", racing_loader, tags=["user:1"]) == "old"
    assert await c.get("profile:1", tags=["user:1"]) is None
    assert await c.get_or_load("profile:1", Loader("new"), tags=["user:1"]) == "new"


async def test_invalidate_by_prefix(aredis: Any, redis_prefix: str) -> None:
    c = cache(aredis, redis_prefix)
    for n in range(3):
        await c.set(f"report:2024:{n}", n)
    await c.set("report:2025:0", 0)
    await c.set("report:2024*", "a glob character in a key")
    # glob characters in the prefix are literal: only the one key is deleted
    assert await c.invalidate_prefix("report:2024*") == 1
    assert await c.get("report:2024:1") == Hit(1)
    assert await c.invalidate_prefix("report:2024:") == 3
    assert await c.get("report:2024:1") is None
    assert await c.get("report:2025:0") == Hit(0)


async def test_stampede_loads_once(aredis: Any, redis_prefix: str) -> None:
    c = cache(aredis, redis_prefix, lock_wait_s=10)
    gate = asyncio.Event()
    loader = Loader({"expensive": True}, gate=gate)
    callers = [asyncio.create_task(c.get_or_load("hot", loader)) for _ in range(10)]
    await asyncio.sleep(0.1)
    gate.set()
    results = await asyncio.gather(*callers)
    assert results == [{"expensive": True}] * 10
    assert loader.calls == 1


async def test_loader_error_is_not_cached_and_frees_the_lock(
    aredis: Any, redis_prefix: str
) -> None:
    c = cache(aredis, redis_prefix)

    async def failing() -> Any:
        raise LookupError("database said no")

    with pytest.raises(LookupError):
        await c.get_or_load("k", failing)
    assert not await aredis.exists(c.lock_key("k"))
    assert await c.get("k") is None
    assert await c.get_or_load("k", Loader(5)) == 5


async def test_waiter_takes_over_when_the_loader_fails(aredis: Any, redis_prefix: str) -> None:
    c = cache(aredis, redis_prefix, lock_wait_s=10)
    gate = asyncio.Event()

    async def failing() -> Any:
        await gate.wait()
        raise LookupError("first loader fails")

    first = asyncio.create_task(c.get_or_load("k", failing))
    await asyncio.sleep(0.05)
    second_loader = Loader("from the second")
    second = asyncio.create_task(c.get_or_load("k", second_loader))
    await asyncio.sleep(0.05)
    gate.set()
    with pytest.raises(LookupError):
        await first
    assert await second == "from the second"
    assert second_loader.calls == 1


async def test_corrupt_entry_is_a_miss(aredis: Any, redis_prefix: str) -> None:
    c = cache(aredis, redis_prefix)
    await aredis.set(c.entry_key("k"), b"\x00garbage")
    assert await c.get("k") is None
    assert await c.get_or_load("k", Loader("fresh")) == "fresh"
    assert await c.get("k") == Hit("fresh")


async def test_bad_values_and_keys(aredis: Any, redis_prefix: str) -> None:
    c = cache(aredis, redis_prefix)
    with pytest.raises(TypeError, match="JSON-serializable"):
        await c.set("k", {1, 2})
    with pytest.raises(TypeError, match="JSON-serializable"):
        await c.get_or_load("k", Loader(float("nan")))
    with pytest.raises(ValueError):
        await c.get_or_load("", Loader(1))
    never = Loader(1)
    with pytest.raises(ValueError, match="ttl_s"):
        await c.get_or_load("k", never, ttl_s=0)
    assert never.calls == 0
    with pytest.raises(ValueError):
        await c.invalidate_tags("")
    assert not await aredis.exists(c.lock_key("k"))


async def test_outage_fails_open_for_reads_only(dead_redis: Any) -> None:
    c = RedisCache(dead_redis, prefix="cache:")
    loader = Loader("from the database")
    assert await c.get_or_load("k", loader) == "from the database"
    assert await c.get_or_load("k", loader) == "from the database"
    assert loader.calls == 2
    with pytest.raises(RedisUnavailable, match="cache invalidate"):
        await c.invalidate("k")
    with pytest.raises(RedisUnavailable, match="cache invalidate_tags"):
        await c.invalidate_tags("t")
    with pytest.raises(RedisUnavailable):
        await c.set("k", 1)
    closed = RedisCache(dead_redis, prefix="cache:", fail_open=False)
    with pytest.raises(RedisUnavailable):
        await closed.get_or_load("k", loader)
