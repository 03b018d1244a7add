"""The plan of a regressed statement on the target, and what the plan analyzer says of it.

``EXPLAIN (FORMAT JSON)`` (never ANALYZE: nothing runs) of the slowest replayed sample, with
its own parameters, inside a transaction that is rolled back, under a statement timeout.
It goes through the extended protocol, which takes one statement only: a text of several is
refused by the server instead of having its other statements run. The plan's constants (the
sample's values, in its conditions) are masked before it is kept (`redact_plan`, as the slow
log does), so the report shows no literal. Findings come from
``dbsight.advise.analyze_plan`` where this dbsight has it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import AsyncRawCursor

from ..export.slowlog import redact_plan
from ..sql import analyze
from ._compare import FingerprintResult
from ._target import connect

EXPLAIN_TIMEOUT = "30s"
_EXPLAINABLE = frozenset({"select", "insert", "update", "delete"})


def _plan_analyzer() -> Callable[[Any], list[Any]] | None:
    try:
        from ..advise import analyze_plan  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    return analyze_plan  # type: ignore[no-any-return,unused-ignore]


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
                result.findings = [finding.to_dict() for finding in analyzer(plan)]
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
