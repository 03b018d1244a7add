"""What the advisor needs from the database's catalog, read once in a few queries: the tables
a workload names (resolved on the search path), their columns and types, their existing
indexes, row counts and per-column statistics (distinct values, most common values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# the catalog queries stay out of the workloads read back from pg_stat_statements
from ..workload import ANALYSIS_MARK

__all__ = ["Catalog", "ExistingIndex", "Table", "load_catalog"]


@dataclass(frozen=True, slots=True)
class ExistingIndex:
    name: str
    method: str
    columns: tuple[str, ...]  # key columns; "" for an expression
    descending: tuple[bool, ...]
    include: tuple[str, ...]
    valid: bool
    partial: bool
    unique: bool


@dataclass(slots=True)
class Table:
    """``name`` is ``oid::regclass::text`` (schema-qualified only when not on the path)."""

    oid: int
    name: str
    rows: float
    columns: dict[str, str] = field(default_factory=dict)  # column -> type
    indexes: list[ExistingIndex] = field(default_factory=list)
    distinct: dict[str, float] = field(default_factory=dict)  # column -> distinct values
    common: dict[str, frozenset[str]] = field(default_factory=dict)  # column -> MCVs as text
    # column -> values the column holds, from pg_stats (MCVs, then histogram bounds): what
    # verification runs a statement with when the workload has no parameters for it.
    known_values: dict[str, list[str]] = field(default_factory=dict)
    analyzed: bool = True

    def btrees(self) -> list[ExistingIndex]:
        """Valid btree indexes on plain columns, without a predicate: what covers a candidate."""
        return [
            ix for ix in self.indexes
            if ix.valid and ix.method == "btree" and not ix.partial and "" not in ix.columns
        ]  # fmt: skip


@dataclass(slots=True)
class Catalog:
    tables: dict[str, Table] = field(default_factory=dict)  # by regclass text
    written: dict[str, str] = field(default_factory=dict)  # name as written -> regclass text
    shared_buffers_bytes: int = 128 * 1024 * 1024

    def table(self, written: str) -> Table | None:
        name = self.written.get(written)
        return self.tables.get(name) if name is not None else None


_RESOLVE = ANALYSIS_MARK + """
SELECT n, c.oid, c.oid::regclass::text, c.reltuples,
       EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = ns.nspname AND s.tablename = c.relname)
FROM unnest(%s::text[]) AS n
JOIN pg_class c ON c.oid = to_regclass(n)
JOIN pg_namespace ns ON ns.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm')
  AND ns.nspname NOT IN ('pg_catalog', 'information_schema')
"""
_COLUMNS = ANALYSIS_MARK + """
SELECT attrelid, attname, format_type(atttypid, atttypmod)
FROM pg_attribute WHERE attrelid = ANY(%s) AND attnum > 0 AND NOT attisdropped
"""
_INDEXES = ANALYSIS_MARK + """
SELECT i.indrelid, i.indexrelid::regclass::text, am.amname, i.indisvalid, i.indisunique,
       i.indpred IS NOT NULL, i.indnkeyatts, i.indoption::int2[],
       ARRAY(SELECT coalesce(a.attname, '')
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             ORDER BY k.ord)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE i.indrelid = ANY(%s)
"""
_STATS = ANALYSIS_MARK + """
SELECT c.oid, s.attname, s.n_distinct, s.most_common_vals::text::text[],
       s.histogram_bounds::text::text[]
FROM pg_stats s
JOIN pg_namespace ns ON ns.nspname = s.schemaname
JOIN pg_class c ON c.relnamespace = ns.oid AND c.relname = s.tablename
WHERE c.oid = ANY(%s)
"""


def load_catalog(conn: Any, names: set[str]) -> Catalog:
    """The catalog entries for ``names`` (tables as statements write them)."""
    catalog = Catalog()
    with conn.cursor() as cur:
        cur.execute(ANALYSIS_MARK + " SELECT pg_size_bytes(current_setting('shared_buffers'))")
        row = cur.fetchone()
        if row is not None:
            catalog.shared_buffers_bytes = int(row[0])
        cur.execute(_RESOLVE, (sorted(names),))
        by_oid: dict[int, Table] = {}
        for written, oid, name, rows, analyzed in cur.fetchall():
            table = by_oid.get(oid) or Table(int(oid), name, max(float(rows), 0.0))
            table.analyzed = bool(analyzed) and float(rows) >= 0
            by_oid[oid] = table
            catalog.tables[name] = table
            catalog.written[written] = name
        if not by_oid:
            return catalog
        oids = list(by_oid)
        cur.execute(_COLUMNS, (oids,))
        for oid, column, kind in cur.fetchall():
            by_oid[oid].columns[column] = kind
        cur.execute(_INDEXES, (oids,))
        for oid, name, method, valid, unique, partial, nkeys, options, columns in cur.fetchall():
            by_oid[oid].indexes.append(ExistingIndex(
                name=name, method=method,
                columns=tuple(columns[:nkeys]),
                descending=tuple(bool(o & 1) for o in (options or [])[:nkeys]),
                include=tuple(columns[nkeys:]), valid=valid, partial=partial, unique=unique,
            ))  # fmt: skip
        cur.execute(_STATS, (oids,))
        for oid, column, n_distinct, common, bounds in cur.fetchall():
            table = by_oid[oid]
            distinct = float(n_distinct or 0.0)
            table.distinct[column] = -distinct * table.rows if distinct < 0 else distinct
            if common:
                table.common[column] = frozenset(common)
            values = [v for v in [*(common or []), *(bounds or [])] if v is not None]
            if values:
                table.known_values[column] = values
    return catalog
