"""Running EXPLAIN on the plan tests' database the way the slow log does."""

from __future__ import annotations

from typing import Any

import psycopg


def explain(dsn: str, sql: str, *settings: str, analyze: bool = True) -> Any:
    """The plan of ``sql`` under ``settings`` (``SET LOCAL ...``), rolled back."""
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    with psycopg.connect(dsn) as conn:
        # no parallel workers unless asked: the figures per node stay the same on every run
        for setting in ("max_parallel_workers_per_gather = 0", *settings):
            conn.execute(f"SET LOCAL {setting}")
        plan = conn.execute(f"EXPLAIN ({options}) {sql}").fetchone()[0]  # type: ignore[index]
        conn.rollback()
    return plan


def table_stats(dsn: str, relations: list[str]) -> Any:
    from dbsight.advise._plan import parse_table_stats, table_stats_query

    query = table_stats_query(relations)
    assert query is not None
    with psycopg.connect(dsn) as conn:
        return parse_table_stats(conn.execute(query).fetchone()[0])  # type: ignore[index]
