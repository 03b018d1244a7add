"""The plan of a regressed statement on the target, and what the plan analyzer says of it.

``EXPLAIN (FORMAT JSON)`` (never ANALYZE: nothing runs) of the slowest replayed sample, with
its own parameters, inside a transaction that is rolled back, under a statement timeout.
It goes through the extended protocol, which takes one statement only: a text of several is
refused by the server instead of having its other statements run. The plan's constants (the
sample's values, in its conditions) are masked before it is kept (`redact_plan`, as the slow
log does), so the report shows no literal. Findings come from
``dbsight.advise.analyze_plan`` where this dbsight has it, with the statistics of the tables
the plan reads (the size that makes a sequential scan worth a finding), from the target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncRawCursor

from ..export.slowlog import redact_plan
from ..sql import analyze
from ._compare import FingerprintResult
from ._target import connect

EXPLAIN_TIMEOUT = "30s"
_EXPLAINABLE = frozenset({"select", "insert", "update", "delete"})


@dataclass(frozen=True, slots=True)
class _Analyzer:
    """The plan analyzer, and what it needs to judge an estimate-only plan's scans: the
    statistics of the tables it reads (their size), fetched from the target."""

    analyze_plan: Callable[..., list[Any]]
    needs_table_stats: Callable[[Any], list[str]] | None = None
    table_stats_query: Callable[[list[str]], str | None] | None = None
    parse_table_stats: Callable[[Any], dict[str, Any]] | None = None

    async def findings(self, conn: psycopg.AsyncConnection[object], plan: Any) -> list[Any]:
        stats: dict[str, Any] | None = None
        if self.needs_table_stats and self.table_stats_query and self.parse_table_stats:
            query = self.table_stats_query(self.needs_table_stats(plan))
            if query is not None:
                try:
                    cursor = await conn.execute(query.encode())
                    row: Any = await cursor.fetchone()
                    stats = self.parse_table_stats(row[0] if row else None)
                except psycopg.Error:
                    stats = None  # the findings that need them are left out
        return [finding.to_dict() for finding in self.analyze_plan(plan, table_stats=stats)]


def _plan_analyzer() -> _Analyzer | None:
    """``dbsight.advise.analyze_plan`` where this dbsight has it (else no findings)."""
    try:
        from ..advise import analyze_plan  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    try:
        from ..advise._plan import (  # type: ignore[import-not-found,unused-ignore]
            needs_table_stats,
            parse_table_stats,
            table_stats_query,
        )
    except ImportError:
        return _Analyzer(analyze_plan)
    return _Analyzer(analyze_plan, needs_table_stats, table_stats_query, parse_table_stats)


async def explain_regressions(target: str, results: Iterable[FingerprintResult]) -> None:
    """Fill ``plan`` (or ``plan_error``) and ``findings`` of each regressed result that has
    a sample; one connection for them all."""
    wanted = [r for r in results if r.regression and r.sample is not None and r.sample.sql]
    if not wanted:
        return
    analyzer = _plan_analyzer()
    conn = await connect(target)
    try:
        for result in wanted:
            assert result.sample is not None
            if analyze(result.sample.sql).operation not in _EXPLAINABLE:
                continue
            plan, error = await _explain(conn, result.sample.sql, result.sample.params)
            result.plan, result.plan_error = plan, error
            if plan is not None and analyzer is not None:
                result.findings = await analyzer.findings(conn, plan)
    finally:
        await conn.close()


async def _explain(
    conn: psycopg.AsyncConnection[object], sql: str, params: list[Any] | None
) -> tuple[list[Any] | None, str | None]:
    text = b"EXPLAIN (FORMAT JSON) " + sql.encode("utf-8", "surrogateescape")
    try:
        async with conn.transaction(force_rollback=True):
            await conn.execute(
                b"SELECT set_config('statement_timeout', %s, true)", (EXPLAIN_TIMEOUT,)
            )
            cursor = AsyncRawCursor(conn)
            await cursor.execute(text, params or [])
            row: Any = await cursor.fetchone()
    except psycopg.Error as exc:
        # the class and SQLSTATE only: a server message may quote the sample's values
        return None, f"EXPLAIN failed: {type(exc).__name__} ({exc.sqlstate or 'no SQLSTATE'})"
    if row is None or not isinstance(row[0], list):
        return None, "EXPLAIN returned no plan"
    plan = redact_plan(row[0])
    return (plan if isinstance(plan, list) else None), None
