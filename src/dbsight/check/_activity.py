"""What the sessions are doing, after PgHero's lib/pghero/methods/connections.rb, queries.rb
and kill.rb: connections by state, sessions idle in transaction, long-running queries and the
sessions blocking others. pg_cancel_backend / pg_terminate_backend are suggested, never run.

Statements come from pg_stat_activity with their literals: they are shown normalized (and
fingerprinted) as everywhere in dbsight. Sessions are those of the checked database, as
PgHero's running_queries; connections count the whole server (max_connections is the
server's)."""

from __future__ import annotations

from typing import Any

from ._base import Check, Context, Finding, Outcome, count, fingerprint, normalized, plural

__all__ = ["BLOCKED_QUERIES", "CONNECTIONS", "IDLE_IN_TRANSACTION", "LONG_RUNNING_QUERIES"]

_STATES = """
SELECT coalesce(state, 'unknown') AS state, count(*) AS connections
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1 ORDER BY 2 DESC, 1
"""
_LIMIT = """
SELECT current_setting('max_connections')::int
       - current_setting('superuser_reserved_connections')::int
"""


def _connections(ctx: Context) -> Outcome:
    t = ctx.thresholds
    states = ctx.session.rows(_STATES)
    limit = int(ctx.session.value(_LIMIT))
    total = sum(int(row["connections"]) for row in states)
    items = [{"state": row["state"], "connections": int(row["connections"])} for row in states]
    by_state = ", ".join(f"{i['connections']} {i['state']}" for i in items) or "none"
    summary = f"{count(total)} client connections of {count(limit)} allowed ({by_state})"
    over_pghero = total >= t.total_connections
    over_limit = total >= t.connections_ratio * limit
    if not (over_pghero or over_limit):
        return Outcome(summary, items=items)
    reason = (
        f"at least {t.connections_ratio:.0%} of max_connections" if over_limit
        else f"at least {count(t.total_connections)}"
    )  # fmt: skip
    return Outcome(
        f"{summary}: {reason}",
        [Finding("total", {"connections": total, "allowed": limit})],
        items=items,
        hint="Pool the connections (a pooler such as dbsight proxy --pool-mode transaction, "
        "or smaller application pools); idle ones are the cheapest to give up.",
    )


CONNECTIONS = Check("connections", "Connections", "warning", _connections)

_SESSIONS = """
SELECT pid, usename AS user, application_name AS application, state,
       extract(epoch FROM now() - state_change)::float8 AS state_s,
       extract(epoch FROM now() - xact_start)::float8 AS transaction_s,
       extract(epoch FROM now() - coalesce(query_start, xact_start))::float8 AS query_s,
       wait_event_type, wait_event, backend_xmin IS NOT NULL AS holds_xmin, query
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
  AND state = ANY(%(states)s)
ORDER BY coalesce(query_start, xact_start)
"""
IDLE_STATES = ["idle in transaction", "idle in transaction (aborted)"]
# Every state but idle: PgHero's running_queries reads state <> 'idle' (and so counts the
# sessions idle in transaction, which have their own check here). Client backends only: PgHero
# sets walsenders and autovacuum workers apart on its dashboard.
ACTIVE_STATES = ["active", "fastpath function call", "disabled"]


def _session_item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "pid": row["pid"],
        "user": row["user"],
        "application": row["application"] or None,
        "state": row["state"],
        "transaction_s": None if row["transaction_s"] is None else round(row["transaction_s"], 1),
        "query_s": None if row["query_s"] is None else round(row["query_s"], 1),
        "wait_event": ":".join(w for w in (row["wait_event_type"], row["wait_event"]) if w) or None,
        "query": normalized(row["query"]),
        "fingerprint": fingerprint(row["query"]),
    }


def _idle(ctx: Context) -> Outcome:
    t = ctx.thresholds
    rows = ctx.session.rows(_SESSIONS, {"states": IDLE_STATES})
    crowded = len(rows) >= t.idle_in_transaction_count
    findings = []
    for row in rows:
        if crowded or row["state_s"] >= t.idle_in_transaction_s:
            item = _session_item(row) | {"idle_s": round(row["state_s"], 1)}
            findings.append(Finding(str(row["pid"]), item))
    if not findings:
        return Outcome(
            f"{plural(len(rows), 'session')} idle in transaction, none for "
            f"{t.idle_in_transaction_s:g} s or more"
        )
    longest = max(f.item["idle_s"] for f in findings)
    database = ctx.session.value("SELECT format('%%I', current_database())")
    why = (
        f"{plural(len(rows), 'session')} idle in transaction (limit "
        f"{count(t.idle_in_transaction_count)})" if crowded
        else f"{plural(len(findings), 'session')} idle in transaction for "
        f"{t.idle_in_transaction_s:g} s or more"
    )  # fmt: skip
    return Outcome(
        f"{why} (longest {longest:g} s): they hold their locks and keep VACUUM from removing rows",
        findings,
        hint="Find the code that leaves its transaction open (the last statement is shown). "
        "To end them now, and to have the server end such sessions:\n"
        + "\n".join(f"SELECT pg_terminate_backend({f.object});" for f in findings[:20])
        + f"\nALTER DATABASE {database} SET idle_in_transaction_session_timeout = "
        f"'{max(1, round(t.idle_in_transaction_s))}s';",
    )


IDLE_IN_TRANSACTION = Check("idle_in_transaction", "Sessions idle in transaction", "warning", _idle)


def _long(ctx: Context) -> Outcome:
    t = ctx.thresholds
    rows = ctx.session.rows(_SESSIONS, {"states": ACTIVE_STATES})
    findings = [
        Finding(str(row["pid"]), _session_item(row))
        for row in rows
        if row["query_s"] is not None and row["query_s"] >= t.long_query_s
    ]  # fmt: skip
    if not findings:
        return Outcome(f"no query running for {t.long_query_s:g} s or more")
    longest = max(f.item["query_s"] for f in findings)
    return Outcome(
        f"{plural(len(findings), 'query', 'queries')} running for {t.long_query_s:g} s or more "
        f"(longest {longest:g} s)",
        findings,
        hint="Look at their plans (dbsight's slow log, EXPLAIN); to stop one, cancel it first "
        "and terminate its session only if that fails:\n"
        + "\n".join(f"SELECT pg_cancel_backend({f.object});" for f in findings[:20]),
    )


LONG_RUNNING_QUERIES = Check("long_running_queries", "Long-running queries", "warning", _long)

# Sessions waiting for a lock, who holds it (pg_blocking_pids, PG 9.6+) and since when
# (pg_locks.waitstart, PG 14+). PgHero joins pg_locks by hand; pg_blocking_pids also sees
# the sessions ahead in the lock's queue.
_BLOCKED = """
SELECT a.pid, a.usename AS user, a.application_name AS application, a.state,
       extract(epoch FROM now() - a.xact_start)::float8 AS transaction_s,
       extract(epoch FROM now() - coalesce(a.query_start, a.xact_start))::float8 AS query_s,
       a.wait_event_type, a.wait_event, a.query,
       pg_blocking_pids(a.pid) AS blocking_pids,
       w.locktype, w.mode, w.relation,
       extract(epoch FROM now() - w.waitstart)::float8 AS waiting_s
FROM pg_stat_activity a
CROSS JOIN LATERAL (
    SELECT l.locktype, l.mode, l.relation::regclass::text AS relation, l.waitstart
    FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted
    ORDER BY l.waitstart NULLS LAST LIMIT 1
) w
WHERE a.datname = current_database() AND cardinality(pg_blocking_pids(a.pid)) > 0
ORDER BY w.waitstart NULLS LAST
"""
_BLOCKERS = """
SELECT pid, usename AS user, application_name AS application, state,
       extract(epoch FROM now() - xact_start)::float8 AS transaction_s,
       extract(epoch FROM now() - coalesce(query_start, xact_start))::float8 AS query_s,
       wait_event_type, wait_event, query
FROM pg_stat_activity WHERE pid = ANY(%(pids)s)
"""


def _waited(row: dict[str, Any]) -> float:
    """How long the session has waited for its lock (its query's age when the server does
    not say)."""
    if row["waiting_s"] is not None:
        return float(row["waiting_s"])
    return float(row["query_s"] or 0)


def _blocked(ctx: Context) -> Outcome:
    t = ctx.thresholds
    rows = [row for row in ctx.session.rows(_BLOCKED) if _waited(row) >= t.blocked_s]
    if not rows:
        return Outcome(f"no session waiting {t.blocked_s:g} s or more for a lock another holds")
    pids = sorted({pid for row in rows for pid in row["blocking_pids"]})
    blockers = {
        row["pid"]: _session_item(row) for row in ctx.session.rows(_BLOCKERS, {"pids": pids})
    }
    waiting = {row["pid"] for row in rows}
    findings = []
    for row in rows:
        item = _session_item(row) | {
            "waiting_s": None if row["waiting_s"] is None else round(row["waiting_s"], 1),
            "lock": {"type": row["locktype"], "mode": row["mode"], "relation": row["relation"]},
            "blocking_pids": list(row["blocking_pids"]),
            "blockers": [blockers[p] for p in row["blocking_pids"] if p in blockers],
        }
        findings.append(Finding(str(row["pid"]), item))
    # The sessions at the root of the queues: blocking others and waiting for no one.
    roots = [pid for pid in pids if pid not in waiting] or pids
    return Outcome(
        f"{plural(len(findings), 'session')} waiting {t.blocked_s:g} s or more for a lock, "
        f"held by {plural(len(pids), 'session')} ({', '.join(map(str, pids))})",
        findings,
        hint="Ending the blocking sessions at the head of the queue releases the others (an "
        "idle-in-transaction blocker is a transaction its application left open):\n"
        + "\n".join(f"SELECT pg_terminate_backend({pid});" for pid in roots),
    )


BLOCKED_QUERIES = Check("blocked_queries", "Blocked sessions", "warning", _blocked)
