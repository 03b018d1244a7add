"""Silences: matchers and a time span; a silenced alert is not notified (it still resolves
quietly). In memory, per process, like the rest of the notifier's state — unless a shared
file is attached (`Silences.share`, the multiprocess directory's ``silences.json``): then
every worker process reads and writes the same list.

The HTTP shape (`Silence.to_dict`, `Matcher.from_api`) is Alertmanager's API v2 one:
matchers as ``{"name", "value", "isRegex", "isEqual"}``, times in RFC 3339.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ._alert import rfc3339

logger = logging.getLogger("dbsight.notify")

Operator = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
MAX_DURATION_S = 365 * 86400.0
MAX_TEXT = 1000  # characters of a comment or createdBy


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

    @classmethod
    def from_api(cls, document: object) -> Matcher:
        """Alertmanager's ``{"name", "value", "isRegex", "isEqual"}`` (the two flags default
        to false and true); a ValueError says what is wrong."""
        if not isinstance(document, dict):
            raise ValueError(f"a matcher must be an object with name and value (got {document!r})")
        unknown = sorted(set(document) - {"name", "value", "isRegex", "isEqual"})
        if unknown:
            raise ValueError(f"a matcher has unknown field(s) {', '.join(unknown)}")
        name, value = document.get("name"), document.get("value")
        is_regex, is_equal = document.get("isRegex", False), document.get("isEqual", True)
        if not isinstance(name, str) or not _LABEL_NAME.match(name):
            raise ValueError(f"matcher name must be a label name (got {name!r})")
        if not isinstance(value, str):
            raise ValueError(f"matcher {name}: value must be a string (got {value!r})")
        if not isinstance(is_regex, bool) or not isinstance(is_equal, bool):
            raise ValueError(f"matcher {name}: isRegex and isEqual must be true or false")
        op: Operator = ("=~" if is_equal else "!~") if is_regex else ("=" if is_equal else "!=")
        return cls(name, value, op)

    def to_api(self) -> dict[str, object]:
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.op in ("=~", "!~"),
            "isEqual": self.op in ("=", "=~"),
        }

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
    created_by: str = ""

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def state(self, now: float) -> str:
        """Alertmanager's: pending (not started yet), active or expired."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        return self.active(now) and all(matcher.matches(labels) for matcher in self.matchers)

    def to_dict(self, now: float | None = None) -> dict[str, object]:
        """Alertmanager's API shape (a GettableSilence)."""
        at = time.time() if now is None else now
        return {
            "id": self.id,
            "matchers": [matcher.to_api() for matcher in self.matchers],
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
            "createdBy": self.created_by,
            "comment": self.comment,
            "status": {"state": self.state(at)},
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Silence:
        """Back from `to_dict` (the shared file)."""
        return cls(
            tuple(Matcher.from_api(m) for m in document["matchers"]),
            parse_time(document["endsAt"]),
            str(document.get("comment", "")),
            starts_at=parse_time(document["startsAt"]),
            id=str(document["id"]),
            created_by=str(document.get("createdBy", "")),
        )


def parse_duration(value: object) -> float:
    """Seconds from ``"2h"``, ``"1h30m"``, ``"90s"``, ``"1d"`` (Prometheus' units ms, s, m,
    h, d, w) or a number of seconds; a ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"duration must be like 2h, 30m or 1h30m (got {value!r})")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if "".join(number + unit for number, unit in parts) != text:
            raise ValueError(f"duration must be like 2h, 30m or 1h30m (got {value!r})")
        seconds = sum(float(number) * _UNIT_S[unit] for number, unit in parts)
    else:
        raise ValueError(f"duration must be like 2h, 30m or 1h30m (got {value!r})")
    if not 0 < seconds <= MAX_DURATION_S:
        raise ValueError(f"duration must be more than 0 and at most 365d (got {value!r})")
    return seconds


def parse_time(value: object) -> float:
    """Unix seconds from an RFC 3339 time (``2026-12-06T03:00:00Z``, an offset, or none
    meaning UTC); a ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"must be an RFC 3339 time such as 2026-12-06T03:00:00Z (got {value!r})")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"must be an RFC 3339 time such as 2026-12-06T03:00:00Z (got {value!r})"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def new_silence(
    matchers: list[Matcher] | list[str],
    *,
    ends_at: float,
    starts_at: float | None = None,
    comment: str = "",
    created_by: str = "",
) -> Silence:
    """A validated silence; a ValueError names the first problem."""
    parsed = tuple(m if isinstance(m, Matcher) else Matcher.parse(m) for m in matchers)
    if not parsed:
        raise ValueError("a silence needs at least one matcher")
    if all(matcher.matches({}) for matcher in parsed):
        # as Alertmanager: a silence that would also mute alerts without these labels
        raise ValueError("at least one matcher must not match the empty string (it would "
                         "silence every alert)")  # fmt: skip
    now = time.time()
    start = now if starts_at is None else max(starts_at, now)
    if not ends_at > start:
        raise ValueError("a silence must end after it starts, in the future")
    if ends_at - start > MAX_DURATION_S:
        raise ValueError("a silence lasts at most 365 days")
    for name, text in (("comment", comment), ("createdBy", created_by)):
        if len(text) > MAX_TEXT:
            raise ValueError(f"{name} is longer than {MAX_TEXT} characters")
    return Silence(parsed, ends_at, comment, starts_at=start, created_by=created_by)


class Silences:
    """The silence list: ``add()``, ``expire()``, ``list()``, ``mutes(labels)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._silences: dict[str, Silence] = {}
        self._path: Path | None = None
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the file last read

    # -- sharing between processes --------------------------------------------------------
    def share(self, directory: Path | None) -> None:
        """Keep the list in ``directory``/silences.json, shared by the processes that share
        the directory (None: back to this process's memory, keeping what is in force). A
        directory that cannot be used is logged and the list stays in memory: never raises."""
        with self._lock:
            path = Path(directory) / "silences.json" if directory is not None else None
            if path == self._path:
                return
            if self._path is not None:
                self._reload()
            self._path, self._seen = path, None
            if path is not None:
                mine = dict(self._silences)
                try:
                    with self._file_lock():
                        self._reload()
                        self._silences.update(mine)
                        self._write()
                except OSError as exc:
                    logger.warning("dbsight: silences kept in memory, %s is unusable: %s",
                                   path.parent, exc)  # fmt: skip
                    self._path, self._silences = None, {**self._silences, **mine}

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        assert self._path is not None
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _reload(self) -> None:
        """Read the shared file when it changed since the last read (lock held)."""
        if self._path is None:
            return
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            self._silences, self._seen = {}, None
            return
        except OSError:
            return  # unreadable for now: keep what was read last
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen == self._seen:
            return
        try:
            documents = json.loads(self._path.read_text(encoding="utf-8"))
            silences = [Silence.from_dict(document) for document in documents]
        except (OSError, ValueError, KeyError, TypeError):
            return  # half-written by a crashed writer: keep the last good list
        self._silences = {silence.id: silence for silence in silences}
        self._seen = seen

    def _write(self) -> None:
        assert self._path is not None
        now = time.time()
        documents = [s.to_dict(now) for s in self._silences.values() if s.ends_at > now]
        temporary = self._path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(documents), encoding="utf-8")
        os.replace(temporary, self._path)
        stat = self._path.stat()
        self._seen = (stat.st_mtime_ns, stat.st_size)

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Lock held, the shared file (if any) read before and written after."""
        with self._lock:
            if self._path is None:
                yield
                return
            with self._file_lock():
                self._seen = None
                self._reload()
                yield
                self._write()

    # -- the list ------------------------------------------------------------------------
    def add(
        self,
        matchers: list[Matcher] | list[str],
        duration_s: float,
        comment: str = "",
        *,
        created_by: str = "",
    ) -> Silence:
        """Silence what every matcher matches for ``duration_s`` from now."""
        if not duration_s > 0:
            raise ValueError(f"a silence must last more than 0 s (got {duration_s})")
        silence = new_silence(
            matchers, ends_at=time.time() + duration_s, comment=comment, created_by=created_by
        )
        return self.put(silence)

    def put(self, silence: Silence) -> Silence:
        """Add a silence made by `new_silence`."""
        with self._changing():
            self._silences[silence.id] = silence
        return silence

    def expire(self, silence_id: str) -> bool:
        """End a silence now; False when there is no such one."""
        with self._changing():
            return self._silences.pop(silence_id, None) is not None

    def get(self, silence_id: str) -> Silence | None:
        with self._lock:
            self._reload()
            silence = self._silences.get(silence_id)
        return silence if silence is not None and silence.ends_at > time.time() else None

    def list(self) -> list[Silence]:
        """The silences in force or pending (the ended ones are forgotten)."""
        now = time.time()
        with self._lock:
            self._reload()
            for ended in [s.id for s in self._silences.values() if s.ends_at <= now]:
                del self._silences[ended]
            return sorted(self._silences.values(), key=lambda s: s.ends_at)

    def mutes(self, labels: Mapping[str, str], now: float | None = None) -> bool:
        at = time.time() if now is None else now
        with self._lock:
            self._reload()
            silences = tuple(self._silences.values())
        return any(silence.mutes(labels, at) for silence in silences)


# The process's silence list: like the health checks, it outlives ``configure()``.
silences = Silences()
