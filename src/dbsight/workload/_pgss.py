"""A workload from pg_stat_statements: the server's own totals for the statements of one
database, whoever sent them, fingerprinted the way dbsight fingerprints what it sees.

Each row's text (constants already replaced by ``$n`` by the server) goes through
`dbsight.sql.analyze`, whose fingerprint ignores literal values, placeholder numbering,
IN-list and VALUES-list lengths, whitespace and comments: so a statement dbsight saw with
its literals, with psycopg's ``%s`` or asyncpg's ``$1`` has the fingerprint of the row the
server keeps for it, and the server's totals join dbsight's statistics by fingerprint.
Several rows with one fingerprint (one per user, or IN lists of several lengths, which the
server keeps apart) are added up.

Rows of statements that are not work on data (transaction control, SET, SHOW, EXPLAIN ...),
this reader's own query and those of dbsight's analysis (marked `ANALYSIS_MARK`) are left
out. Times are the server's execution plus planning time (planning only with
``pg_stat_statements.track_planning``), without the network; no percentiles, no errors
(the server does not count them). The window runs from the statistics' last reset (the
server keeps it from PostgreSQL 14). Read only: nothing is created or reset.
"""

from __future__ import annotations

from typing import Any, Final

from ..core._dsn import cannot_connect, describe_dsn, first_line
from ._errors import WorkloadError
from ._filter import UTILITY, is_utility
from ._model import Workload, WorkloadStatement

__all__ = ["ANALYSIS_MARK", "FIX", "from_pg_stat_statements"]

# dbsight's analysis queries carry this comment (the server keeps comments in the text it
# shows), so that a workload read from the server leaves them out.
ANALYSIS_MARK: Final = "/* dbsight analysis */"
FIX: Final = (
    "add pg_stat_statements to shared_preload_libraries (then restart PostgreSQL) and "
    "CREATE EXTENSION pg_stat_statements in the database"
)
CONNECT_TIMEOUT_S: Final = 10
_INSUFFICIENT: Final = "<insufficient privilege>"


def _connect(dsn: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise WorkloadError(
            "reading pg_stat_statements needs psycopg: pip install 'dbsight[analysis]'"
        ) from None
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise WorkloadError(cannot_connect(dsn, exc)) from None
    except ValueError as exc:  # a DSN psycopg cannot read
        raise WorkloadError(f"not a PostgreSQL DSN: {first_line(exc)}") from None


def from_pg_stat_statements(dsn: str) -> Workload:
    """The workload pg_stat_statements holds for the database of ``dsn`` (see the module
    docstring); `WorkloadError` when the database cannot be reached or the extension is
    not there (the message says how to add it)."""
    conn = _connect(dsn)
    import psycopg  # importable: _connect checked

    with conn:
        try:
            return _read(conn, dsn)
        except psycopg.errors.ObjectNotInPrerequisiteState:
            # the extension exists but its library was not loaded at server start
            raise WorkloadError(
                f"pg_stat_statements is not loaded on {describe_dsn(dsn)}: {FIX}"
            ) from None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise WorkloadError(
                f"cannot read pg_stat_statements on {describe_dsn(dsn)}: {first_line(exc)} "
                "(grant pg_read_all_stats to the user)"
            ) from None
        except psycopg.Error as exc:
            raise WorkloadError(
                f"reading pg_stat_statements on {describe_dsn(dsn)} failed: {first_line(exc)}"
            ) from None


def _read(conn: Any, dsn: str) -> Workload:
    found = conn.execute(
        f"{ANALYSIS_MARK} SELECT n.nspname FROM pg_extension e "
        "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'"
    ).fetchone()
    if found is None:
        raise WorkloadError(f"pg_stat_statements is not installed in {describe_dsn(dsn)}: {FIX}")
    view = f"{_ident(found[0])}.pg_stat_statements"
    columns = {
        row[0]
        for row in conn.execute(
            f"{ANALYSIS_MARK} SELECT attname FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (view,),
        )
    }
    # PostgreSQL 13 split total_time into execution and planning; 14 added toplevel
    time_ms = (
        "s.total_exec_time + s.total_plan_time" if "total_exec_time" in columns else "s.total_time"
    )
    toplevel = " AND s.toplevel" if "toplevel" in columns else ""
    rows = conn.execute(
        f"{ANALYSIS_MARK} SELECT s.query, s.calls, {time_ms}, s.rows "
        f"FROM {view} s JOIN pg_database d ON d.oid = s.dbid "
        f"WHERE d.datname = current_database(){toplevel} "
        "AND s.query NOT LIKE %s AND s.query NOT LIKE %s",
        (f"%{ANALYSIS_MARK}%", "%pg_stat_statements%"),
    ).fetchall()
    window = _window(conn, found[0])
    return _workload(rows, window)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _window(conn: Any, schema: str) -> float | None:
    """Seconds since the statistics were last reset (pg_stat_statements_info, PG 14+)."""
    exists = conn.execute(
        f"{ANALYSIS_MARK} SELECT to_regclass(%s) IS NOT NULL",
        (f"{_ident(schema)}.pg_stat_statements_info",),
    ).fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute(
        f"{ANALYSIS_MARK} SELECT extract(epoch FROM now() - stats_reset)::float8 "
        f"FROM {_ident(schema)}.pg_stat_statements_info"
    ).fetchone()
    return float(row[0]) if row and row[0] and row[0] > 0 else None


def _workload(rows: list[tuple[Any, ...]], window: float | None) -> Workload:
    from ..sql import analyze

    skipped: dict[str, int] = {}
    by_fingerprint: dict[str, WorkloadStatement] = {}
    for query, calls, time_ms, rows_count in rows:
        if query is None or query == _INSUFFICIENT:
            # another user's statement, hidden from this one
            skipped["insufficient_privilege"] = skipped.get("insufficient_privilege", 0) + 1
            continue
        info = analyze(query, "postgresql")
        if is_utility(info.operation, info.normalized):
            skipped[UTILITY] = skipped.get(UTILITY, 0) + int(calls)
            continue
        have = by_fingerprint.get(info.fingerprint)
        if have is None:
            by_fingerprint[info.fingerprint] = WorkloadStatement(
                fingerprint=info.fingerprint,
                normalized=info.normalized,
                operation=info.operation,
                tables=info.tables,
                calls=int(calls),
                total_time_s=float(time_ms or 0.0) / 1000.0,
                p95_s=None,
                rows=int(rows_count) if rows_count is not None else None,
                sources=("pg_stat_statements",),
                instrumented=False,
            )
        else:  # one dbsight fingerprint, several server rows: the same statement
            have.calls += int(calls)
            have.total_time_s += float(time_ms or 0.0) / 1000.0
            if rows_count is not None:
                have.rows = (have.rows or 0) + int(rows_count)
    workload = Workload(by_fingerprint, window, skipped)
    return workload
