"""Whether reading a relation may have a side effect: a view's definition may call a volatile
function (``CREATE VIEW v AS SELECT nextval('s')``), so ``SELECT * FROM v`` is not read-only
although its text is.

``RelationSafety`` asks the server once per name what it is (``pg_class.relkind``) and, for
a view, its definition (``pg_get_viewdef``), which is judged like any statement: provably
read-only by ``dbsight.sql.analyze``, its functions by `FunctionVolatility`, the relations
it reads in turn (views over views, up to a few levels). Tables, materialized views, foreign
and partitioned tables read nothing but their rows: safe. A name that matches nothing (a
temporary table, a typo) is unsafe: the primary answers, as it would. So is an unlogged or
temporary table: a standby refuses to read one ("cannot access temporary or unlogged
relations during recovery"). As with functions, an
unqualified name matches that name in every schema, since a client's search_path may differ
from the proxy's; it is safe only when every match is. Names reach the server as hexadecimal
digits only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..sql import analyze
from ._volatility import DEFAULT_TTL_S, Execute, FunctionVolatility, bytes_literal, split_name

MAX_DEPTH: Final = 4  # views over views followed this deep; deeper: unsafe
_MAX_NAMES: Final = 4096
_SAFE_KINDS: Final = frozenset(("r", "m", "f", "p"))

_QUERY = """SELECT w.i, c.relkind, c.relpersistence,
  CASE WHEN c.relkind = 'v' THEN pg_catalog.pg_get_viewdef(c.oid) END
FROM (VALUES {rows}) AS w(i, nsp, rel)
JOIN (pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace)
  ON pg_catalog.convert_to(c.relname::text, 'UTF8') = w.rel
  AND (w.nsp IS NULL OR pg_catalog.convert_to(n.nspname::text, 'UTF8') = w.nsp)"""


class RelationSafety:
    """Verdicts per relation name, kept for ``ttl_s``; see the module docstring."""

    def __init__(self, volatility: FunctionVolatility, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.volatility = volatility
        self.ttl_s = ttl_s
        self._known: dict[str, tuple[bool, float]] = {}  # name -> (safe, expires at)
        self._generation = 0

    def verdict(self, tables: Sequence[str], now: float) -> bool | None:
        """True when reading every one of ``tables`` is free of side effects, False when
        one is not (or is unknown), None when one has not been looked up (yet)."""
        pending = False
        for name in tables:
            entry = self._known.get(name)
            if entry is None or entry[1] <= now:
                pending = True
            elif not entry[0]:
                return False
        return None if pending else True

    def missing(self, tables: Sequence[str], now: float) -> tuple[str, ...]:
        known = self._known
        return tuple(name for name in tables if (e := known.get(name)) is None or e[1] <= now)

    async def resolve(
        self, names: Sequence[str], execute: Execute, now: float, depth: int = 0
    ) -> None:
        """Look ``names`` up (one query, plus one per level of views over views) and
        remember each verdict; what ``execute`` raises is raised and nothing is stored."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return
        generation = self._generation
        rows: list[str] = []
        for i, name in enumerate(wanted):
            split = split_name(name)
            if split is not None:
                schema, relation = split
                nsp = "NULL::bytea" if schema is None else bytes_literal(schema)
                rows.append(f"({i}, {nsp}, {bytes_literal(relation)})")
        found: dict[int, list[tuple[str, str | None]]] = {}
        if rows:
            results = await execute(_QUERY.format(rows=", ".join(rows)))
            for index, kind, persistence, definition in results[-1].rows if results else ():
                if index is not None and kind is not None:
                    if persistence != "p":  # unlogged or temporary: not on a standby
                        kind = "unlogged"
                    found.setdefault(int(index), []).append((kind, definition))
        verdicts = []
        for i in range(len(wanted)):
            matches = found.get(i)
            safe = bool(matches)
            for kind, definition in matches or ():
                if kind == "v":
                    safe = safe and await self._view_safe(definition or "", execute, now, depth)
                else:
                    safe = safe and kind in _SAFE_KINDS
            verdicts.append(safe)
        if generation != self._generation:
            return
        for name, safe in zip(wanted, verdicts, strict=True):
            self._known.pop(name, None)
            while len(self._known) >= _MAX_NAMES:
                del self._known[next(iter(self._known))]
            self._known[name] = (safe, now + self.ttl_s)

    async def _view_safe(self, definition: str, execute: Execute, now: float, depth: int) -> bool:
        info = analyze(definition)
        volatility = self.volatility
        judged = volatility.verdict(info, now)
        if judged is None:
            await volatility.resolve(volatility.missing(info, now), execute, now)
            judged = volatility.verdict(info, now)
        if not judged:
            return False
        if not info.tables:
            return True
        if depth >= MAX_DEPTH:
            return False
        nested = self.verdict(info.tables, now)
        if nested is None:
            await self.resolve(self.missing(info.tables, now), execute, now, depth + 1)
            nested = self.verdict(info.tables, now)
        return bool(nested)

    def invalidate(self) -> None:
        """Forget every verdict (DDL may have turned a table into a view, or changed one)."""
        self._known.clear()
        self._generation += 1
