"""psycopg 3 Connection / AsyncConnection and psycopg_pool instrumentation, against a real
PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from instrument_helpers import (
    REQUEST_ID,
    ROUTE,
    SPAN_ID,
    TRACE_ID,
    PlanWaiter,
    plan_node,
    server_text_async,
    server_text_sync,
)
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool

import dbsight
from dbsight import _runtime
from dbsight.core import pools, request_scope
from dbsight.core._sqlcomment import parse_comment

SETUP = (
    "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);"
    "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g"
)


@pytest.fixture
def conn(pg_dsn: str) -> Any:
    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        setup.execute(SETUP)
    connection = psycopg.connect(pg_dsn)
    yield connection
    connection.close()


@pytest.fixture
async def aconn(pg_dsn: str) -> Any:
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as setup:
        await setup.execute(SETUP)
    connection = await psycopg.AsyncConnection.connect(pg_dsn)
    yield connection
    await connection.close()


def _workload(conn: Any) -> list[Any]:
    with conn.cursor() as cur:
        results = [
            cur.execute("SELECT id, name FROM items WHERE id <= %s ORDER BY id", (3,)).fetchall(),
            conn.execute("SELECT name FROM items WHERE id = %(id)s", {"id": 7}).fetchone(),
            cur.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("items"))
            ).fetchone(),
            cur.execute(b"UPDATE items SET name = name WHERE id <= 4").rowcount,
        ]
        cur.executemany("UPDATE items SET name = %s WHERE id = %s", [("item 1", 1), ("item 2", 2)])
        results.append(cur.rowcount)
        results.append(list(cur.stream("SELECT id FROM items WHERE id <= %s ORDER BY id", (5,))))
    conn.commit()
    return results


def test_one_event_per_query_with_identical_results(conn: Any, events: Any) -> None:
    plain = _workload(conn)
    factories = (conn.cursor_factory, conn.server_cursor_factory)
    handle = dbsight.instrument(conn)
    assert (handle.source, handle.system, handle.target) == ("psycopg", "postgresql", conn)
    assert _workload(conn) == plain
    assert [(e.operation, e.tables, e.rows) for e in events.events] == [
        ("select", ("items",), 3),
        ("select", ("items",), 1),
        ("select", ("items",), 1),
        ("update", ("items",), 4),
        ("update", ("items",), 2),
        ("select", ("items",), 5),
    ]
    assert events.events[2].sql == 'SELECT count(*) FROM "items"'  # a Composed statement, as sent
    for event in events.events:
        assert (event.system, event.source, event.database, event.error) == (
            "postgresql",
            "psycopg",
            conn.info.dbname,
            None,
        )

    handle.uninstrument()
    assert (conn.cursor_factory, conn.server_cursor_factory) == factories
    events.clear()
    _workload(conn)
    assert events.events == []


def test_error_recorded_and_reraised_unchanged(conn: Any, events: Any) -> None:
    dbsight.instrument(conn)
    with pytest.raises(psycopg.errors.UndefinedTable) as caught:
        conn.execute("SELECT * FROM missing_table")
    (event,) = events.events
    assert (event.error.type, event.error.sqlstate) == ("UndefinedTable", "42P01")
    assert events.raised[0] is caught.value
    conn.rollback()
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_copy_stream_abandoned_and_server_cursor(conn: Any, events: Any) -> None:
    dbsight.instrument(conn)
    with conn.cursor() as cur:
        with cur.copy("COPY items (id, name) TO STDOUT") as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
        cur.execute("CREATE TEMP TABLE copies (id int, name text)")
        events.clear()
        with cur.copy("COPY copies FROM STDIN") as copy:
            copy.write(data)
        assert [(e.sql, e.rows) for e in events.events] == [("COPY copies FROM STDIN", 100)]
        assert "/*" not in events.events[0].sql

        events.clear()
        for row in cur.stream("SELECT id FROM items ORDER BY id"):
            if row[0] == 10:
                break
        (event,) = events.events
        assert event.rows == 10

    events.clear()
    with conn.cursor("named") as named:
        named.itersize = 7
        named.execute("SELECT id FROM items WHERE id > %s ORDER BY id", (0,))
        assert named.fetchone() == (1,)
        assert len(named.fetchmany(20)) == 20
        assert len(list(named)) == 79  # iteration fetches 7 rows per round trip
    (event,) = events.events
    assert event.rows == 100 and event.operation == "select"
    conn.rollback()


def test_transaction_statements_and_pipeline(conn: Any, events: Any) -> None:
    dbsight.instrument(conn)
    with conn.transaction():
        conn.execute("UPDATE items SET name = name WHERE id = 1")
        with conn.transaction():  # savepoint
            conn.execute("SELECT 1")
    conn.execute("BEGIN")
    conn.execute("COMMIT")
    assert [e.operation for e in events.events] == ["update", "select", "tx", "tx"]

    events.clear()
    with conn.pipeline():
        cursors = [conn.execute("SELECT %s::int", (n,)) for n in range(3)]
        conn.execute("UPDATE items SET name = name WHERE id = 2")
    assert [c.fetchone() for c in cursors] == [(0,), (1,), (2,)]
    assert len(events.events) == 4
    conn.commit()


def test_raising_observer_and_disabled(
    conn: Any, raising_observer: Any, events: Any, configure_dbsight: Any
) -> None:
    dbsight.instrument(conn)
    assert conn.execute("SELECT 3").fetchone() == (3,)
    assert _runtime.recorder.failures.counts["tests.raising"] == 1
    collector = configure_dbsight(enabled=False)
    assert conn.execute("SELECT 3").fetchone() == (3,)
    assert collector.events == []


def test_explain_on_a_separate_connection(conn: Any, events: Any) -> None:
    dbsight.instrument(conn)
    conn.execute("INSERT INTO items VALUES (1000, 'mine')")
    assert conn.execute("SELECT name FROM items WHERE id = %s", (1000,)).fetchone() == ("mine",)
    ctx = events.contexts[-1]
    waiter = PlanWaiter()
    ctx.explainer.explain(ctx.sql, ctx.explain_params, 5.0, waiter)
    plan, reason = waiter.wait()
    assert reason is None and plan_node(plan)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert conn.execute("SELECT name FROM items WHERE id = 1000").fetchone() == ("mine",)
    conn.rollback()
    assert not events.matching("EXPLAIN")


@pytest.mark.parametrize("mode", ["full", "route"])
def test_sqlcommenter(conn: Any, configure_dbsight: Any, pg_admin_dsn: str, mode: str) -> None:
    configure_dbsight(sqlcommenter=mode)
    dbsight.instrument(conn)

    def run() -> None:
        with request_scope(REQUEST_ID, route=ROUTE, trace_id=TRACE_ID, span_id=SPAN_ID):
            conn.execute("SELECT pg_sleep(%s), 'a%%'", (0.34,))
        conn.rollback()

    seen = server_text_sync(pg_admin_dsn, "pg_sleep(", run)
    assert seen is not None
    tags = parse_comment(seen)
    assert tags["route"] == ROUTE
    assert ("traceparent" in tags) is (mode == "full")


# -- async -------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_async_connection(aconn: Any, events: Any) -> None:
    handle = dbsight.instrument(aconn)
    async with aconn.cursor() as cur:
        await cur.execute("SELECT id FROM items WHERE id <= %s", (4,))
        assert len(await cur.fetchall()) == 4
        await cur.executemany(
            "UPDATE items SET name = %s WHERE id = %s", [("item 1", 1), ("item 2", 2)]
        )
        assert [r async for r in cur.stream("SELECT id FROM items WHERE id <= 3 ORDER BY id")] == [
            (1,),
            (2,),
            (3,),
        ]
        async with cur.copy("COPY items TO STDOUT") as copy:
            async for _ in copy:
                pass
    async with aconn.cursor("named") as named:
        await named.execute("SELECT id FROM items")
        assert len([r async for r in named]) == 100
    with pytest.raises(psycopg.errors.UndefinedTable):
        await aconn.execute("SELECT * FROM missing_table")
    await aconn.rollback()
    assert [(e.sql.split()[0], e.rows, e.error is not None) for e in events.events] == [
        ("SELECT", 4, False),
        ("UPDATE", 2, False),
        ("SELECT", 3, False),
        ("COPY", 100, False),
        ("SELECT", 100, False),
        ("SELECT", None, True),
    ]

    events.clear()
    task = asyncio.ensure_future(aconn.execute("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (event,) = events.events
    assert event.error.type == "CancelledError"
    await aconn.rollback()

    events.clear()
    await aconn.execute("INSERT INTO items VALUES (1000, 'mine')")
    await aconn.execute("SELECT name FROM items WHERE id = %s", (1000,))
    ctx = events.contexts[-1]
    waiter = PlanWaiter()
    ctx.explainer.explain(ctx.sql, ctx.explain_params, 5.0, waiter)
    plan, reason = await waiter.await_()
    assert reason is None and plan_node(plan)
    assert await (await aconn.execute("SELECT name FROM items WHERE id = 1000")).fetchone() == (
        "mine",
    )
    await aconn.rollback()

    handle.uninstrument()
    assert aconn.cursor_factory is psycopg.AsyncCursor


@pytest.mark.asyncio
async def test_async_sqlcommenter(aconn: Any, configure_dbsight: Any, pg_admin_dsn: str) -> None:
    configure_dbsight(sqlcommenter="route")
    dbsight.instrument(aconn)
    with request_scope(REQUEST_ID, route=ROUTE):
        seen = await server_text_async(
            pg_admin_dsn, "pg_sleep(0.35", aconn.execute("SELECT pg_sleep(0.35)")
        )
    assert seen is not None and parse_comment(seen) == {"route": ROUTE}


# -- pools -------------------------------------------------------------------------------------
def test_pool_connections_checks_and_gauges(pg_dsn: str, events: Any) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        setup.execute(SETUP)
    with ConnectionPool(
        pg_dsn, min_size=2, max_size=4, check=ConnectionPool.check_connection, open=True
    ) as pool:
        pool.wait()
        with pool.connection() as in_use:  # handed out before instrumenting
            handle = dbsight.instrument(pool)
            assert dbsight.instrument(pool) is handle
            in_use.execute("SELECT 1")
            assert events.events == []  # adopted on its next checkout
            usage = pools.read()[handle.pool_name]
            assert (usage.used, usage.max_size) == (1, 4)

        with pool.connection() as a, pool.connection() as b, pool.connection() as c:
            for n, connection in enumerate((a, b, c)):
                assert connection.execute("SELECT %s::int", (n,)).fetchone() == (n,)
        assert len(events.events) == 3  # the checks' empty statements are not queries
        assert {e.source for e in events.events} == {"psycopg"}

        handle.uninstrument()
        assert pool._check is ConnectionPool.check_connection
        assert handle.pool_name not in pools.read()
        events.clear()
        with pool.connection() as connection:
            assert connection.cursor_factory is psycopg.Cursor
            connection.execute("SELECT 1")
        assert events.events == []


@pytest.mark.asyncio
async def test_async_pool(pg_dsn: str, events: Any) -> None:
    async with AsyncConnectionPool(pg_dsn, min_size=1, max_size=2, open=False) as pool:
        handle = dbsight.instrument(pool)
        await pool.wait()
        async with pool.connection() as connection:
            cur = await connection.execute("SELECT 5")
            assert await cur.fetchone() == (5,)
        assert [e.sql for e in events.events] == ["SELECT 5"]
        assert pools.read()[handle.pool_name].max_size == 2
        handle.uninstrument()
        assert pool._check is None


def test_cursors_made_while_instrumented_record_nothing_afterwards(conn: Any, events: Any) -> None:
    handle = dbsight.instrument(conn)
    cur = conn.cursor()
    named = conn.cursor("kept")
    handle.uninstrument()
    assert cur.execute("SELECT 1").fetchone() == (1,)
    named.execute("SELECT 2")
    assert named.fetchall() == [(2,)]
    named.close()
    assert events.events == []
    conn.rollback()
