"""Every client instrumented at once against real PostgreSQL, every sink on: what a user
reads afterwards (Prometheus exposition, slow-query log, dbsight.stats.top) adds up."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import asyncpg
import psycopg
import psycopg_pool
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

import dbsight


def _samples(registry, name: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _slow_sink():
    from dbsight.export.slowlog import SlowQuerySink

    return next(s for s in dbsight.get_runtime().sinks if isinstance(s, SlowQuerySink))


async def test_all_clients_feed_metrics_slow_log_and_stats(pg_dsn, tmp_path: Path, fresh_runtime):
    slow_log = tmp_path / "slow.jsonl"
    runtime = dbsight.configure(
        dbsight.Settings(
            tracing_enabled=False,
            slow_query_threshold_ms=40,
            slow_query_log=slow_log,
            explain_interval_s=0,
        )
    )
    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        setup.execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);"
            "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g"
        )

    sa_url = pg_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(sa_url)
    async_engine = create_async_engine(pg_dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    apg_pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    apg_conn = await asyncpg.connect(pg_dsn)
    pg_conn = psycopg.connect(pg_dsn, autocommit=True)
    pool = psycopg_pool.ConnectionPool(pg_dsn, min_size=1, max_size=2, open=True)
    handles = [
        dbsight.instrument(t) for t in (engine, async_engine, apg_pool, apg_conn, pg_conn, pool)
    ]
    lookup = "SELECT name FROM items WHERE id = {}"
    try:
        with dbsight.request_scope(route="/items/{id}"):
            with engine.connect() as conn:
                conn.execute(text(lookup.format(":id")), {"id": 1}).scalar_one()
            async with async_engine.connect() as conn:
                (await conn.execute(text(lookup.format(":id")), {"id": 2})).scalar_one()
            await apg_pool.fetchval(lookup.format("$1"), 3)
            await apg_conn.fetchval(lookup.format("$1"), 4)
            pg_conn.execute(lookup.format("%s"), (5,)).fetchone()
            with pool.connection() as conn:
                conn.execute(lookup.format("%s"), (6,)).fetchone()
            # one slow SELECT (its plan is taken on a separate connection) and one error
            await apg_conn.fetchval("SELECT count(*) FROM items WHERE pg_sleep(0.05) IS NOT NULL "
                                    "AND id = $1", 7)
            with pytest.raises(asyncpg.UndefinedTableError):
                await apg_conn.fetch("SELECT * FROM missing_table WHERE id = $1", 1)
        # pool gauges are read from the live pools at scrape time
        pools = _samples(runtime.registry, "db_client_connections")
        assert {dict(k)["state"] for k in pools} == {"idle", "used"}
        assert len({dict(k)["pool"] for k in pools}) == 4  # 2 SQLAlchemy, asyncpg, psycopg_pool
        deadline = time.monotonic() + 10
        while _slow_sink().pending_plans and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        for handle in handles:
            handle.uninstrument()
        pool.close()
        pg_conn.close()
        await apg_conn.close()
        await apg_pool.close()
        await async_engine.dispose()
        engine.dispose()

    # stats.top(): the six lookups, whatever their parameter style, are one fingerprint
    by_text = {row.normalized: row for row in dbsight.stats.top(50, order_by="calls")}
    lookups = [row for row in by_text.values() if row.tables == ("items",) and "name" in row.normalized
               and "count" not in row.normalized]
    assert len(lookups) == 1, by_text.keys()
    assert lookups[0].calls == 6 and lookups[0].rows == 6  # one row each, whatever the client
    assert lookups[0].rows_calls == 6 and lookups[0].mean_rows == 1.0
    assert lookups[0].routes == {"/items/{id}": 6}
    errors = [row for row in by_text.values() if row.tables == ("missing_table",)]
    assert errors and errors[0].errors == 1

    # Prometheus exposition
    ops = _samples(runtime.registry, "db_client_operations_total")
    key = (("operation", "select"), ("outcome", "ok"), ("system", "postgresql"), ("table", "items"))
    assert ops[key] == 7
    err_key = (("operation", "select"), ("outcome", "error"), ("system", "postgresql"),
               ("table", "missing_table"))
    assert ops[err_key] == 1
    slow = _samples(runtime.registry, "db_client_slow_operations_total")
    assert slow[(("operation", "select"), ("system", "postgresql"), ("table", "items"))] == 1

    # the slow-query log: one JSON line, normalized text only, with the plan
    (line,) = slow_log.read_text().splitlines()
    record = json.loads(line)
    assert record["route"] == "/items/{id}" and record["duration_ms"] >= 40
    # the literal in none of its forms (a bare 0.05 may be part of a cost or a time)
    assert "pg_sleep" in record["normalized"]
    assert "'0.05'" not in line and "(0.05)" not in line and "params" not in record
    assert record["plan_summary"]["node_type"]
    assert "sql" not in record and "params" not in record
