"""The session store on a real Redis: JSON data, TTL, sliding expiry, save that never
resurrects, invalid ids, corrupt values, outages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dbsight_platform.redis_features import RedisUnavailable, Session, SessionStore


async def test_create_get_delete(aredis: Any, redis_prefix: str) -> None:
    store = SessionStore(aredis, ttl_s=600, prefix=redis_prefix)
    session = await store.create({"user": "alice", "cart": [1, 2], "ünïcode": "✓"})
    assert len(session.id) >= 40
    loaded = await store.get(session.id)
    assert loaded == Session(session.id, {"user": "alice", "cart": [1, 2], "ünïcode": "✓"})
    assert 0 < (await store.ttl(session.id) or 0) <= 600
    assert await store.delete(session.id)
    assert await store.get(session.id) is None
    assert not await store.delete(session.id)
    assert await store.ttl(session.id) is None
    assert (await store.create()).data == {}


async def test_sliding_expiry_renews_on_read(aredis: Any, redis_prefix: str) -> None:
    store = SessionStore(aredis, ttl_s=600, prefix=redis_prefix)
    session = await store.create({"n": 1})
    await aredis.expire(store.key(session.id), 5)  # as if most of its life had passed
    assert await store.get(session.id) is not None
    assert await aredis.ttl(store.key(session.id)) > 5

    await aredis.expire(store.key(session.id), 5)
    assert await store.touch(session.id)
    assert await aredis.ttl(store.key(session.id)) > 5


async def test_fixed_expiry_is_not_renewed(aredis: Any, redis_prefix: str) -> None:
    store = SessionStore(aredis, ttl_s=600, prefix=redis_prefix, sliding=False)
    session = await store.create({"n": 1})
    await aredis.expire(store.key(session.id), 5)
    loaded = await store.get(session.id)
    assert loaded is not None
    loaded.data["n"] = 2
    assert await store.save(loaded)
    assert await aredis.ttl(store.key(session.id)) <= 5  # save kept the TTL
    assert (await store.get(session.id)).data == {"n": 2}  # type: ignore[union-attr]


async def test_session_expires_and_save_does_not_resurrect(aredis: Any, redis_prefix: str) -> None:
    store = SessionStore(aredis, ttl_s=1, prefix=redis_prefix)
    session = await store.create({"n": 1})
    for _ in range(150):
        if await store.ttl(session.id) is None:
            break
        await asyncio.sleep(0.02)
    assert await store.get(session.id) is None
    session.data["n"] = 2
    assert not await store.save(session)
    assert not await store.touch(session.id)
    assert not await aredis.exists(store.key(session.id))


@pytest.mark.parametrize("bad", ["", "short", "../../etc", "a" * 200, "x*" * 10, None])
async def test_invalid_ids_are_not_found(aredis: Any, redis_prefix: str, bad: Any) -> None:
    store = SessionStore(aredis, ttl_s=60, prefix=redis_prefix)
    assert await store.get(bad) is None
    assert not await store.touch(bad)
    assert not await store.delete(bad)


async def test_corrupt_value_is_dropped(aredis: Any, redis_prefix: str) -> None:
    store = SessionStore(aredis, ttl_s=60, prefix=redis_prefix)
    session = await store.create({"n": 1})
    await aredis.set(store.key(session.id), b"\xff not json")
    assert await store.get(session.id) is None
    assert not await aredis.exists(store.key(session.id))
    session = await store.create({"n": 1})
    await aredis.set(store.key(session.id), b"[1, 2]")  # JSON, but not an object
    assert await store.get(session.id) is None


async def test_bad_data_is_refused(aredis: Any, redis_prefix: str) -> None:
    store = SessionStore(aredis, ttl_s=60, prefix=redis_prefix)
    with pytest.raises(TypeError, match="JSON-serializable"):
        await store.create({"when": object()})
    with pytest.raises(TypeError, match="mapping"):
        await store.create([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SessionStore(aredis, ttl_s=0, prefix=redis_prefix)
    assert await aredis.keys(redis_prefix + "*") == []


async def test_outage_is_redis_unavailable(dead_redis: Any) -> None:
    store = SessionStore(dead_redis, ttl_s=60)
    with pytest.raises(RedisUnavailable, match="session create"):
        await store.create({"n": 1})
    with pytest.raises(RedisUnavailable, match="session get"):
        await store.get("a" * 43)
