"""A distributed lock: one holder at a time across every instance of the service.

``SET key token NX PX ttl`` takes it with a random token only this holder knows; release and
extend are Lua scripts that act only if the key still holds that token, so a holder whose
lock expired (and was taken by another) can neither free nor prolong the other's lock.

The TTL bounds how long a crashed holder blocks the others; work that may outlast it calls
``extend()``. The lock fails closed: without Redis no lock is granted (``RedisUnavailable``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from types import TracebackType
from typing import Any, Self

from ._calls import require_name, require_prefix, text, unavailable_as_error
from ._scripts import EXTEND_IF_OWNER, RELEASE_IF_OWNER
from .errors import LockNotAcquired, LockNotOwned

log = logging.getLogger("dbsight_platform.redis_features.lock")


class RedisLock:
    """One named lock (key ``{prefix}{name}``); use it as ``async with lock:`` or call
    ``acquire()``/``release()``.

    ``ttl_s``: how long the lock lives unless extended. ``blocking``: wait for a held lock
    (polling every ``retry_interval_s``, with jitter) up to ``blocking_timeout_s`` (None: no
    limit); otherwise give up at once. ``async with`` raises ``LockNotAcquired`` when not
    acquired; ``acquire()`` returns False. One object is one holder: it is not reentrant.
    """

    def __init__(
        self,
        redis: Any,
        name: str,
        *,
        ttl_s: float = 10.0,
        prefix: str = "lock:",
        blocking: bool = True,
        blocking_timeout_s: float | None = None,
        retry_interval_s: float = 0.05,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        if retry_interval_s <= 0:
            raise ValueError(f"retry_interval_s must be positive, got {retry_interval_s}")
        if blocking_timeout_s is not None and blocking_timeout_s < 0:
            raise ValueError(f"blocking_timeout_s must be >= 0, got {blocking_timeout_s}")
        self.redis = redis
        self.name = require_name("a lock name", name)
        self.key = require_prefix(prefix) + name
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.blocking = blocking
        self.blocking_timeout_s = blocking_timeout_s
        self.retry_interval_s = retry_interval_s
        self.token: str | None = None
        self._release = redis.register_script(RELEASE_IF_OWNER)
        self._extend = redis.register_script(EXTEND_IF_OWNER)

    def __repr__(self) -> str:
        return f"<RedisLock {self.key!r} held={self.token is not None}>"

    async def acquire(
        self, *, blocking: bool | None = None, blocking_timeout_s: float | None = None
    ) -> bool:
        """Take the lock; True when taken. The arguments override the constructor's."""
        if self.token is not None:
            raise RuntimeError(f"lock {self.name!r} is already held by this object")
        blocking = self.blocking if blocking is None else blocking
        timeout = self.blocking_timeout_s if blocking_timeout_s is None else blocking_timeout_s
        deadline = None if timeout is None else time.monotonic() + timeout
        token = secrets.token_hex(16)
        while True:
            with unavailable_as_error("lock acquire"):
                taken = await self.redis.set(self.key, token, nx=True, px=self.ttl_ms)
            if taken:
                self.token = token
                return True
            if not blocking:
                return False
            pause = self.retry_interval_s * random.uniform(0.5, 1.5)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                pause = min(pause, left)
            await asyncio.sleep(pause)

    async def release(self) -> None:
        """Free the lock; ``LockNotOwned`` if it expired (maybe taken by another) meanwhile."""
        token = self.token
        if token is None:
            raise LockNotOwned(f"lock {self.name!r} is not held by this object")
        self.token = None
        with unavailable_as_error("lock release"):
            released = await self._release(keys=[self.key], args=[token])
        if not released:
            raise LockNotOwned(f"lock {self.name!r} expired before it was released")

    async def extend(self, by_s: float) -> float:
        """Add ``by_s`` seconds to the lock's remaining life; returns the new remaining life
        in seconds. ``LockNotOwned`` if it is no longer ours."""
        if by_s <= 0:
            raise ValueError(f"by_s must be positive, got {by_s}")
        token = self.token
        if token is None:
            raise LockNotOwned(f"lock {self.name!r} is not held by this object")
        with unavailable_as_error("lock extend"):
            remaining_ms = await self._extend(
                keys=[self.key], args=[token, max(1, int(by_s * 1000))]
            )
        if not remaining_ms:
            self.token = None
            raise LockNotOwned(f"lock {self.name!r} expired before it was extended")
        return int(remaining_ms) / 1000.0

    async def owned(self) -> bool:
        """Whether this object still holds the lock (it has not expired)."""
        if self.token is None:
            return False
        with unavailable_as_error("lock check"):
            current = await self.redis.get(self.key)
        return current is not None and text(current) == self.token

    async def locked(self) -> bool:
        """Whether anyone holds the lock."""
        with unavailable_as_error("lock check"):
            return bool(await self.redis.exists(self.key))

    async def __aenter__(self) -> Self:
        if not await self.acquire():
            raise LockNotAcquired(f"lock {self.name!r} is held by another holder")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.release()  # a lock that expired under the work is worth an error
            return
        # the block's own error wins; a lost lock on top of it is only logged
        try:
            await self.release()
        except Exception as release_error:  # noqa: BLE001
            log.warning("lock %r not released cleanly: %s", self.name, release_error)
