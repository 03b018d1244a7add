"""The proxy's result cache: answers to chosen read-only statements, kept in memory for a while.

Caching is opt-in: a ``CacheRule`` names a statement shape (its fingerprint) or a table, with a
time to live. ``ResultCache.ttl_for(info)`` says whether a statement may be cached at all: only
when ``dbsight.sql.analyze`` found it provably read-only, it is a SELECT and a rule matches (the
first one, in order). The relay adds what the text cannot tell: only outside transaction blocks
(inside one, the session may see its own uncommitted writes or a snapshot of its own).

This store is sans-IO: the relay computes a ``key()``, asks ``get()``, and on a miss relays the
statement, collects the server's answer messages (RowDescription, DataRows, CommandComplete:
their bytes exactly as received) and offers them to ``put()``. A hit gives back those bytes as
they were stored, so a cached answer is byte-identical to the server's.

Invalidation. A write through the proxy drops every entry that read one of its tables
(``invalidate_tables``). A read and a write may cross: the read's snapshot predates the write's
commit, but its answer arrives after the invalidation, and storing it would serve the old rows
until the TTL ends. So each read takes a ``generation()`` snapshot when it is sent, and ``put()``
refuses the answer when one of its tables was invalidated since; the relay invalidates a
write's tables when it is sent *and* when its transaction ends (a read whose snapshot was taken
in between still saw the old rows). Table names are compared without their schema here: which
schema an unqualified name means depends on the search_path of the session that ran it, so a
write to ``orders`` may be one to ``shop.orders``; dropping too much costs a miss, dropping too
little serves stale rows. The relay widens both sides from the database's catalog
(``_reach.CatalogReach``): a read is filed under the base tables of the views it reads and the
partitions of the tables, a write also drops what it reaches by cascading foreign keys,
partitions and updatable views, and a write through a trigger, rule or function empties the
cache. Only writes that bypass the proxy are bounded by the TTL alone.

Memory is bounded in bytes (answer + key per entry); the least recently used entries make room
for new ones, and an answer larger than ``max_entry_bytes`` is not stored. Lookups are O(1); an
invalidation costs O(entries of the table). The counters (hits, misses, evictions, invalidations,
stores) are plain ints the metrics read at scrape time. Keys are hashes, so neither statements
nor parameter values are kept in clear beside the answers.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..sql import SqlInfo

DEFAULT_MAX_BYTES = 64 * 2**20
DEFAULT_MAX_ENTRY_BYTES = 2**20
# Tables written are remembered for the generation check; past this many distinct names the
# memory is reset and every read in flight is refused once (see ResultCache._remember_write).
_MAX_WRITTEN_TABLES = 65_536

_pack_length = struct.Struct(">Q").pack
_ABSENT = b"\x00"
_PRESENT = b"\x01"


class CacheRule(BaseModel):
    """Cache the answers of one statement shape or of the statements reading one table.

    ``fingerprint`` is a statement's ``SqlInfo.fingerprint`` (16 hex characters, as ``dbsight
    analyze``, ``dbsight top`` and ``/metrics/summary`` show them). ``table`` is a name as ``dbsight.sql.analyze`` reports it: unquoted
    identifiers in lower case, quoted ones as written; ``orders`` and ``public.orders`` are the
    same table. ``ttl_s`` is how long an answer may be served after it was received.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fingerprint: str | None = None
    table: str | None = None
    ttl_s: float = Field(gt=0, allow_inf_nan=False)

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        fingerprint = value.strip().lower()
        if len(fingerprint) != 16 or any(c not in "0123456789abcdef" for c in fingerprint):
            raise ValueError(
                f"fingerprint must be 16 hex characters (a statement's SqlInfo.fingerprint),"
                f" got {value!r}"
            )
        return fingerprint

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if '"' in value or not all(part and part.strip() == part for part in value.split(".")):
            raise ValueError(
                f"table must be a name like orders or shop.orders, without quotes or blanks,"
                f" got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _one_target(self) -> CacheRule:
        if (self.fingerprint is None) == (self.table is None):
            raise ValueError(
                "a cache rule names exactly one of fingerprint or table"
                f" (got fingerprint={self.fingerprint!r}, table={self.table!r})"
            )
        return self


def _in_public(name: str) -> str:
    """``public.orders`` and ``orders`` as one name, for matching rules."""
    return name.removeprefix("public.")


def _relation(name: str) -> str:
    """The table's name without its schema, for invalidation (see the module docstring)."""
    return name.rpartition(".")[2]


def _field(value: str | None) -> bytes:
    if value is None:
        return _ABSENT
    data = value.encode("utf-8", "surrogatepass")
    return _PRESENT + _pack_length(len(data)) + data


class _Entry:
    __slots__ = ("answer", "expires_at", "relations", "size")

    def __init__(
        self, answer: bytes, expires_at: float, relations: frozenset[str], size: int
    ) -> None:
        self.answer = answer
        self.expires_at = expires_at
        self.relations = relations
        self.size = size


class ResultCache:
    """Answers of cacheable statements by key, bounded in bytes; see the module docstring."""

    def __init__(
        self,
        rules: Sequence[CacheRule],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_entry_bytes: int | None = None,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        if max_entry_bytes is None:  # a small cache stores answers up to its own size
            max_entry_bytes = min(DEFAULT_MAX_ENTRY_BYTES, max_bytes)
        if not 1 <= max_entry_bytes <= max_bytes:
            raise ValueError(
                f"max_entry_bytes must be 1..max_bytes ({max_bytes}), got {max_entry_bytes}"
            )
        for rule in rules:
            if not isinstance(rule, CacheRule):
                raise TypeError(f"rules must be CacheRule objects, got {type(rule).__name__}")
        self.rules = tuple(rules)
        self._rules = tuple(
            (r.fingerprint, None if r.table is None else _in_public(r.table), r.ttl_s)
            for r in self.rules
        )
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()  # least recently used first
        self._by_relation: dict[str, set[bytes]] = {}
        self._size = 0
        # Generations: every invalidation ticks the clock and stamps the relations it wrote;
        # a snapshot of some relations is the newest stamp among them (or the floor).
        self._clock = 0
        self._written: dict[str, int] = {}
        self._floor = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.invalidations = 0
        self.stores = 0

    # ------------------------------------------------------------------ what may be cached

    def ttl_for(self, info: SqlInfo) -> float | None:
        """The time to live of the first rule matching a read-only SELECT; None: don't cache.

        The relay still has to check that the session is outside a transaction block.
        """
        if not info.read_only or info.operation != "select":
            return None
        for fingerprint, table, ttl_s in self._rules:
            if fingerprint is not None:
                if fingerprint == info.fingerprint:
                    return ttl_s
            elif any(_in_public(name) == table for name in info.tables):
                return ttl_s
        return None

    @staticmethod
    def key(
        user: str | None,
        database: str | None,
        search_path: str | None,
        normalized: str,
        params: bytes,
        *,
        settings: Mapping[str, str] | None = None,
    ) -> bytes:
        """The cache key of one statement as one session would run it (a 32-byte hash).

        Each field is length-prefixed (None differs from ""), so no two different inputs
        share an encoding. ``normalized`` must hold every literal of the statement: for a
        simple Query, pass its FULL text (``SqlInfo.normalized`` replaces literals with
        placeholders, and two texts differing only in a literal would share a key) with
        ``params=b""``; for the extended protocol, the Parse's text, and as ``params`` the
        Parse's parameter type section followed by the Bind's body after the statement name
        (parameter formats, values and result formats: all of them change the answer).
        ``settings``: session settings that change the answer's bytes (TimeZone, DateStyle,
        IntervalStyle, client_encoding, extra_float_digits, bytea_output...), when the
        relay knows the client changed them.
        """
        digest = hashlib.blake2b(digest_size=32, person=b"dbsight-rcache")
        digest.update(_field(user))
        digest.update(_field(database))
        digest.update(_field(search_path))
        digest.update(_field(normalized))
        digest.update(_pack_length(len(params)))
        digest.update(params)
        if settings:
            digest.update(_pack_length(len(settings)))
            for name in sorted(settings):
                digest.update(_field(name))
                digest.update(_field(settings[name]))
        return digest.digest()

    # ------------------------------------------------------------------ lookups and stores

    def generation(self, tables: Sequence[str]) -> int:
        """A snapshot of the writes to ``tables``; take it when the read is sent, give it to
        ``put()`` with the answer."""
        generation = self._floor
        written = self._written
        for name in tables:
            generation = max(generation, written.get(_relation(name), 0))
        return generation

    def get(self, key: bytes, now: float) -> bytes | None:
        """The stored answer (a hit), or None (a miss; an expired entry is dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if now >= entry.expires_at:
            self._remove(key, entry)
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.answer

    def put(
        self,
        key: bytes,
        answer: bytes,
        tables: Sequence[str],
        ttl_s: float,
        now: float,
        generation: int,
    ) -> bool:
        """Store ``answer`` for ``ttl_s`` from ``now``; False when it was not stored.

        Refused when one of ``tables`` was written since ``generation`` (the answer may
        predate that write) or when it is larger than ``max_entry_bytes``. Least recently
        used entries are evicted to stay within ``max_bytes``.
        """
        if not (ttl_s > 0 and math.isfinite(ttl_s)):
            raise ValueError(f"ttl_s must be a finite number > 0, got {ttl_s}")
        if self.generation(tables) != generation:
            return False
        answer = bytes(answer)  # a bytearray the caller reuses must not change the entry
        size = len(answer) + len(key)
        if size > self.max_entry_bytes:
            return False
        previous = self._entries.get(key)
        if previous is not None:
            self._remove(key, previous)
        entries = self._entries
        while self._size + size > self.max_bytes:
            oldest, entry = next(iter(entries.items()))
            self._remove(oldest, entry)
            self.evictions += 1
        relations = frozenset(_relation(name) for name in tables)
        entries[key] = _Entry(answer, now + ttl_s, relations, size)
        self._size += size
        for relation in relations:
            self._by_relation.setdefault(relation, set()).add(key)
        self.stores += 1
        return True

    # ------------------------------------------------------------------ invalidation

    def invalidate_tables(self, tables: Sequence[str]) -> int:
        """``tables`` were written: drop every entry that read one of them (compared without
        schema) and refuse answers to reads sent before now; returns the entries dropped."""
        relations = {_relation(name) for name in tables}
        if not relations:
            return 0
        self._clock += 1
        dropped = 0
        for relation in relations:
            self._written[relation] = self._clock
            for key in tuple(self._by_relation.get(relation, ())):
                self._remove(key, self._entries[key])
                dropped += 1
        if len(self._written) > _MAX_WRITTEN_TABLES:
            self._forget_writes()
        self.invalidations += dropped
        return dropped

    def clear(self) -> None:
        """Drop every entry, and refuse the answers of reads in flight (the data may have been
        changed behind the proxy's back: that is why one clears a cache)."""
        self._entries.clear()
        self._by_relation.clear()
        self._size = 0
        self._clock += 1
        self._forget_writes()

    def _forget_writes(self) -> None:
        """Bound the memory of written tables: forget them all, and let no snapshot taken
        before now pass instead (a miss, never a stale answer)."""
        self._written.clear()
        self._floor = self._clock

    def _remove(self, key: bytes, entry: _Entry) -> None:
        del self._entries[key]
        self._size -= entry.size
        by_relation = self._by_relation
        for relation in entry.relations:
            keys = by_relation[relation]
            keys.discard(key)
            if not keys:
                del by_relation[relation]

    # ------------------------------------------------------------------ what metrics read

    @property
    def size_bytes(self) -> int:
        """Bytes held: answers plus keys."""
        return self._size

    @property
    def entries(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, Any]:
        return {
            "entries": len(self._entries),
            "size_bytes": self._size,
            "max_bytes": self.max_bytes,
            "max_entry_bytes": self.max_entry_bytes,
            "rules": len(self.rules),
            "hits": self.hits,
            "misses": self.misses,
            "stores": self.stores,
            "evictions": self.evictions,
            "invalidations": self.invalidations,
        }
