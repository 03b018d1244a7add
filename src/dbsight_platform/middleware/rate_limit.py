"""Wiring of the Redis sliding-window rate limiter (``dbsight_platform.redis_features``):
``PLATFORM_RATE_LIMIT_PER_MINUTE`` requests per client address and minute, on the shared
Redis client, keys under ``{redis_key_prefix}ratelimit:``. A refused request gets 429 with
``Retry-After``; with Redis down the limiter fails open (requests pass, a warning is logged)
so that an outage of the cache does not become an outage of the API.

The limiter is its own module of the platform; until it is installed alongside, the
platform runs without a limit and says so once at start-up.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from ..core.config import Settings

log = logging.getLogger("dbsight_platform.rate_limit")
LIMITER_MODULE = "dbsight_platform.redis_features"


def add_rate_limit(app: Any, settings: Settings, redis: Any) -> bool:
    """Add the rate-limit middleware to ``app``; False when it is off or not installed."""
    if settings.rate_limit_per_minute <= 0:
        return False
    if importlib.util.find_spec(LIMITER_MODULE) is None:
        log.warning("rate limiting off: %s is not installed", LIMITER_MODULE)
        return False
    from ..redis_features.middleware import RateLimitMiddleware  # type: ignore[import-not-found]
    from ..redis_features.ratelimit import SlidingWindowLimiter  # type: ignore[import-not-found]

    app.add_middleware(
        RateLimitMiddleware,
        limiter=SlidingWindowLimiter(redis, prefix=f"{settings.redis_key_prefix}ratelimit:"),
        limit=settings.rate_limit_per_minute,
        window_s=60.0,
        fail_open=True,
    )
    return True
