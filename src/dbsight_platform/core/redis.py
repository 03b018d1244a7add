"""The one async Redis client and its connection pool, shared by every application.

Features built on Redis (sessions, cache, rate limiting, locks, feature flags) take this
client as an argument, and name their keys with `RedisKeys` so that one deployment (or one
test) can keep its keys under a prefix of its own.
"""

from __future__ import annotations

from redis.asyncio import ConnectionPool, Redis

from .config import Settings


def create_redis(settings: Settings) -> Redis:
    """A client on a bounded pool; commands time out rather than hang on a dead server."""
    pool = ConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_socket_timeout_s,
        health_check_interval=30,
        decode_responses=True,
    )
    return Redis(connection_pool=pool)


class RedisKeys:
    """Key names ``{prefix}{app}:{kind}:{identifier}`` (seed 004 §4.3.2's convention)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def key(self, app: str, kind: str, identifier: str) -> str:
        return f"{self.prefix}{app}:{kind}:{identifier}"


async def close_redis(client: Redis) -> None:
    """Close the client and disconnect every pooled connection."""
    await client.aclose(close_connection_pool=True)
