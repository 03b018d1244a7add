"""Sliding-window rate limiting: at most ``limit`` requests per key in any ``window_s``.

Each key is a sorted set of the admitted requests' times; one Lua script (atomic on the
server, with the server's clock so every instance agrees) drops the times older than the
window, counts the rest and admits the request only under the limit. Refused requests are
not recorded: a client that keeps hammering is admitted again as soon as its oldest
admitted request leaves the window (``retry_after_s``).

The limiter raises ``RedisUnavailable`` when Redis is down; what that means for a request
(admit or refuse) is the caller's choice: see ``RateLimitMiddleware(fail_open=...)``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ._calls import require_name, require_prefix, unavailable_as_error
from ._scripts import SLIDING_WINDOW


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """One decision: ``remaining`` requests left in the window after this one;
    ``retry_after_s`` until a refused request may be admitted (0 when allowed);
    ``reset_after_s`` until the oldest admitted request leaves the window."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_s: float
    reset_after_s: float


class SlidingWindowLimiter:
    """Sliding-window log per key, under ``{prefix}{key}``."""

    def __init__(self, redis: Any, *, prefix: str = "ratelimit:") -> None:
        self.redis = redis
        self.prefix = require_prefix(prefix)
        self._script = redis.register_script(SLIDING_WINDOW)

    async def hit(self, key: str, *, limit: int, window_s: float) -> RateLimitResult:
        """Count one request for ``key`` if the window has room; say whether it may go on."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        window_us = max(1, int(window_s * 1_000_000))
        name = self.prefix + require_name("a rate-limit key", key)
        with unavailable_as_error("rate limit"):
            allowed, remaining, retry_us, reset_us = await self._script(
                keys=[name], args=[limit, window_us, uuid.uuid4().hex]
            )
        return RateLimitResult(
            allowed=bool(allowed),
            limit=limit,
            remaining=max(0, int(remaining)),
            retry_after_s=max(0, int(retry_us)) / 1_000_000,
            reset_after_s=max(0, int(reset_us)) / 1_000_000,
        )

    async def reset(self, key: str) -> None:
        """Forget a key's requests (after a successful login, say)."""
        with unavailable_as_error("rate limit reset"):
            await self.redis.delete(self.prefix + require_name("a rate-limit key", key))
