"""Maintenance checks, after PgHero's lib/pghero/methods/maintenance.rb: transaction-ID
wraparound, dead tuples and the last vacuum and analyze of each table. VACUUM and ANALYZE are
suggested, never run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._base import Check, Context, Finding, Outcome, count, plural

__all__ = ["DEAD_TUPLES", "TRANSACTION_ID_WRAPAROUND", "VACUUM_ANALYZE"]

# PgHero's transaction_id_danger: transactions left before the server stops assigning IDs
# (2^31 less the 1,000,000 it keeps in reserve), per table, from the older of the table's and
# its TOAST table's relfrozenxid. Materialized views freeze like tables.
XID_MAX = 2_146_483_648
_XID = """
SELECT n.nspname AS schema, c.relname AS table,
       format('%%I.%%I', n.nspname, c.relname) AS qualified,
       greatest(age(c.relfrozenxid), age(t.relfrozenxid)) AS xid_age,
       %(max)s - greatest(age(c.relfrozenxid), age(t.relfrozenxid)) AS transactions_left
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relkind IN ('r', 'm')
ORDER BY 5, 1, 2
"""


def _wraparound(ctx: Context) -> Outcome:
    t = ctx.thresholds
    rows = ctx.session.rows(_XID, {"max": XID_MAX})
    if not rows:
        return Outcome("no table")
    tightest = rows[0]
    findings = [
        Finding(row["qualified"], {
            "schema": row["schema"], "table": row["table"], "xid_age": row["xid_age"],
            "transactions_left": row["transactions_left"],
        })
        for row in rows if row["transactions_left"] < t.xid_warning_left
    ]  # fmt: skip
    if not findings:
        return Outcome(
            f"{count(tightest['transactions_left'])} transactions left before wraparound at "
            f"the tightest ({tightest['schema']}.{tightest['table']}, oldest unfrozen "
            f"transaction {count(tightest['xid_age'])} old)"
        )
    critical = tightest["transactions_left"] < t.xid_critical_left
    return Outcome(
        f"{plural(len(findings), 'table')} under {count(t.xid_warning_left)} transactions from "
        f"wraparound (tightest: {tightest['schema']}.{tightest['table']}, "
        f"{count(tightest['transactions_left'])} left)",
        findings,
        hint="Freeze them (and find what keeps autovacuum from it: a long transaction, a "
        "prepared transaction or a stale replication slot holding the xmin horizon):\n"
        + "\n".join(f"VACUUM (FREEZE, VERBOSE) {f.object};" for f in findings[:20]),
        severity="critical" if critical else None,
    )


TRANSACTION_ID_WRAPAROUND = Check(
    "transaction_id_wraparound", "Transaction ID wraparound", "warning", _wraparound
)

_TABLES = """
SELECT s.schemaname AS schema, s.relname AS table,
       format('%%I.%%I', s.schemaname, s.relname) AS qualified,
       s.n_live_tup AS live_rows, s.n_dead_tup AS dead_rows,
       s.n_mod_since_analyze AS changed_since_analyze,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       coalesce((SELECT lower(o.option_value) NOT IN ('off', 'false', 'no', '0')
                 FROM pg_options_to_table(c.reloptions) o
                 WHERE o.option_name = 'autovacuum_enabled'), true) AS autovacuum_enabled
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
ORDER BY s.schemaname, s.relname
"""


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _last(row: dict[str, Any], manual: str, auto: str) -> datetime | None:
    times = [t for t in (row[manual], row[auto]) if t is not None]
    return max(times) if times else None


def _dead(ctx: Context) -> Outcome:
    t = ctx.thresholds
    rows = ctx.session.rows(_TABLES)
    autovacuum_on = ctx.session.value("SELECT current_setting('autovacuum')") == "on"
    findings = []
    for row in rows:
        dead, live = row["dead_rows"], row["live_rows"]
        if dead < t.dead_tuples_min or dead < t.dead_tuples_ratio * (live + dead):
            continue
        item = {
            "schema": row["schema"], "table": row["table"], "dead_rows": dead,
            "live_rows": live, "dead_percent": round(100 * dead / (live + dead), 1),
            "last_vacuum": _when(_last(row, "last_vacuum", "last_autovacuum")),
            "autovacuum_enabled": autovacuum_on and row["autovacuum_enabled"],
        }  # fmt: skip
        findings.append(Finding(row["qualified"], item))
    findings.sort(key=lambda f: -f.item["dead_rows"])
    server = "" if autovacuum_on else "; autovacuum is off on this server"
    if not findings:
        return Outcome(
            f"no table with {count(t.dead_tuples_min)} dead rows making {t.dead_tuples_ratio:.0%} "
            f"of it{server}"
        )
    lines = [f"VACUUM (ANALYZE, VERBOSE) {f.object};" for f in findings[:20]]
    lines += [
        f"ALTER TABLE {f.object} RESET (autovacuum_enabled);"
        for f in findings[:20] if autovacuum_on and not f.item["autovacuum_enabled"]
    ]  # fmt: skip
    if not autovacuum_on:
        lines.append("ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();")
    return Outcome(
        f"{plural(len(findings), 'table')} with at least {t.dead_tuples_ratio:.0%} dead rows "
        f"(most: {findings[0].item['schema']}.{findings[0].item['table']}, "
        f"{count(findings[0].item['dead_rows'])} dead){server}",
        findings,
        hint="Autovacuum is behind on them (or off): vacuum them, and see why:\n"
        + "\n".join(lines),
    )


DEAD_TUPLES = Check("dead_tuples", "Dead tuples", "warning", _dead)


def _stale(ctx: Context) -> Outcome:
    t = ctx.thresholds
    findings = []
    for row in ctx.session.rows(_TABLES):
        live = row["live_rows"]
        if live < t.maintenance_min_rows:
            continue
        analyzed = _last(row, "last_analyze", "last_autoanalyze")
        changed = row["changed_since_analyze"]
        if analyzed is not None and changed < t.stale_analyze_ratio * live:
            continue
        item = {
            "schema": row["schema"], "table": row["table"], "live_rows": live,
            "changed_since_analyze": changed, "last_analyze": _when(analyzed),
            "last_vacuum": _when(_last(row, "last_vacuum", "last_autovacuum")),
            "reason": "never analyzed" if analyzed is None
            else f"{round(100 * changed / live)}% of rows changed since the last analyze",
        }  # fmt: skip
        findings.append(Finding(row["qualified"], item))
    if not findings:
        return Outcome(
            f"every table of {count(t.maintenance_min_rows)} rows or more analyzed, with under "
            f"{t.stale_analyze_ratio:.0%} of its rows changed since"
        )
    return Outcome(
        f"{plural(len(findings), 'table')} of {count(t.maintenance_min_rows)} rows or more never "
        f"analyzed or with {t.stale_analyze_ratio:.0%} of rows changed since: the planner "
        "estimates from stale statistics",
        findings,
        hint="Refresh their statistics (autoanalyze is lagging or off for them):\n"
        + "\n".join(f"ANALYZE VERBOSE {f.object};" for f in findings[:20]),
    )


VACUUM_ANALYZE = Check("vacuum_analyze", "Last vacuum and analyze", "info", _stale)
