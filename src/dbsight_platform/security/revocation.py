"""The token revocation list: ids (``jti``) of tokens revoked before they expire, in Redis.

Each revoked id is a key ``{prefix}{jti}`` living until the token would have expired anyway,
so the list holds only tokens that still matter and needs no cleaning. Checking it fails
closed: with Redis down ``is_revoked`` raises ``RedisUnavailable`` (503) rather than accept a
token that may have been revoked.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from ..redis_features._calls import require_name, require_prefix, unavailable_as_error


class TokenRevocationList:
    """Revoked token ids under ``{prefix}{jti}``."""

    def __init__(self, redis: Any, *, prefix: str = "auth:revoked:") -> None:
        self.redis = redis
        self.prefix = require_prefix(prefix)

    async def revoke(self, token_id: str, expires_at: datetime) -> bool:
        """Revoke the token until ``expires_at``; False when it has expired already (nothing
        to revoke)."""
        remaining = (expires_at - datetime.now(UTC)).total_seconds()
        if remaining <= 0:
            return False
        key = self.prefix + require_name("a token id", token_id)
        with unavailable_as_error("token revoke"):
            await self.redis.set(key, "1", ex=max(1, math.ceil(remaining)))
        return True

    async def is_revoked(self, token_id: str) -> bool:
        """Whether the token was revoked; ``RedisUnavailable`` when Redis cannot say."""
        key = self.prefix + require_name("a token id", token_id)
        with unavailable_as_error("token revocation check"):
            return bool(await self.redis.exists(key))
