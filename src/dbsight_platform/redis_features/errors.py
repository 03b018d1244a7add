"""The errors of the Redis features, each with the HTTP status and business code the platform
answers it with (seed 004's code ranges), so one exception handler maps them all:

    except RedisFeatureError as exc -> status exc.status_code, body code exc.code

``RedisUnavailable`` is the one error every feature raises when Redis cannot be reached
(connection refused or lost, timeout, a read-only replica, out of memory); features that fail
open or to defaults by design say so and do not raise it.
"""

from __future__ import annotations


class RedisFeatureError(Exception):
    """Base of the Redis features' errors: ``status_code`` (HTTP) and ``code`` (business)."""

    status_code: int = 500
    code: int = 9000

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RedisUnavailable(RedisFeatureError):
    """Redis could not serve a command (503, business code 5001)."""

    status_code = 503
    code = 5001


class RateLimited(RedisFeatureError):
    """Over a route's rate limit (429, 1029); ``headers`` carry ``Retry-After`` and the
    ``X-RateLimit-*`` values for the response."""

    status_code = 429
    code = 1029

    def __init__(self, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.headers = headers


class LockNotAcquired(RedisFeatureError):
    """A distributed lock is held by someone else and was not freed in time (409, 4003)."""

    status_code = 409
    code = 4003


class LockNotOwned(RedisFeatureError):
    """Releasing or extending a lock this holder no longer owns: it expired (and may have been
    taken by another holder) or was never acquired (409, 4003)."""

    status_code = 409
    code = 4003
