"""Idempotent order creation through Redis: a client retrying ``POST /orders`` with the same
``Idempotency-Key`` gets the order the first attempt made instead of a second order.

The key is claimed with ``SET NX`` (``pending``) before the order is made, so two instances
serving the same retry at once cannot both create it; after the commit it holds the order's
id for a day. A failed attempt releases the key so the client can retry.
"""

from __future__ import annotations

from redis.asyncio import Redis

from ...core.redis import RedisKeys
from .errors import IdempotencyKeyInUse

APP = "app-a"
PENDING = "pending"
TTL_S = 24 * 3600


class IdempotencyStore:
    def __init__(self, redis: Redis, keys: RedisKeys, ttl_s: int = TTL_S) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s

    def _name(self, key: str) -> str:
        return self.keys.key(APP, "idempotency", key)

    async def claim(self, key: str) -> int | None:
        """None when this request may create the order; the earlier order's id when one was
        already made with this key. Raises `IdempotencyKeyInUse` while another is in flight."""
        name = self._name(key)
        for _ in range(2):
            if await self.redis.set(name, PENDING, nx=True, ex=self.ttl_s):
                return None
            value = await self.redis.get(name)
            if value is None:  # expired between the two commands: claim again
                continue
            if value == PENDING:
                raise IdempotencyKeyInUse("A request with this Idempotency-Key is in progress")
            return int(value)
        raise IdempotencyKeyInUse("A request with this Idempotency-Key is in progress")

    async def complete(self, key: str, order_id: int) -> None:
        await self.redis.set(self._name(key), str(order_id), ex=self.ttl_s)

    async def release(self, key: str) -> None:
        await self.redis.delete(self._name(key))
