"""Index checks, after PgHero's lib/pghero/methods/indexes.rb: unused, duplicate and invalid
indexes. Every statement suggested (DROP INDEX CONCURRENTLY, REINDEX) is printed, never run."""

from __future__ import annotations

from typing import Any

from ._base import Check, Context, Finding, Outcome, count, plural, size
from ..core._dsn import describe_dsn
from ._session import connect

__all__ = ["DUPLICATE_INDEXES", "INVALID_INDEXES", "UNUSED_INDEXES"]

# PgHero's unused_indexes: not unique, few scans, at least a size. dbsight also leaves out
# invalid indexes (their own check) and indexes behind a constraint (an exclusion constraint's
# index is not unique, and dropping it is not possible).
_UNUSED = """
SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS index,
       format('%%I.%%I', s.schemaname, s.indexrelname) AS qualified,
       pg_relation_size(s.indexrelid) AS size_bytes, s.idx_scan AS scans
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE NOT i.indisunique AND i.indisvalid
  AND s.idx_scan <= %(max_scans)s
  AND pg_relation_size(s.indexrelid) >= %(min_bytes)s
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY pg_relation_size(s.indexrelid) DESC, s.relname, s.indexrelname
"""
_STATS_RESET = """
SELECT coalesce(to_char(stats_reset AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '')
FROM pg_stat_database WHERE datname = current_database()
"""


def _unused(ctx: Context) -> Outcome:
    t = ctx.thresholds
    params = {"max_scans": t.unused_index_max_scans, "min_bytes": t.unused_index_min_bytes}
    rows = ctx.session.rows(_UNUSED, params)
    reset = ctx.session.value(_STATS_RESET) or None
    used_on: dict[tuple[str, str], list[str]] = {}
    if ctx.replicas:
        # PgHero's `across`: an index scanned on a replica serves reads there, it is not
        # unused. Each replica keeps its own statistics.
        for dsn in ctx.replicas:
            unused_there = _unused_on_replica(dsn, ctx, t.unused_index_max_scans)
            for row in rows:
                key = (row["schema"], row["index"])
                if key not in unused_there:
                    used_on.setdefault(key, []).append(describe_dsn(dsn))
    findings = []
    for row in rows:
        if (row["schema"], row["index"]) in used_on:
            continue
        item = {
            "schema": row["schema"], "table": row["table"], "index": row["index"],
            "size_bytes": row["size_bytes"], "size": size(row["size_bytes"]),
            "scans": row["scans"],
        }  # fmt: skip
        findings.append(Finding(row["qualified"], item))
    since = f"since the statistics reset at {reset}" if reset else "since the statistics began"
    where = f" on the primary and {plural(len(ctx.replicas), 'replica')}" if ctx.replicas else ""
    kept = f"; {plural(len(used_on), 'index', 'indexes')} used only on a replica" if used_on else ""
    if not findings:
        return Outcome(
            f"no index of at least {size(t.unused_index_min_bytes)} unused {since}{where}{kept}"
        )
    total = sum(f.item["size_bytes"] for f in findings)
    return Outcome(
        f"{plural(len(findings), 'index', 'indexes')} ({size(total)}) with at most "
        f"{count(t.unused_index_max_scans)} scans {since}{where}{kept}",
        findings,
        hint="Drop them, once sure no rare job needs them (statistics cover only the time "
        "since their reset):\n"
        + "\n".join(f"DROP INDEX CONCURRENTLY {f.object};" for f in findings),
    )


def _unused_on_replica(dsn: str, ctx: Context, max_scans: int) -> set[tuple[str, str]]:
    session = connect(dsn, timeout_s=ctx.timeout_s)  # CheckError: the check is in error
    try:
        with session.transaction():
            rows = session.rows(_UNUSED, {"max_scans": max_scans, "min_bytes": 0})
    finally:
        session.close()
    return {(row["schema"], row["index"]) for row in rows}


UNUSED_INDEXES = Check("unused_indexes", "Unused indexes", "warning", _unused)


# Every index with what makes two indexes interchangeable: the method, each key column (as
# pg_get_indexdef prints it, so expressions compare by their text), its operator class,
# collation and ordering, and the predicate.
_INDEXES = """
SELECT n.nspname AS schema, t.relname AS table, c.relname AS index,
       format('%%I.%%I', n.nspname, c.relname) AS qualified,
       am.amname AS method, i.indisunique AS unique, i.indisprimary AS primary,
       i.indisvalid AS valid, i.indnatts > i.indnkeyatts AS has_include,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) AS constraint,
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
             FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k) AS columns,
       (string_to_array(i.indclass::text, ' '))[1:i.indnkeyatts] AS opclasses,
       (string_to_array(i.indcollation::text, ' '))[1:i.indnkeyatts] AS collations,
       (string_to_array(i.indoption::text, ' '))[1:i.indnkeyatts] AS options,
       pg_get_expr(i.indpred, i.indrelid) AS predicate,
       pg_relation_size(i.indexrelid) AS size_bytes
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = c.relam
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
ORDER BY n.nspname, t.relname, c.relname
"""


def _covers(wide: dict[str, Any], narrow: dict[str, Any]) -> bool:
    """Whether ``wide`` serves every search ``narrow`` serves (PgHero's index_covers?: the
    narrow index's columns are the leading columns of the wide one, same method, expressions
    and predicate). A btree serves a search on its leading columns; other methods are only
    interchangeable when their columns are the same."""
    if wide["method"] != narrow["method"] or wide["predicate"] != narrow["predicate"]:
        return False
    k = len(narrow["columns"])
    if wide["method"] != "btree" and len(wide["columns"]) != k:
        return False
    return all(wide[key][:k] == narrow[key]
               for key in ("columns", "opclasses", "collations", "options"))  # fmt: skip


def _duplicates(ctx: Context) -> Outcome:
    indexes = [row for row in ctx.session.rows(_INDEXES) if row["valid"]]
    by_table: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in indexes:
        by_table.setdefault((row["schema"], row["table"]), []).append(row)
    findings = []
    for siblings in by_table.values():
        for index in siblings:
            # A unique or primary index enforces a constraint, and an index with INCLUDE
            # columns serves index-only scans a wider key may not: neither is redundant.
            if index["unique"] or index["primary"] or index["constraint"] or index["has_include"]:
                continue
            for other in siblings:
                if other is index or not _covers(other, index):
                    continue
                same = other["columns"] == index["columns"]
                # Of two identical indexes one goes: the later name, as PgHero chooses.
                if (
                    same
                    and not (other["unique"] or other["primary"])
                    and index["index"] < other["index"]
                ):
                    continue
                item = {
                    "schema": index["schema"], "table": index["table"],
                    "index": index["index"], "columns": list(index["columns"]),
                    "method": index["method"], "size_bytes": index["size_bytes"],
                    "size": size(index["size_bytes"]), "covered_by": other["index"],
                    "covered_by_columns": list(other["columns"]),
                }  # fmt: skip
                findings.append(Finding(index["qualified"], item))
                break
    if not findings:
        return Outcome(f"no duplicate among {plural(len(indexes), 'valid index', 'valid indexes')}")
    total = sum(f.item["size_bytes"] for f in findings)
    return Outcome(
        f"{plural(len(findings), 'index', 'indexes')} ({size(total)}) covered by another index "
        "of the same table",
        findings,
        hint="Each is served by the index covering it, and costs every write: drop it:\n"
        + "\n".join(f"DROP INDEX CONCURRENTLY {f.object};" for f in findings),
    )


DUPLICATE_INDEXES = Check("duplicate_indexes", "Duplicate indexes", "warning", _duplicates)


# An index left invalid by a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY: it is
# kept up to date on every write and never read. One being built right now is invalid too
# until it finishes: pg_stat_progress_create_index says which (PgHero guesses from the
# running queries' text).
_INVALID = """
SELECT n.nspname AS schema, t.relname AS table, c.relname AS index,
       format('%%I.%%I', n.nspname, c.relname) AS qualified,
       pg_relation_size(i.indexrelid) AS size_bytes
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE NOT i.indisvalid
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
  AND i.indexrelid NOT IN (SELECT index_relid FROM pg_stat_progress_create_index
                           WHERE index_relid IS NOT NULL)
ORDER BY n.nspname, t.relname, c.relname
"""


def _invalid(ctx: Context) -> Outcome:
    rows = ctx.session.rows(_INVALID)
    findings = [
        Finding(row["qualified"], {
            "schema": row["schema"], "table": row["table"], "index": row["index"],
            "size_bytes": row["size_bytes"], "size": size(row["size_bytes"]),
        })
        for row in rows
    ]  # fmt: skip
    if not findings:
        return Outcome("no invalid index")
    return Outcome(
        f"{plural(len(findings), 'invalid index', 'invalid indexes')}: written on every change, "
        "never read (a failed CREATE INDEX CONCURRENTLY leaves one)",
        findings,
        hint="Rebuild each (after fixing what made it fail, such as duplicate keys), or drop it:\n"
        + "\n".join(
            f"REINDEX INDEX CONCURRENTLY {f.object};  -- or: DROP INDEX CONCURRENTLY {f.object};"
            for f in findings
        ),
    )


INVALID_INDEXES = Check("invalid_indexes", "Invalid indexes", "warning", _invalid)
