"""Redis-backed building blocks of the platform, each taking the one ``redis.asyncio.Redis``
client (plain or instrumented by dbsight) and a key prefix:

- ``SessionStore``: server-side sessions with a sliding TTL;
- ``RedisCache``: cache-aside with key, tag and prefix invalidation and stampede protection;
- ``SlidingWindowLimiter``, ``RateLimitMiddleware`` (every request) and ``rate_limit()`` (a
  route's dependency): sliding-window rate limiting, 429 with ``Retry-After`` and
  ``X-RateLimit-*`` headers;
- ``RedisLock``: a distributed lock (token-checked release and extend);
- ``FeatureFlags``: on/off and percentage rollout flags with defaults.

Redis outages raise ``RedisUnavailable`` (503, business code 5001) except where a feature
fails open or to defaults by design: cache reads, the middleware (configurable), flag checks.
See docs/platform-security.md.
"""

from .cache import Hit, RedisCache
from .dependency import rate_limit
from .errors import (
    LockNotAcquired,
    LockNotOwned,
    RateLimited,
    RedisFeatureError,
    RedisUnavailable,
)
from .flags import FeatureFlags, Flag, bucket
from .lock import RedisLock
from .middleware import RateLimitMiddleware, client_ip_key, principal_or_ip_key
from .ratelimit import RateLimitResult, SlidingWindowLimiter
from .sessions import Session, SessionStore

__all__ = [
    "FeatureFlags",
    "Flag",
    "Hit",
    "LockNotAcquired",
    "LockNotOwned",
    "RateLimitMiddleware",
    "RateLimitResult",
    "RateLimited",
    "RedisCache",
    "RedisFeatureError",
    "RedisLock",
    "RedisUnavailable",
    "Session",
    "SessionStore",
    "SlidingWindowLimiter",
    "bucket",
    "client_ip_key",
    "principal_or_ip_key",
    "rate_limit",
]
