"""Feature flags on a real Redis: on/off, percentage rollout by a stable hash (distribution,
stability, monotonic growth, independence of flags), defaults for outages and corrupt
values."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from dbsight_platform.redis_features import FeatureFlags, Flag, RedisUnavailable, bucket

SUBJECTS = [f"user-{n}" for n in range(4000)]


def flags(client: Any, prefix: str, **kwargs: Any) -> FeatureFlags:
    return FeatureFlags(client, prefix=prefix, **kwargs)


async def enabled_for(f: FeatureFlags, name: str) -> set[str]:
    """The subjects the flag is on for: the stored flag read once and applied to each (one
    round trip); ``is_enabled`` agrees on a sample."""
    flag = await f.get(name)
    chosen = {s for s in SUBJECTS if flag is not None and flag.applies_to(name, s)}
    for subject in SUBJECTS[:40]:
        assert await f.is_enabled(name, subject) == (subject in chosen)
    return chosen


async def test_set_get_all_delete(aredis: Any, redis_prefix: str) -> None:
    f = flags(aredis, redis_prefix)
    assert await f.get("new-ui") is None
    assert not await f.is_enabled("new-ui", "alice")
    assert await f.set("new-ui") == Flag(True, 100.0)
    await f.set("beta", percentage=25)
    await f.set("killed", enabled=False)
    assert await f.all() == {
        "new-ui": Flag(True, 100.0),
        "beta": Flag(True, 25.0),
        "killed": Flag(False, 100.0),
    }
    assert await f.is_enabled("new-ui") and await f.is_enabled("new-ui", "alice")
    assert not await f.is_enabled("killed", "alice")
    assert await f.delete("new-ui") and not await f.delete("new-ui")
    assert not await f.is_enabled("new-ui", "alice")
    # another instance sees the same flags
    assert await flags(aredis, redis_prefix).get("beta") == Flag(True, 25.0)


async def test_percentage_rollout(aredis: Any, redis_prefix: str) -> None:
    f = flags(aredis, redis_prefix)
    await f.set("checkout-v2", percentage=30)
    at_30 = await enabled_for(f, "checkout-v2")
    assert 0.26 < len(at_30) / len(SUBJECTS) < 0.34
    assert await enabled_for(f, "checkout-v2") == at_30  # stable
    assert not await f.is_enabled("checkout-v2")  # no subject, not 100 %
    await f.set("checkout-v2", percentage=60)
    at_60 = await enabled_for(f, "checkout-v2")
    assert at_30 < at_60  # raising the percentage only adds subjects
    assert 0.56 < len(at_60) / len(SUBJECTS) < 0.64
    await f.set("search-v2", percentage=30)
    other = await enabled_for(f, "search-v2")
    assert 0.26 < len(other) / len(SUBJECTS) < 0.34
    assert len(other & at_30) < 0.5 * len(at_30)  # another 30 %, not the same one
    await f.set("checkout-v2", percentage=0)
    assert await enabled_for(f, "checkout-v2") == set()
    assert all(0 <= bucket("x", s) < 100 for s in SUBJECTS[:100])


async def test_defaults_when_redis_is_down(
    dead_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="dbsight_platform.redis_features")
    f = FeatureFlags(dead_redis, defaults={"kill-switch": True, "beta": Flag(True, 50)})
    assert await f.is_enabled("kill-switch", "alice")
    assert not await f.is_enabled("unknown", "alice")
    assert not await f.is_enabled("beta")
    half = {s for s in SUBJECTS[:200] if await f.is_enabled("beta", s)}
    assert 70 < len(half) < 130
    # one warning for the outage, not one per check
    assert len(caplog.records) == 1 and "defaults" in caplog.records[0].getMessage()
    with pytest.raises(RedisUnavailable, match="flag set"):
        await f.set("beta", percentage=10)
    with pytest.raises(RedisUnavailable):
        await f.all()


async def test_stored_value_wins_over_default_and_corrupt_falls_back(
    aredis: Any, redis_prefix: str
) -> None:
    f = flags(aredis, redis_prefix, defaults={"x": True, "y": True})
    assert await f.is_enabled("x", "alice")
    await f.set("x", enabled=False)
    assert not await f.is_enabled("x", "alice")
    await aredis.hset(f.key, "y", "{not json")
    assert await f.is_enabled("y", "alice")  # the default
    assert await f.get("y") is None
    assert "y" not in await f.all()


def test_invalid_flags() -> None:
    with pytest.raises(ValueError):
        Flag(True, 101)
    with pytest.raises(ValueError):
        Flag(True, float("nan"))
    with pytest.raises(TypeError):
        Flag("yes", 10)  # type: ignore[arg-type]
