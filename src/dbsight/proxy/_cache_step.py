"""`CacheStep`: one pooled client's side of the result cache — the lookup of a unit before it
runs, the fill of a miss from its answer, and the invalidation of what its writes change.

A unit is looked up between transactions: one cacheable statement (`_units.cacheable_unit`)
whose rule gives a TTL, keyed by user, database, search_path, the statement's bytes and the
settings that shape the answer's bytes. A hit is answered by the session; a miss on the
primary is marked to fill, and the unit's answer (collected as it is relayed) is stored when
it ends well. A statement that may write invalidates the tables it reaches (views,
partitions, cascades: `_reach.CatalogReach`) at once and again when its transaction ends;
one that may write anything clears the cache. No sockets here: the session relays.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..sql import analyze
from . import protocol as p
from ._reach import CatalogReach, ReachBook
from ._result_cache import ResultCache
from ._units import QUERY, cacheable_unit, cstring
from ._writes import writes_anywhere

_monotonic = time.monotonic
_READY_IDLE = p.ready_for_query(p.TransactionStatus.IDLE)


@dataclass(frozen=True, slots=True)
class Hit:
    """The unit at ``buf[start:end]`` answered from the cache: ``answer`` (without its
    ReadyForQuery) for statement ``sql``."""

    sql: str
    answer: bytes
    end: int


@dataclass(frozen=True, slots=True)
class Wait:
    """Judge the unit again once ``work`` is done (the catalog of its database is read)."""

    work: Coroutine[Any, Any, None]


class CacheStep:
    """The cache as one client uses it (see the module docstring)."""

    __slots__ = ("cache", "book", "database", "_reach", "fill", "_answer", "_written",
                 "_written_all")  # fmt: skip

    def __init__(
        self, cache: ResultCache, book: ReachBook, database: str,
        reach: Callable[[], CatalogReach | None],
    ) -> None:
        self.cache = cache
        self.book = book
        self.database = database
        self._reach = reach
        # a unit whose answer goes to the cache: (key, tables, ttl, generation), its bytes
        self.fill: tuple[bytes, tuple[str, ...], float, int] | None = None
        self._answer: list[bytes] = []
        self._written: set[str] = set()  # tables written in the transaction under way
        self._written_all = False  # ... or a write that may have changed any table

    # -- lookup and fill -------------------------------------------------------------------
    def lookup(
        self, buf: bytes, start: int, *, user: str | None, search_path: str | None,
        settings: Any, statement_text: Callable[[str], str | None],
    ) -> Hit | Wait | None:
        """The unit at ``buf[start]``: answered from the cache (`Hit`), to be judged again
        (`Wait`), or None to run it — a cacheable miss then fills (``fill``)."""
        self.fill = None
        unit = cacheable_unit(buf, start, statement_text)
        if unit is None:
            return None
        sql, end = unit
        cache = self.cache
        info = analyze(sql)
        ttl = cache.ttl_for(info)
        if ttl is None:
            return None
        key = cache.key(  # the settings that shape the answer's bytes (TimeZone, DateStyle...)
            user, self.database, search_path, sql, bytes(buf[start:end]), settings=settings
        )
        reach = self._reach()
        if reach is None and self.book.loading(self.database):
            return Wait(self.book.loaded(self.database))
        answer = cache.get(key, _monotonic())
        if answer is None:
            if reach is not None:  # filed under every table it reads (views, partitions)
                tables = tuple(reach.reads(info.tables))
                self.fill = (key, tables, ttl, cache.generation(tables))
                self._answer = []
            return None
        return Hit(sql, answer, end)

    def collect(self, out: bytes) -> None:
        """Bytes of the filling unit's answer, as relayed to the client."""
        self._answer.append(out)

    def store(self, ok: bool) -> None:
        """The filling unit is answered: store it (without its ReadyForQuery) unless it
        failed."""
        assert self.fill is not None
        (key, tables, ttl, generation), self.fill = self.fill, None
        answer, self._answer = b"".join(self._answer), []
        if ok and answer.endswith(_READY_IDLE):
            self.cache.put(key, answer[:-6], tables, ttl, _monotonic(), generation)

    # -- invalidation ----------------------------------------------------------------------
    def invalidate(self, t: int, buf: bytes, start: int, end: int, portals: dict[str, Any]) -> None:
        """A Query or Execute on its way: if it may write, what the cache holds of its
        tables goes (now, and again when its transaction ends)."""
        if t == QUERY:
            sql = buf[start + 5 : end - 1].decode("utf-8", "replace")
        else:
            portal, _ = cstring(buf, start + 5, end)
            sql = portals.get(portal) or ""
        info = analyze(sql)
        if info.read_only:
            return
        anywhere = writes_anywhere(info)
        if info.tables and not anywhere:
            reach = self._reach()
            written = reach.writes(info.tables) if reach is not None else None
            if written is not None:
                self.cache.invalidate_tables(tuple(written))
                self._written.update(written)
                return
        elif not anywhere and info.operation != "ddl":
            return  # BEGIN, SET, DISCARD ALL...: no rows change (DDL: DROP SCHEMA... may)
        self.cache.clear()  # a function, trigger or command that may write any table
        self._written_all = True

    def transaction_ended(self) -> None:
        """Invalidate again what the transaction wrote: a read between the write and its
        commit may have filled the cache with the old rows."""
        if self._written_all:
            self.cache.clear()
        elif self._written:
            self.cache.invalidate_tables(tuple(self._written))
        self._written.clear()
        self._written_all = False
