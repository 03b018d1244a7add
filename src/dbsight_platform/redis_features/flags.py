"""Feature flags kept in one Redis hash (field = flag name, value = JSON
``{"enabled": bool, "percentage": 0..100}``), shared by every instance.

A flag is on for a subject when it is enabled and the subject's bucket falls under its
percentage. The bucket is a stable hash of (flag name, subject): the same user always gets
the same answer, raising the percentage only adds users, and two flags at 10 % do not pick the
same 10 %. Without a subject only a 100 % flag is on.

Failure: ``is_enabled`` never raises for Redis: with Redis down (or a flag's stored value
corrupt) it answers from ``defaults`` (a flag absent from them is off), logging a warning once
per outage. The admin methods (``set``, ``delete``, ``get``, ``all``) raise
``RedisUnavailable``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import _json
from ._calls import require_name, require_prefix, text, unavailable_as_error
from ._outage import OutageLog
from .errors import RedisUnavailable

log = logging.getLogger("dbsight_platform.redis_features.flags")


@dataclass(frozen=True, slots=True)
class Flag:
    """A flag's state: off, on for everyone (100), or on for ``percentage`` % of subjects."""

    enabled: bool
    percentage: float = 100.0

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise TypeError(f"enabled must be a bool, got {self.enabled!r}")
        if not isinstance(self.percentage, (int, float)) or isinstance(self.percentage, bool):
            raise TypeError(f"percentage must be a number, got {self.percentage!r}")
        if not math.isfinite(self.percentage) or not 0 <= self.percentage <= 100:
            raise ValueError(f"percentage must be within 0..100, got {self.percentage}")

    def applies_to(self, name: str, subject: str | None) -> bool:
        if not self.enabled or self.percentage <= 0:
            return False
        if self.percentage >= 100:
            return True
        if subject is None:
            return False
        return bucket(name, subject) < self.percentage


def bucket(name: str, subject: str) -> float:
    """The subject's stable place in [0, 100) for the flag ``name``."""
    digest = hashlib.sha256(f"{name}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


class FeatureFlags:
    """The flags in the hash ``{prefix}{hash_name}``, with ``defaults`` for when Redis cannot
    answer (see the module)."""

    def __init__(
        self,
        redis: Any,
        *,
        prefix: str = "flags:",
        hash_name: str = "features",
        defaults: Mapping[str, bool | Flag] | None = None,
    ) -> None:
        self.redis = redis
        self.key = require_prefix(prefix) + require_name("a flag hash name", hash_name)
        self.defaults: dict[str, Flag] = {
            name: value if isinstance(value, Flag) else Flag(bool(value))
            for name, value in (defaults or {}).items()
        }
        self._outage = OutageLog(log, "feature flags answered from defaults")

    async def set(self, name: str, *, enabled: bool = True, percentage: float = 100.0) -> Flag:
        """Create or change a flag for every instance."""
        flag = Flag(enabled, float(percentage))
        payload = _json.dumps({"enabled": flag.enabled, "percentage": flag.percentage}, "flag")
        with unavailable_as_error("flag set"):
            await self.redis.hset(self.key, require_name("a flag name", name), payload)
        return flag

    async def delete(self, name: str) -> bool:
        """Remove a flag (its default applies again); False when it was not set."""
        with unavailable_as_error("flag delete"):
            return bool(await self.redis.hdel(self.key, require_name("a flag name", name)))

    async def get(self, name: str) -> Flag | None:
        """The flag as stored, None when not set (or stored corrupt)."""
        with unavailable_as_error("flag get"):
            raw = await self.redis.hget(self.key, require_name("a flag name", name))
        return None if raw is None else _parse(name, raw)

    async def all(self) -> dict[str, Flag]:
        """Every stored flag (corrupt ones left out)."""
        with unavailable_as_error("flag list"):
            raw = await self.redis.hgetall(self.key)
        flags = {text(name): _parse(text(name), value) for name, value in raw.items()}
        return {name: flag for name, flag in flags.items() if flag is not None}

    async def is_enabled(self, name: str, subject: str | None = None) -> bool:
        """Whether the flag is on for ``subject`` (a user id, a tenant...); never raises for
        Redis (the default answers, see the module)."""
        try:
            flag = await self.get(name)
        except RedisUnavailable as exc:
            self._outage.down(exc)
            flag = None
        else:
            self._outage.up()
        if flag is None:
            flag = self.defaults.get(name)
        return flag is not None and flag.applies_to(name, subject)


def _parse(name: str, raw: bytes | str) -> Flag | None:
    try:
        data = _json.loads(raw)
        return Flag(data["enabled"], float(data.get("percentage", 100.0)))
    except (ValueError, TypeError, KeyError, AttributeError):
        log.warning("feature flag %r has a corrupt stored value; its default applies", name)
        return None
