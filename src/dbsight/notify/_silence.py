"""Silences: matchers and an end time; a silenced alert is not notified (it still resolves
quietly). In memory, per process, like the rest of the notifier's state.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Operator = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


@dataclass(frozen=True, slots=True)
class Matcher:
    """``name op value`` as in Alertmanager (``=``, ``!=``, ``=~``, ``!~``; regexes anchored)."""

    name: str
    value: str
    op: Operator = "="

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"matcher {self.name}{self.op}{self.value!r}: {exc}") from None

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``severity="critical"``, ``service!=api``, ``alertname=~"Dbsight.*"``."""
        match = _MATCHER.match(text)
        if match is None:
            raise ValueError(f"not a matcher (name=value, !=, =~ or !~): {text!r}")
        name, op, value = match.groups()
        return cls(name, value, op)  # type: ignore[arg-type]

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = re.fullmatch(self.value, value) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


@dataclass(frozen=True, slots=True)
class Silence:
    matchers: tuple[Matcher, ...]
    ends_at: float
    comment: str = ""
    starts_at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        return self.active(now) and all(matcher.matches(labels) for matcher in self.matchers)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "matchers": [str(matcher) for matcher in self.matchers],
            "startsAt": self.starts_at,
            "endsAt": self.ends_at,
            "comment": self.comment,
        }


class Silences:
    """The silence list: ``add()``, ``expire()``, ``list()``, ``mutes(labels)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._silences: dict[str, Silence] = {}

    def add(
        self, matchers: list[Matcher] | list[str], duration_s: float, comment: str = ""
    ) -> Silence:
        """Silence what every matcher matches for ``duration_s`` from now."""
        parsed = tuple(m if isinstance(m, Matcher) else Matcher.parse(m) for m in matchers)
        if not parsed:
            raise ValueError("a silence needs at least one matcher")
        if not duration_s > 0:
            raise ValueError(f"a silence must last more than 0 s (got {duration_s})")
        now = time.time()
        silence = Silence(parsed, now + duration_s, comment, starts_at=now)
        with self._lock:
            self._silences[silence.id] = silence
        return silence

    def expire(self, silence_id: str) -> bool:
        """End a silence now; False when there is no such one."""
        with self._lock:
            return self._silences.pop(silence_id, None) is not None

    def list(self) -> list[Silence]:
        """The silences still in force (the ended ones are forgotten)."""
        now = time.time()
        with self._lock:
            for ended in [s.id for s in self._silences.values() if s.ends_at <= now]:
                del self._silences[ended]
            return sorted(self._silences.values(), key=lambda s: s.ends_at)

    def mutes(self, labels: Mapping[str, str], now: float | None = None) -> bool:
        at = time.time() if now is None else now
        with self._lock:
            silences = tuple(self._silences.values())
        return any(silence.mutes(labels, at) for silence in silences)


# The process's silence list: like the health checks, it outlives ``configure()``.
silences = Silences()
