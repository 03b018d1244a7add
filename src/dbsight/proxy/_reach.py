"""What a write to a table may change besides its own rows, and which tables a read sees, from
one database's catalog: for the result cache, so that no cached answer outlives a write that
reached its rows another way.

A statement's text names the tables it writes; the server may change more:

- a view reads its base tables (``pg_rewrite`` and ``pg_depend``): a cached read of a view is
  filed under them too, and an INSERT into an updatable view writes them;
- a partitioned (or inherited) table reads its partitions, and a write to one is a write to
  its ancestors' rows (``pg_inherits``), both ways;
- a foreign key with ON DELETE / ON UPDATE CASCADE, SET NULL or SET DEFAULT changes the
  referencing table when the referenced one is written;
- a trigger (any but the ones PostgreSQL makes for foreign keys) or a rule may do anything:
  a write to its table empties the whole cache — except a BEFORE ROW trigger in PL/pgSQL that
  only sets columns of NEW to read-only expressions and returns NEW (the ``updated_at``
  trigger): it changes the row being written, nothing else.

``CatalogReach`` is sans-IO: built from the rows of ``QUERY``, it answers ``reads(tables)``
and ``writes(tables)`` from memory. Names are compared without their schema, as the cache does
(an unqualified name may mean any schema, depending on the session's search_path). Who loads
it, when, and what is done while it is not loaded (empty the cache on every write, cache
nothing) is the relay's business (`ServerPools.reach`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Sequence
from typing import Final

from ..sql import analyze
from ._backend import BackendConnection
from ._backend_errors import BackendError
from ._pool import BackendPool

logger = logging.getLogger("dbsight.proxy")
_monotonic = time.monotonic

_SYSTEM = "('pg_catalog', 'information_schema', 'pg_toast')"

QUERY: Final = f"""SELECT 'v', v.relname::text, b.relname::text
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind = 'v'
JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace AND n.nspname NOT IN {_SYSTEM}
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
  AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND d.refobjid <> v.oid
JOIN pg_catalog.pg_class b ON b.oid = d.refobjid
WHERE r.rulename = '_RETURN'
UNION
SELECT 'i', c.relname::text, p.relname::text
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
UNION
SELECT 'f', r.relname::text, c.relname::text
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_class r ON r.oid = k.confrelid
WHERE k.contype = 'f' AND (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd'))
UNION
SELECT CASE WHEN row_local THEN 'r' ELSE 't' END, relname, CASE WHEN row_local THEN body END
FROM (
  SELECT c.relname::text AS relname, p.prosrc AS body,
    t.tgtype::integer & 3 = 3 AND l.lanname = 'plpgsql' AS row_local  -- BEFORE, ROW
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
  JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
  WHERE NOT t.tgisinternal
) triggers
UNION
SELECT 't', c.relname::text, NULL
FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
WHERE r.ev_type <> '1'"""

Edges = dict[str, set[str]]


# A PL/pgSQL body that sets columns of NEW and returns it: `NEW.col := expression;` ...
_ASSIGNMENT = re.compile(r"\s*NEW\s*\.\s*\w+\s*:?=\s*([^;]+?)\s*;", re.IGNORECASE)
_BODY = re.compile(r"^\s*BEGIN\b(.*?)\bRETURN\s+NEW\s*;\s*END\s*;?\s*$", re.IGNORECASE | re.DOTALL)


def row_local(body: str | None) -> bool:
    """Whether a BEFORE ROW trigger's PL/pgSQL body only sets columns of NEW to read-only
    expressions (``now()``, ``OLD.version + 1``...) and returns NEW: it writes no other row."""
    if body is None:
        return False
    match = _BODY.match(re.sub(r"--[^\n]*", "", body))
    if match is None:
        return False
    statements = match.group(1)
    at = 0
    while at < len(statements):
        if not statements[at:].strip():
            return True
        found = _ASSIGNMENT.match(statements, at)
        if found is None or not analyze(f"SELECT {found.group(1)}").read_only:
            return False
        at = found.end()
    return True


def relation(name: str) -> str:
    """A table name as the cache compares it: without its schema."""
    return name.rpartition(".")[2]


class CatalogReach:
    """One database's dependencies between relations (module docstring)."""

    def __init__(self, rows: Iterable[Sequence[str | None]], loaded_at: float) -> None:
        self.loaded_at = loaded_at
        self._reads: Edges = {}  # a relation -> what reading it reads
        self._writes: Edges = {}  # a relation -> what writing it writes
        self._opaque: set[str] = set()  # triggers or rules: a write may change anything
        for kind, a, b in rows:
            if a is None:
                continue
            if kind == "t" or (kind == "r" and not row_local(b)):
                self._opaque.add(a)
            elif b is None or kind == "r":
                continue
            elif kind == "v":  # view a reads b; writing a (updatable view) writes b
                self._reads.setdefault(a, set()).add(b)
                self._writes.setdefault(a, set()).add(b)
            elif kind == "i":  # child a of parent b: reading b reads a; writing either, both
                self._reads.setdefault(b, set()).add(a)
                self._writes.setdefault(a, set()).add(b)
                self._writes.setdefault(b, set()).add(a)
            elif kind == "f":  # a write to a may cascade to b
                self._writes.setdefault(a, set()).add(b)
        self._read_memo: dict[str, frozenset[str] | None] = {}
        self._write_memo: dict[str, frozenset[str] | None] = {}

    def reads(self, tables: Sequence[str]) -> frozenset[str]:
        """Every relation whose rows a read of ``tables`` may return (themselves included)."""
        seen: set[str] = set()
        for name in tables:
            seen |= self._closure(relation(name), self._reads, self._read_memo) or set()
        return frozenset(seen)

    def writes(self, tables: Sequence[str]) -> frozenset[str] | None:
        """Every relation a write to ``tables`` may change (themselves included); None when
        that may be any (a trigger or rule on one of them, or on what they cascade to)."""
        seen: set[str] = set()
        for name in tables:
            reached = self._closure(relation(name), self._writes, self._write_memo)
            if reached is None:
                return None
            seen |= reached
        return frozenset(seen)

    def _closure(
        self, start: str, edges: Edges, memo: dict[str, frozenset[str] | None]
    ) -> frozenset[str] | None:
        if start in memo:
            return memo[start]
        opaque = self._opaque if edges is self._writes else None
        seen = {start}
        todo = [start]
        while todo:
            name = todo.pop()
            if opaque is not None and name in opaque:
                memo[start] = None
                return None
            for other in edges.get(name, ()):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        result = memo[start] = frozenset(seen)
        return result


class ReachBook:
    """Each database's `CatalogReach`, loaded in the background on first need (one query on a
    primary connection of the pool asking), trusted for ``ttl_s`` and forgotten on DDL seen.
    ``get()`` answers None while there is none to trust: the relay then empties the cache on
    every write, and a read waits for a load that has (or is opening) its connection
    (`loaded`) before it fills the cache; while the load waits for a connection (every one
    in use, none to open), reads go on without filling it."""

    def __init__(self, ttl_s: float = 300.0, retry_s: float = 5.0, timeout_s: float = 10.0) -> None:
        self.ttl_s = ttl_s
        self.retry_s = retry_s
        self.timeout_s = timeout_s
        self._known: dict[str, CatalogReach] = {}
        self._loading: dict[str, asyncio.Task[None]] = {}
        self._querying: set[str] = set()  # loads that have (or are opening) their connection
        self._failed_at: dict[str, float] = {}
        self._generation = 0

    def get(self, database: str, pool: BackendPool) -> CatalogReach | None:
        now = _monotonic()
        reach = self._known.get(database)
        if reach is not None and now - reach.loaded_at < self.ttl_s:
            return reach
        failed = self._failed_at.get(database)
        if database not in self._loading and (failed is None or now - failed >= self.retry_s):
            conn = pool.try_acquire()  # an idle one now, or the load waits in the background
            if conn is not None or pool.size < pool.max_size:  # (a new one is on its way)
                self._querying.add(database)
            task = asyncio.get_running_loop().create_task(self._load(database, pool, conn))
            self._loading[database] = task
        return None

    async def loaded(self, database: str) -> None:
        """Until the load of ``database``'s dependencies under way (if any) has ended."""
        task = self._loading.get(database)
        if task is not None:
            await asyncio.wait([task])

    def loading(self, database: str) -> bool:
        """A load of ``database``'s dependencies is running its query: it ends shortly."""
        return database in self._querying

    def forget(self) -> None:
        """DDL was seen: views, partitions, keys or triggers may have changed."""
        self._known.clear()
        self._generation += 1

    async def close(self) -> None:
        tasks = list(self._loading.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _load(
        self, database: str, pool: BackendPool, conn: BackendConnection | None
    ) -> None:
        generation = self._generation
        started = _monotonic()
        try:
            if conn is None:
                conn = await pool.acquire(self.timeout_s)
            try:
                results = await asyncio.wait_for(conn.execute(QUERY), self.timeout_s)
            finally:
                await pool.release_after_lookup(conn)
            if generation == self._generation:
                rows = results[-1].rows if results else ()
                self._known[database] = CatalogReach(rows, started)
                self._failed_at.pop(database, None)
        except (BackendError, TimeoutError, OSError) as exc:
            self._failed_at[database] = _monotonic()
            logger.warning(
                "dbsight proxy: result cache: could not read the dependencies of database %r"
                " (every write empties the cache until it can): %s", database, exc,
            )
        finally:
            self._loading.pop(database, None)
            self._querying.discard(database)
