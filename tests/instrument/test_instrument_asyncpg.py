"""asyncpg Connection and Pool instrumentation, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import asyncpg
import pytest
from instrument_helpers import (
    REQUEST_ID,
    ROUTE,
    SPAN_ID,
    TRACE_ID,
    PlanWaiter,
    plan_node,
    server_text_async,
)

import dbsight
from dbsight import _runtime
from dbsight.core import pools, request_scope
from dbsight.core._sqlcomment import parse_comment

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def con(pg_dsn: str) -> Any:
    connection = await asyncpg.connect(pg_dsn)
    await connection.execute(
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);"
        "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g;"
    )
    yield connection
    await connection.close()


async def _workload(con: Any) -> list[Any]:
    """Every query method once; returns the results."""
    return [
        await con.fetch("SELECT id, name FROM items WHERE id <= $1 ORDER BY id", 5),
        await con.fetchrow("SELECT name FROM items WHERE id = $1", 7),
        await con.fetchval("SELECT count(*) FROM items"),
        await con.execute("UPDATE items SET name = name WHERE id <= $1", 3),
        await con.execute("SELECT 1"),
        await con.fetchmany("SELECT $1::int + 1", [(1,), (2,)]),
        await con.executemany(
            "UPDATE items SET name = $2 WHERE id = $1", [(1, "item 1"), (2, "item 2")]
        ),
    ]


async def test_one_event_per_query_with_identical_results(con: Any, events: Any) -> None:
    plain = await _workload(con)
    assert events.events == []  # not instrumented yet
    original_class = type(con)

    handle = dbsight.instrument(con)
    assert handle.source == "asyncpg" and handle.system == "postgresql" and handle.target is con
    assert isinstance(con, asyncpg.Connection) and type(con) is not original_class
    instrumented = await _workload(con)

    assert instrumented == plain
    assert [(e.operation, e.tables, e.rows) for e in events.events] == [
        ("select", ("items",), 5),
        ("select", ("items",), 1),
        ("select", ("items",), 1),
        ("update", ("items",), 3),
        ("select", (), 1),
        ("select", (), 2),
        ("update", ("items",), None),
    ]
    database = con._params.database
    for event in events.events:
        assert (event.system, event.source, event.database, event.error) == (
            "postgresql",
            "asyncpg",
            database,
            None,
        )
        assert event.duration_s > 0


async def test_error_is_recorded_with_sqlstate_and_reraised_unchanged(
    con: Any, events: Any
) -> None:
    dbsight.instrument(con)
    with pytest.raises(asyncpg.UndefinedTableError) as caught:
        await con.fetch("SELECT * FROM missing_table WHERE id = $1", 1)
    (event,) = events.events
    assert event.error.type == "UndefinedTableError" and event.error.sqlstate == "42P01"
    assert event.operation == "select" and event.tables == ("missing_table",)
    assert events.raised[0] is caught.value  # the very exception the driver raised

    with pytest.raises(asyncpg.UniqueViolationError):
        await con.execute("INSERT INTO items VALUES (1, 'dup')")
    assert events.events[-1].error.sqlstate == "23505"
    assert await con.fetchval("SELECT 1") == 1  # the connection is still usable


async def test_cancellation_propagates_and_is_recorded(con: Any, events: Any) -> None:
    dbsight.instrument(con)
    task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (event,) = events.matching("pg_sleep")
    assert event.error is not None and event.error.type == "CancelledError"
    assert 0.2 < event.duration_s < 4
    assert await con.fetchval("SELECT 2") == 2


async def test_uninstrument_restores_the_class_and_stops_recording(con: Any, events: Any) -> None:
    original_class = type(con)
    handle = dbsight.instrument(con)
    assert dbsight.instrument(con) is handle  # the same live handle, not a second layer
    await con.fetchval("SELECT 1")
    assert len(events.events) == 1

    handle.uninstrument()
    handle.uninstrument()  # idempotent
    assert type(con) is original_class
    assert handle not in dbsight.InstrumentationHandle.live()
    await con.fetchval("SELECT 1")
    async with con.transaction():
        async for _ in con.cursor("SELECT 1"):
            pass
    assert len(events.events) == 1

    again = dbsight.instrument(con)
    assert again is not handle
    await con.fetchval("SELECT 1")
    assert len(events.events) == 2


async def test_cursor_iteration_is_one_event(con: Any, events: Any) -> None:
    dbsight.instrument(con)
    async with con.transaction():
        rows = [r async for r in con.cursor("SELECT * FROM items ORDER BY id", prefetch=7)]
        assert len(rows) == 100
        (event,) = events.matching("FROM items ORDER BY id")
        assert event.rows == 100 and event.operation == "select"

        # abandoned half-way: recorded with the rows actually read
        events.clear()
        async for row in con.cursor("SELECT * FROM items WHERE id > $1 ORDER BY id", 0):
            if row["id"] == 10:
                break
        await asyncio.sleep(0)
        (event,) = events.events
        assert event.rows == 10

        # an explicit cursor: its fetches add up into one event
        events.clear()
        cursor = await con.cursor("SELECT * FROM items ORDER BY id")
        assert isinstance(cursor, asyncpg.cursor.Cursor)
        assert len(await cursor.fetch(60)) == 60
        assert (await cursor.fetchrow())["id"] == 61
        assert await cursor.forward(10) == 10
        assert len(await cursor.fetch(100)) == 29  # exhausted: the event is recorded
        (event,) = events.events
        assert event.rows == 90


async def test_prepared_statements_and_copy(con: Any, events: Any) -> None:
    dbsight.instrument(con)
    stmt = await con.prepare("SELECT name FROM items WHERE id = $1")
    assert isinstance(stmt, asyncpg.prepared_stmt.PreparedStatement)
    assert await stmt.fetchval(3) == "item 3"
    assert (await stmt.fetchrow(4))["name"] == "item 4"
    assert len(await stmt.fetch(5)) == 1
    plan = await stmt.explain(5)  # runs through the connection: recorded once, as EXPLAIN
    assert plan[0]["Plan"]["Node Type"]
    assert [e.rows for e in events.events[:3]] == [1, 1, 1]
    assert len(events.matching("EXPLAIN")) == 1
    assert len(events.events) == 4

    events.clear()
    out = io.BytesIO()
    assert await con.copy_from_table("items", output=out) == "COPY 100"
    await con.execute("CREATE TABLE copies (id int, name text)")
    events.clear()
    assert await con.copy_records_to_table("copies", records=[(1, "x"), (2, "y")]) == "COPY 2"
    assert await con.copy_to_table("copies", source=io.BytesIO(out.getvalue())) == "COPY 100"
    assert (
        await con.copy_from_query("SELECT * FROM items WHERE id < $1", 4, output=io.BytesIO())
        == "COPY 3"
    )
    assert [(e.sql, e.rows) for e in events.events] == [
        ('COPY "copies" FROM STDIN', 2),
        ('COPY "copies" FROM STDIN', 100),
        ("COPY (SELECT * FROM items WHERE id < $1) TO STDOUT", 3),
    ]


async def test_transaction_statements_are_tx(con: Any, events: Any) -> None:
    dbsight.instrument(con)
    async with con.transaction(), con.transaction():  # a savepoint
        await con.execute("UPDATE items SET name = 'x' WHERE id = 1")
    with pytest.raises(RuntimeError):
        async with con.transaction(isolation="serializable", readonly=True):
            await con.fetchval("SELECT 1")
            raise RuntimeError("roll back")
    operations = [(e.sql.split()[0].upper().rstrip(";"), e.operation) for e in events.events]
    assert operations == [
        ("BEGIN", "tx"),
        ("SAVEPOINT", "tx"),
        ("UPDATE", "update"),
        ("RELEASE", "tx"),
        ("COMMIT", "tx"),
        ("BEGIN", "tx"),
        ("SELECT", "select"),
        ("ROLLBACK", "tx"),
    ]


async def test_pool_connections_present_and_future_and_gauges(pg_dsn: str, events: Any) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=3)
    try:
        original_class = type(pool._holders[-1]._con)
        handle = dbsight.instrument(pool)
        assert dbsight.instrument(pool) is handle

        async def query(n: int) -> Any:
            async with pool.acquire() as c:
                await asyncio.sleep(0.05)
                return await c.fetchval("SELECT $1::int", n)

        assert sorted(await asyncio.gather(*(query(n) for n in range(3)))) == [0, 1, 2]
        assert await pool.fetchval("SELECT 42") == 42  # Pool.* delegates to a connection
        assert pool.get_size() == 3  # two connections were created after instrumenting
        assert (
            len(events.matching("SELECT $1::int")) == 3 and len(events.matching("SELECT 42")) == 1
        )
        # the pool resets each connection it gets back: not an application query
        assert not events.matching("pg_advisory_unlock_all")

        usage = pools.read()[handle.pool_name]
        assert (usage.idle, usage.used, usage.max_size) == (3, 0, 3)
        async with pool.acquire():
            usage = pools.read()[handle.pool_name]
            assert (usage.idle, usage.used) == (2, 1)

        handle.uninstrument()
        assert handle.pool_name not in pools.read()
        assert pool._init is None
        assert all(type(h._con) is original_class for h in pool._holders if h._con is not None)
        events.clear()
        assert await pool.fetchval("SELECT 1") == 1
        assert events.events == []
    finally:
        await pool.close()


async def test_pool_connection_proxy_is_refused(pg_dsn: str, events: Any) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1)
    try:
        async with pool.acquire() as c:
            with pytest.raises(TypeError, match="instrument the pool"):
                dbsight.instrument(c)
    finally:
        await pool.close()


async def test_raising_observer_does_not_break_the_query(
    con: Any, raising_observer: Any, events: Any
) -> None:
    dbsight.instrument(con)
    assert await con.fetchval("SELECT 7") == 7
    assert _runtime.recorder.failures.counts["tests.raising"] == 1
    assert len(events.events) == 1


async def test_disabled_records_nothing(con: Any, configure_dbsight: Any) -> None:
    collector = configure_dbsight(enabled=False)
    dbsight.instrument(con)
    assert await con.fetchval("SELECT 1") == 1
    async with con.transaction():
        assert len([r async for r in con.cursor("SELECT * FROM items")]) == 100
    assert collector.events == []


async def test_explain_runs_on_another_connection_while_the_app_transaction_is_open(
    con: Any, events: Any
) -> None:
    dbsight.instrument(con)
    async with con.transaction():
        await con.execute("INSERT INTO items VALUES (1000, 'mine')")
        assert await con.fetchval("SELECT name FROM items WHERE id = $1", 1000) == "mine"
        ctx = events.contexts[-1]
        waiter = PlanWaiter()
        ctx.explainer.explain(ctx.sql, ctx.explain_params, 5.0, waiter)
        plan, reason = await waiter.await_()
        assert reason is None
        assert plan_node(plan)["Node Type"] in (
            "Index Scan",
            "Index Only Scan",
            "Bitmap Heap Scan",
            "Seq Scan",
        )
        # the application's transaction is untouched and still sees its own row
        assert con.is_in_transaction()
        assert await con.fetchval("SELECT name FROM items WHERE id = 1000") == "mine"
    assert len(waiter.calls) == 1
    assert not events.matching("EXPLAIN")  # the explain itself is never recorded

    waiter = PlanWaiter()
    ctx.explainer.explain("SELECT * FROM no_such_table", (), 5.0, waiter)
    plan, reason = await waiter.await_()
    assert plan is None and "UndefinedTable" in reason


async def test_slow_query_log_gets_a_plan(con: Any, configure_dbsight: Any, tmp_path: Any) -> None:
    log = tmp_path / "slow.jsonl"
    configure_dbsight(slow_query_threshold_ms=50, explain_slow_queries=True, slow_query_log=log)
    dbsight.instrument(con)
    await con.fetchval("SELECT pg_sleep(0.1), count(*) FROM items WHERE id > $1", 3)
    for _ in range(200):
        if log.exists() and log.read_text().strip():
            break
        await asyncio.sleep(0.025)
    text = log.read_text()
    assert "pg_sleep" in text and '"plan"' in text, text


@pytest.mark.parametrize("mode", ["full", "route"])
async def test_sqlcommenter_comment_reaches_the_server(
    con: Any, configure_dbsight: Any, pg_admin_dsn: str, mode: str
) -> None:
    collector = configure_dbsight(sqlcommenter=mode)
    dbsight.instrument(con)
    with request_scope(REQUEST_ID, route=ROUTE, trace_id=TRACE_ID, span_id=SPAN_ID):
        seen = await server_text_async(
            pg_admin_dsn, "pg_sleep(0.31", con.fetchval("SELECT pg_sleep(0.31)")
        )
    assert seen is not None
    tags = parse_comment(seen)
    if mode == "full":
        assert tags == {
            "route": ROUTE,
            "request_id": REQUEST_ID,
            "traceparent": f"00-{TRACE_ID}-{SPAN_ID}-01",
        }
    else:
        assert tags == {"route": ROUTE}
    (event,) = collector.matching("pg_sleep")
    assert event.sql == "SELECT pg_sleep(0.31)"  # recorded without the comment
    assert (event.route, event.request_id) == (ROUTE, REQUEST_ID)


async def test_objects_made_while_instrumented_record_nothing_afterwards(
    con: Any, events: Any
) -> None:
    handle = dbsight.instrument(con)
    stmt = await con.prepare("SELECT 1")
    factory = con.cursor("SELECT 1")
    handle.uninstrument()
    assert await stmt.fetchval() == 1
    async with con.transaction():
        assert [r[0] async for r in factory] == [1]
    assert events.events == []
