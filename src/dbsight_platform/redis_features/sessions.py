"""Server-side sessions: a JSON object per session id, kept in Redis with a TTL.

With ``sliding=True`` (the default) every ``get`` and ``save`` restarts the TTL (``GETEX``,
Redis >= 6.2), so a session lives ``ttl_s`` after its last use; with ``sliding=False`` it
lives ``ttl_s`` after creation. Ids are 256-bit random URL-safe strings; an id that is not
one (a tampered cookie) is simply not found. Redis outages raise ``RedisUnavailable``: a
session cannot be trusted without its store, so callers fail closed (503).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _json
from ._calls import require_prefix, unavailable_as_error

log = logging.getLogger("dbsight_platform.redis_features.sessions")

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,128}")


@dataclass(slots=True)
class Session:
    """A session: its id (the cookie value) and its data (a JSON object)."""

    id: str
    data: dict[str, Any] = field(default_factory=dict)


class SessionStore:
    """Sessions under ``{prefix}{id}`` living ``ttl_s`` seconds (sliding, see the module)."""

    def __init__(
        self, redis: Any, *, ttl_s: int, prefix: str = "session:", sliding: bool = True
    ) -> None:
        if int(ttl_s) < 1:
            raise ValueError(f"ttl_s must be at least 1 second, got {ttl_s}")
        self.redis = redis
        self.ttl_s = int(ttl_s)
        self.prefix = require_prefix(prefix)
        self.sliding = sliding

    def key(self, session_id: str) -> str:
        return self.prefix + session_id

    @staticmethod
    def valid_id(session_id: object) -> bool:
        return isinstance(session_id, str) and _SESSION_ID.fullmatch(session_id) is not None

    async def create(self, data: Mapping[str, Any] | None = None) -> Session:
        """A new session holding ``data`` (a JSON object)."""
        payload = _encode(data)
        with unavailable_as_error("session create"):
            while True:  # a collision of 256-bit ids does not happen; NX makes sure
                session_id = secrets.token_urlsafe(32)
                if await self.redis.set(self.key(session_id), payload, ex=self.ttl_s, nx=True):
                    return Session(session_id, dict(data or {}))

    async def get(self, session_id: str) -> Session | None:
        """The session, or None when unknown, expired or not a valid id. Sliding sessions
        are renewed by the read."""
        if not self.valid_id(session_id):
            return None
        key = self.key(session_id)
        with unavailable_as_error("session get"):
            if self.sliding:
                raw = await self.redis.getex(key, ex=self.ttl_s)
            else:
                raw = await self.redis.get(key)
        if raw is None:
            return None
        try:
            data = _json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            # not written by this store: drop it rather than hand a stranger's value on
            log.warning("session under %r holds no JSON object; deleted", self.prefix)
            await self.delete(session_id)
            return None
        return Session(session_id, data)

    async def save(self, session: Session) -> bool:
        """Store the session's data; False when it expired or was deleted meanwhile (a
        session is never resurrected by a save)."""
        if not self.valid_id(session.id):
            return False
        payload = _encode(session.data)
        key = self.key(session.id)
        with unavailable_as_error("session save"):
            if self.sliding:
                done = await self.redis.set(key, payload, ex=self.ttl_s, xx=True)
            else:
                done = await self.redis.set(key, payload, keepttl=True, xx=True)
        return bool(done)

    async def touch(self, session_id: str) -> bool:
        """Restart the session's TTL; False when it is gone."""
        if not self.valid_id(session_id):
            return False
        with unavailable_as_error("session touch"):
            return bool(await self.redis.expire(self.key(session_id), self.ttl_s))

    async def delete(self, session_id: str) -> bool:
        """End the session (logout); False when it was already gone."""
        if not self.valid_id(session_id):
            return False
        with unavailable_as_error("session delete"):
            return bool(await self.redis.delete(self.key(session_id)))

    async def ttl(self, session_id: str) -> int | None:
        """Seconds the session has left, None when it is gone."""
        if not self.valid_id(session_id):
            return None
        with unavailable_as_error("session ttl"):
            left = int(await self.redis.ttl(self.key(session_id)))
        return left if left >= 0 else None


def _encode(data: Mapping[str, Any] | None) -> str:
    if data is None:
        return "{}"
    if not isinstance(data, Mapping):
        raise TypeError(f"session data must be a mapping, got {type(data).__name__}")
    return _json.dumps(dict(data), "session data")
