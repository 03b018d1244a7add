"""Turning redis-py's failures of the server or the connection into ``RedisUnavailable``.

Only failures that say "Redis cannot serve this now" are translated; a ``ResponseError`` for a
wrong command or type is a bug and propagates unchanged. The message names the operation and
the failure class, never a key or a value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from redis import exceptions as redis_errors

from .errors import RedisUnavailable

UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,  # includes BusyLoadingError, AuthenticationError
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.ClusterDownError,
    asyncio.TimeoutError,
    OSError,
)


@contextmanager
def unavailable_as_error(operation: str) -> Iterator[None]:
    """Re-raise a Redis outage inside the block as ``RedisUnavailable`` naming ``operation``."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise RedisUnavailable(
            f"redis unavailable during {operation}: {type(exc).__name__}: {exc}"
        ) from exc


def text(value: bytes | str) -> str:
    """A reply as ``str`` whether the client decodes responses or not (bytes that are not
    UTF-8 cannot equal what this package wrote: they are replaced, not raised on)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def require_prefix(prefix: str) -> str:
    """Key prefixes are mandatory: every feature's keys are findable and deletable by it."""
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("a key prefix must be a non-empty string")
    return prefix


def require_name(kind: str, name: str) -> str:
    """A key part given by the caller (lock name, cache key, tag, limiter key)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{kind} must be a non-empty string, got {name!r}")
    return name
