"""``rate_limit(...)``: the sliding-window limiter as a FastAPI dependency, for a budget of
one route or router (a login endpoint, an expensive export) on top of the global middleware.

Admitted requests get the ``X-RateLimit-*`` headers on their response; refused ones raise
``RateLimited`` (429, code 1029, its ``headers`` with ``Retry-After``) for the platform's
exception handler. With Redis down it admits (``fail_open=True``) or raises
``RedisUnavailable`` (503).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

from fastapi import Request, Response

from ._outage import OutageLog
from .errors import RateLimited, RedisUnavailable
from .middleware import KeyFunc, client_ip_key, limit_headers
from .ratelimit import RateLimitResult, SlidingWindowLimiter

log = logging.getLogger("dbsight_platform.redis_features.dependency")


def rate_limit(
    limiter: SlidingWindowLimiter,
    *,
    name: str,
    limit: int,
    window_s: float,
    key: KeyFunc = client_ip_key,
    fail_open: bool = True,
) -> Callable[[Request, Response], Awaitable[RateLimitResult | None]]:
    """A dependency counting each request under ``{name}:{key(scope)}``; returns the
    decision (None when not limited: no key, or Redis down with ``fail_open``)."""
    if limit < 1 or window_s <= 0:
        raise ValueError("limit must be >= 1 and window_s > 0")
    if not name:
        raise ValueError("a rate limit needs a name (its budget's key prefix)")

    outage = OutageLog(log, f"route rate limit {name!r} not applied")

    async def dependency(request: Request, response: Response) -> RateLimitResult | None:
        ident = key(request.scope)
        if inspect.isawaitable(ident):
            ident = await ident
        if ident is None:
            return None
        try:
            result = await limiter.hit(f"{name}:{ident}", limit=limit, window_s=window_s)
        except RedisUnavailable as exc:
            if not fail_open:
                raise
            outage.down(exc)
            return None
        outage.up()
        headers = {k.decode(): v.decode() for k, v in limit_headers(result)}
        if not result.allowed:
            raise RateLimited(f"too many requests to {name}", headers)
        response.headers.update(headers)
        return result

    dependency.__name__ = f"rate_limit_{name}"
    return dependency
