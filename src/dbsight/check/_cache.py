"""Reads the indexes do not serve and reads the cache does not: PgHero's missing_indexes
(lib/pghero/methods/indexes.rb) and its table and index hit rates (tables.rb, indexes.rb)."""

from __future__ import annotations

from ._base import Check, Context, Finding, Outcome, count, plural

__all__ = ["CACHE_HIT_RATIO", "SEQUENTIAL_SCANS"]

# PgHero's missing_indexes: tables of 10,000 live rows or more whose scans used an index less
# than 95 % of the time. As PgHero, a table never read through an index is left out
# ("insufficient data": a nightly pg_dump reads every table sequentially too).
_SEQ = """
SELECT schemaname AS schema, relname AS table,
       format('%%I.%%I', schemaname, relname) AS qualified,
       seq_scan, idx_scan, n_live_tup AS live_rows, seq_tup_read AS rows_read_sequentially,
       100.0 * idx_scan / (seq_scan + idx_scan) AS index_percent
FROM pg_stat_user_tables
WHERE idx_scan > 0
  AND 100.0 * idx_scan / (seq_scan + idx_scan) < %(percent)s
  AND n_live_tup >= %(rows)s
ORDER BY n_live_tup DESC, relname
"""


def _sequential(ctx: Context) -> Outcome:
    t = ctx.thresholds
    rows = ctx.session.rows(
        _SEQ, {"percent": t.seq_scan_min_index_percent, "rows": t.seq_scan_min_rows}
    )
    findings = [
        Finding(row["qualified"], {
            "schema": row["schema"], "table": row["table"], "live_rows": row["live_rows"],
            "seq_scans": row["seq_scan"], "index_scans": row["idx_scan"],
            "index_percent": round(float(row["index_percent"]), 1),
            "rows_read_sequentially": row["rows_read_sequentially"],
        })
        for row in rows
    ]  # fmt: skip
    if not findings:
        return Outcome(
            f"every table of {count(t.seq_scan_min_rows)} rows or more read through an index at "
            f"least {t.seq_scan_min_index_percent:g}% of the time"
        )
    worst = min(findings, key=lambda f: f.item["index_percent"]).item
    return Outcome(
        f"{plural(len(findings), 'table')} of {count(t.seq_scan_min_rows)} rows or more read "
        f"through an index under {t.seq_scan_min_index_percent:g}% of the time (lowest: "
        f"{worst['schema']}.{worst['table']}, {worst['index_percent']}% of "
        f"{count(worst['seq_scans'] + worst['index_scans'])} scans)",
        findings,
        hint="Find the statements that scan them and the index they need: dbsight advise "
        "(with --pg-stat-statements, a capture or a running dbsight as its workload).",
    )


SEQUENTIAL_SCANS = Check(
    "sequential_scans", "Tables read by sequential scans", "warning", _sequential
)

_HITS = """
SELECT 'heap' AS kind, sum(heap_blks_hit) AS hits, sum(heap_blks_read) AS reads
FROM pg_statio_user_tables
UNION ALL
SELECT 'index', sum(idx_blks_hit), sum(idx_blks_read) FROM pg_statio_user_indexes
"""


def _cache(ctx: Context) -> Outcome:
    t = ctx.thresholds
    items = []
    findings = []
    for row in ctx.session.rows(_HITS):
        hits, reads = int(row["hits"] or 0), int(row["reads"] or 0)
        total = hits + reads
        ratio = hits / total if total else None
        judged = total >= max(1, t.cache_min_blocks)
        item = {
            "kind": row["kind"], "hit_ratio": None if ratio is None else round(ratio, 4),
            "hits": hits, "reads": reads, "judged": judged,
        }  # fmt: skip
        items.append(item)
        if judged and ratio is not None and ratio < t.cache_hit_ratio:
            findings.append(Finding(row["kind"], item))
    shown = "; ".join(_shown(item, t.cache_min_blocks) for item in items)
    if not findings:
        return Outcome(f"cache hit ratio {shown}", items=items)
    return Outcome(
        f"cache hit ratio under {t.cache_hit_ratio:.0%}: {shown}",
        findings,
        items=items,
        hint="The working set does not fit in shared_buffers: raise it (about a quarter of the "
        "memory), give the server more memory, or find the statements reading most blocks "
        "(pg_stat_statements' shared_blks_read).",
    )


def _shown(item: dict[str, object], floor: int) -> str:
    accesses = int(item["hits"]) + int(item["reads"])  # type: ignore[call-overload]
    if item["judged"]:
        return f"{item['kind']} {item['hit_ratio']:.2%} of {count(accesses)} block accesses"
    return f"{item['kind']} not judged ({count(accesses)} block accesses, under {count(floor)})"


CACHE_HIT_RATIO = Check("cache_hit_ratio", "Cache hit ratio", "warning", _cache)
