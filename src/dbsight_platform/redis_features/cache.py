"""Cache-aside on Redis: ``get_or_load(key, loader)`` returns the cached JSON value or calls
the loader, stores its result with a TTL and returns it.

Keys (under ``prefix``): ``k:{key}`` an entry, ``t:{tag}`` a tag's version, ``l:{key}`` the
short lock of a key being loaded.

Invalidation on write:
- ``invalidate(*keys)`` deletes entries;
- ``invalidate_tags(*tags)`` increments each tag's version: every entry stored with that tag
  records the versions it was loaded under and is stale once one of them moved, whatever
  its key (one command, however many entries). The versions are read *before* the loader
  runs, so a value loaded while a write invalidated its tag is stale on arrival;
- ``invalidate_prefix(p)`` deletes every entry whose key starts with ``p`` (SCAN: cost grows
  with the keyspace; prefer tags on hot paths).

Stampede protection: on a miss one caller takes ``l:{key}`` (SET NX PX) and loads; the others
poll for the entry for up to ``lock_wait_s`` and load themselves only if it does not come.

Failure: reads fail open when ``fail_open`` (the default): with Redis down, ``get_or_load``
logs a warning and returns the loader's value uncached. ``get``/``set`` and every
invalidation raise ``RedisUnavailable`` (a lost invalidation would serve stale data later).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio.client import Redis

from . import _json
from ._calls import require_name, require_prefix, unavailable_as_error
from ._outage import OutageLog
from ._scripts import RELEASE_IF_OWNER
from .errors import RedisUnavailable

log = logging.getLogger("dbsight_platform.redis_features.cache")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Hit:
    """A cached value (``None`` is a value too: a cached "not found")."""

    value: Any


@dataclass(frozen=True, slots=True)
class _Lookup:
    hit: Hit | None
    versions: dict[str, int]  # the tags' current versions, to store a fresh value under


class RedisCache:
    """Cache-aside with tag and prefix invalidation (see the module docstring)."""

    def __init__(
        self,
        redis: Redis | Any,
        *,
        prefix: str = "cache:",
        default_ttl_s: int = 300,
        lock_ttl_s: float = 10.0,
        lock_wait_s: float = 5.0,
        poll_interval_s: float = 0.02,
        fail_open: bool = True,
    ) -> None:
        if int(default_ttl_s) < 1:
            raise ValueError(f"default_ttl_s must be at least 1, got {default_ttl_s}")
        if lock_ttl_s <= 0 or lock_wait_s < 0 or poll_interval_s <= 0:
            raise ValueError("lock_ttl_s and poll_interval_s must be > 0, lock_wait_s >= 0")
        self.redis = redis
        self.prefix = require_prefix(prefix)
        self.default_ttl_s = int(default_ttl_s)
        self.lock_ttl_ms = max(1, int(lock_ttl_s * 1000))
        self.lock_wait_s = lock_wait_s
        self.poll_interval_s = poll_interval_s
        self.fail_open = fail_open
        self._release = redis.register_script(RELEASE_IF_OWNER)
        self._outage = OutageLog(log, "cache bypassed (loaders called directly)")

    # -- keys ---------------------------------------------------------------------------
    def entry_key(self, key: str) -> str:
        return f"{self.prefix}k:{require_name('a cache key', key)}"

    def tag_key(self, tag: str) -> str:
        return f"{self.prefix}t:{require_name('a cache tag', tag)}"

    def lock_key(self, key: str) -> str:
        return f"{self.prefix}l:{key}"

    # -- reads and writes ----------------------------------------------------------------
    async def get(self, key: str, *, tags: Iterable[str] = ()) -> Hit | None:
        """The cached value, or None on a miss, an expired or a stale (tag moved) entry."""
        return (await self._lookup(key, tuple(tags))).hit

    async def set(
        self, key: str, value: Any, *, ttl_s: int | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Store ``value`` under the tags' current versions."""
        tags = tuple(tags)
        versions = await self._versions(tags)
        await self._store(key, value, ttl_s, versions)

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        *,
        ttl_s: int | None = None,
        tags: Iterable[str] = (),
    ) -> T:
        """The cached value, else the loader's (stored for ``ttl_s``, default
        ``default_ttl_s``). The loader's errors propagate and nothing is cached. An entry is
        a hit only for the same ``tags`` it was stored with, none of them invalidated since."""
        tags = tuple(tags)
        self.entry_key(key)  # a bad key or TTL is refused before anything runs
        self._ttl(ttl_s)
        try:
            lookup = await self._lookup(key, tags)
        except RedisUnavailable as exc:
            return await self._degraded(loader, exc)
        self._outage.up()
        if lookup.hit is not None:
            return lookup.hit.value  # type: ignore[no-any-return]
        token = secrets.token_hex(16)
        try:
            if await self._take_lock(key, token):
                # another caller may have stored it between our miss and our lock
                lookup = await self._lookup(key, tags)
            else:
                lookup = await self._wait_for_entry(key, tags, token)
        except RedisUnavailable as exc:
            await self._drop_lock(key, token)
            return await self._degraded(loader, exc)
        if lookup.hit is not None:
            await self._drop_lock(key, token)
            return lookup.hit.value  # type: ignore[no-any-return]
        try:
            value = await loader()
            try:
                await self._store(key, value, ttl_s, lookup.versions)
            except RedisUnavailable as exc:
                if not self.fail_open:
                    raise
                self._outage.down(exc)
            return value
        finally:
            await self._drop_lock(key, token)

    # -- invalidation ----------------------------------------------------------------------
    async def invalidate(self, *keys: str) -> int:
        """Delete these entries; returns how many existed."""
        if not keys:
            return 0
        names = [self.entry_key(key) for key in keys]
        with unavailable_as_error("cache invalidate"):
            return int(await self.redis.delete(*names))

    async def invalidate_tags(self, *tags: str) -> None:
        """Make every entry stored with one of these tags stale (one INCR per tag)."""
        if not tags:
            return
        names = [self.tag_key(tag) for tag in tags]
        with unavailable_as_error("cache invalidate_tags"):
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.incr(name)
                await pipe.execute()

    async def invalidate_prefix(self, key_prefix: str) -> int:
        """Delete every entry whose cache key starts with ``key_prefix`` (SCAN + UNLINK in
        batches of 500); returns how many were deleted."""
        pattern = _glob_escape(self.entry_key(require_name("a key prefix", key_prefix))) + "*"
        deleted = 0
        batch: list[Any] = []
        with unavailable_as_error("cache invalidate_prefix"):
            async for name in self.redis.scan_iter(match=pattern, count=500):
                batch.append(name)
                if len(batch) >= 500:
                    deleted += int(await self.redis.unlink(*batch))
                    batch.clear()
            if batch:
                deleted += int(await self.redis.unlink(*batch))
        return deleted

    # -- internals -------------------------------------------------------------------------
    async def _lookup(self, key: str, tags: tuple[str, ...]) -> _Lookup:
        names = [self.entry_key(key), *(self.tag_key(tag) for tag in tags)]
        with unavailable_as_error("cache get"):
            raw, *raw_versions = await self.redis.mget(names)
        versions = {tag: int(v) if v is not None else 0 for tag, v in zip(tags, raw_versions)}
        if raw is None:
            return _Lookup(None, versions)
        try:
            entry = _json.loads(raw)
            value, stored = entry["v"], entry["t"]
        except (ValueError, TypeError, KeyError):
            log.warning("cache entry under %r is not one of this cache's; ignored", self.prefix)
            return _Lookup(None, versions)
        if not isinstance(stored, dict) or stored != versions:
            # a tag moved since the value was loaded, or it was stored under other tags
            return _Lookup(None, versions)
        return _Lookup(Hit(value), versions)

    async def _versions(self, tags: tuple[str, ...]) -> dict[str, int]:
        if not tags:
            return {}
        with unavailable_as_error("cache get"):
            raw = await self.redis.mget([self.tag_key(tag) for tag in tags])
        return {tag: int(v) if v is not None else 0 for tag, v in zip(tags, raw)}

    async def _store(
        self, key: str, value: Any, ttl_s: int | None, versions: dict[str, int]
    ) -> None:
        ttl = self._ttl(ttl_s)
        payload = _json.dumps({"v": value, "t": versions}, "a cached value")
        with unavailable_as_error("cache set"):
            await self.redis.set(self.entry_key(key), payload, ex=ttl)

    def _ttl(self, ttl_s: int | None) -> int:
        ttl = self.default_ttl_s if ttl_s is None else int(ttl_s)
        if ttl < 1:
            raise ValueError(f"ttl_s must be at least 1, got {ttl_s}")
        return ttl

    async def _take_lock(self, key: str, token: str) -> bool:
        with unavailable_as_error("cache lock"):
            return bool(
                await self.redis.set(self.lock_key(key), token, nx=True, px=self.lock_ttl_ms)
            )

    async def _wait_for_entry(self, key: str, tags: tuple[str, ...], token: str) -> _Lookup:
        """Another caller is loading: poll for its entry; take the lock if it is freed
        without one (its loader failed). A miss comes back once the lock is ours or the
        wait is over (then this caller loads unlocked)."""
        deadline = time.monotonic() + self.lock_wait_s
        while True:
            await asyncio.sleep(self.poll_interval_s)
            lookup = await self._lookup(key, tags)
            if lookup.hit is not None or time.monotonic() >= deadline:
                return lookup
            if await self._take_lock(key, token):
                # the entry may have landed just before the lock was freed
                return await self._lookup(key, tags)

    async def _drop_lock(self, key: str, token: str) -> None:
        try:
            with unavailable_as_error("cache unlock"):
                await self._release(keys=[self.lock_key(key)], args=[token])
        except RedisUnavailable as exc:  # the lock expires by itself
            log.warning("cache lock not released: %s", exc)

    async def _degraded(self, loader: Callable[[], Awaitable[T]], exc: RedisUnavailable) -> T:
        if not self.fail_open:
            raise exc
        self._outage.down(exc)
        return await loader()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
