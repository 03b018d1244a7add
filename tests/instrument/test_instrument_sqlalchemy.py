"""SQLAlchemy Engine / AsyncEngine instrumentation: PostgreSQL (psycopg, asyncpg), MariaDB
(pymysql), SQLite (sqlite3, aiosqlite), against real servers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
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
from sqlalchemy.ext.asyncio import create_async_engine

import dbsight
from dbsight import _runtime
from dbsight.core import pools, request_scope
from dbsight.core._sqlcomment import parse_comment


def _url(dsn: str, driver: str) -> str:
    scheme, rest = dsn.split("://", 1)
    return f"{scheme.split('+')[0]}+{driver}://{rest}"


@pytest.fixture
def pg_engine(pg_dsn: str) -> Any:
    engine = sa.create_engine(_url(pg_dsn, "psycopg"), pool_size=2, max_overflow=1)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);"
            "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g"
        )
    yield engine
    engine.dispose()


@pytest.fixture
async def async_pg_engine(pg_dsn: str) -> Any:
    engine = create_async_engine(_url(pg_dsn, "asyncpg"), pool_size=2)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        await conn.exec_driver_sql(
            "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g"
        )
    yield engine
    await engine.dispose()


@pytest.fixture
def mysql_engine(mysql_dsn: str) -> Any:
    engine = sa.create_engine(_url(mysql_dsn, "pymysql"), pool_pre_ping=True)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id int PRIMARY KEY, name varchar(50) NOT NULL)")
        conn.execute(
            sa.text("INSERT INTO items VALUES (:id, :name)"),
            [{"id": i, "name": f"item {i}"} for i in range(1, 101)],
        )
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Any) -> Any:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'test.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute(
            sa.text("INSERT INTO items VALUES (:id, :name)"),
            [{"id": i, "name": f"item {i}"} for i in range(1, 101)],
        )
    yield engine
    engine.dispose()


def _workload(engine: Any) -> list[Any]:
    with engine.begin() as conn:
        return [
            conn.execute(
                sa.text("SELECT id, name FROM items WHERE id <= :n ORDER BY id"), {"n": 3}
            ).all(),
            conn.execute(sa.text("UPDATE items SET name = name WHERE id <= :n"), {"n": 4}).rowcount,
            conn.execute(
                sa.text("UPDATE items SET name = :name WHERE id = :id"),
                [{"id": 1, "name": "item 1"}, {"id": 2, "name": "item 2"}],
            ).rowcount,
            conn.exec_driver_sql("SELECT count(*) FROM items").scalar(),
        ]


def _expected(system: str) -> list[tuple[str, tuple[str, ...], int | None]]:
    # sqlite3 does not count the rows of a SELECT before they are fetched: unknown, not 0
    selected = (3, 1) if system != "sqlite" else (None, None)
    return [
        ("select", ("items",), selected[0]),
        ("update", ("items",), 4),
        ("update", ("items",), 2),
        ("select", ("items",), selected[1]),
    ]


@pytest.mark.parametrize(
    "engine_fixture, system",
    [("pg_engine", "postgresql"), ("mysql_engine", "mysql"), ("sqlite_engine", "sqlite")],
)
def test_one_event_per_statement_with_identical_results(
    request: Any, events: Any, engine_fixture: str, system: str
) -> None:
    engine = request.getfixturevalue(engine_fixture)
    plain = _workload(engine)
    handle = dbsight.instrument(engine)
    assert (handle.source, handle.system, handle.target) == ("sqlalchemy", system, engine)
    assert _workload(engine) == plain
    assert [(e.operation, e.tables, e.rows) for e in events.events] == _expected(system)
    for event in events.events:
        assert (event.system, event.source, event.error) == (system, "sqlalchemy", None)
        assert event.database == engine.url.database


def test_error_recorded_with_sqlstate_and_exception_unchanged(pg_engine: Any, events: Any) -> None:
    dbsight.instrument(pg_engine)
    with pytest.raises(sa.exc.ProgrammingError) as caught, pg_engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM missing_table WHERE id = :id"), {"id": 1})
    (event,) = events.events
    assert event.error.sqlstate == "42P01" and event.error.type == "UndefinedTable"
    assert (
        events.raised[0] is caught.value.orig
    )  # the driver's error, wrapped by SQLAlchemy as usual
    assert type(caught.value.orig).__module__.startswith("psycopg")


def test_mysql_error_and_sqlite_error(mysql_engine: Any, sqlite_engine: Any, events: Any) -> None:
    dbsight.instrument(mysql_engine)
    dbsight.instrument(sqlite_engine)
    with pytest.raises(sa.exc.ProgrammingError), mysql_engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM missing_table"))
    with pytest.raises(sa.exc.OperationalError), sqlite_engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM missing_table"))
    assert [(e.system, e.error.type) for e in events.events] == [
        ("mysql", "ProgrammingError"),
        ("sqlite", "OperationalError"),
    ]


def test_uninstrument_restores_the_engine_exactly(pg_engine: Any, events: Any) -> None:
    @sa.event.listens_for(pg_engine, "after_cursor_execute")
    def users_own_listener(*args: Any) -> None:
        pass

    def state(engine: Any) -> tuple[Any, ...]:
        return (
            list(engine.dispatch.before_cursor_execute),
            list(engine.dispatch.after_cursor_execute),
            list(engine.dialect.dispatch.handle_error),
            engine.__dict__.get("_has_events"),
            engine.dialect.__dict__.get("_has_events"),
            dict(engine.dialect.__dict__),
        )

    before = state(pg_engine)
    handle = dbsight.instrument(pg_engine)
    assert dbsight.instrument(pg_engine) is handle
    # an execution_options() engine shares the dialect, and so the instrumentation
    assert dbsight.instrument(pg_engine.execution_options(isolation_level="AUTOCOMMIT")) is handle
    assert state(pg_engine)[:5] == before[:5]  # no event listener of ours
    with pg_engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert len(events.events) == 1

    handle.uninstrument()
    handle.uninstrument()
    assert state(pg_engine) == before
    with pg_engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert len(events.events) == 1


def test_uninstrument_restores_event_flags_of_a_plain_engine(
    sqlite_engine: Any, events: Any
) -> None:
    assert "_has_events" not in sqlite_engine.__dict__
    dbsight.instrument(sqlite_engine).uninstrument()
    assert "_has_events" not in sqlite_engine.__dict__
    assert "_has_events" not in sqlite_engine.dialect.__dict__


def test_several_engines_are_all_observed(
    pg_engine: Any, mysql_engine: Any, sqlite_engine: Any, events: Any
) -> None:
    for engine in (pg_engine, mysql_engine, sqlite_engine):
        dbsight.instrument(engine)
    for engine in (sqlite_engine, pg_engine, mysql_engine, pg_engine):
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT name FROM items WHERE id = :id"), {"id": 5}).scalar_one()
    assert [e.system for e in events.events] == ["sqlite", "postgresql", "mysql", "postgresql"]
    assert len(dbsight.InstrumentationHandle.live()) == 3


def test_transaction_control_and_pre_ping_are_not_application_queries(
    mysql_engine: Any, pg_engine: Any, events: Any
) -> None:
    pinging = sa.create_engine(pg_engine.url, pool_pre_ping=True)
    try:
        for engine in (mysql_engine, pinging):
            dbsight.instrument(engine)
            for _ in range(2):  # the second checkout pings the pooled connection
                with engine.begin() as conn:
                    conn.execute(sa.text("UPDATE items SET name = name WHERE id = 1"))
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1 FROM items WHERE id = 1"))
                    conn.rollback()
        noise = [e for e in events.events if e.operation not in ("update", "select")]
        assert all(e.operation in ("tx", "other") for e in noise), [
            (e.sql, e.operation) for e in noise
        ]
        assert len(events.of("update")) == 4 and len(events.of("select")) == 4, [(e.sql, e.system) for e in events.events]
    finally:
        pinging.dispose()


def test_pool_gauges(pg_engine: Any, events: Any) -> None:
    handle = dbsight.instrument(pg_engine, pool_name="main-db")
    assert handle.pool_name == "main-db"
    with pg_engine.connect() as a, pg_engine.connect():
        a.exec_driver_sql("SELECT 1")
        usage = pools.read()["main-db"]
        assert (usage.used, usage.max_size) == (2, 3)
    usage = pools.read()["main-db"]
    assert (usage.idle, usage.used) == (2, 0)
    handle.uninstrument()
    assert "main-db" not in pools.read()


def test_raising_observer_and_disabled(
    sqlite_engine: Any, raising_observer: Any, events: Any, configure_dbsight: Any
) -> None:
    dbsight.instrument(sqlite_engine)
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM items").scalar() == 100
    assert _runtime.recorder.failures.counts["tests.raising"] == 1
    assert len(events.events) == 1

    collector = configure_dbsight(enabled=False)
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM items").scalar() == 100
    assert collector.events == []


def test_explain_on_a_separate_connection_while_the_app_transaction_is_open(
    pg_engine: Any, events: Any
) -> None:
    dbsight.instrument(pg_engine)
    with pg_engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO items VALUES (1000, 'mine')"))
        assert (
            conn.execute(sa.text("SELECT name FROM items WHERE id = :id"), {"id": 1000}).scalar()
            == "mine"
        )
        ctx = events.contexts[-1]
        waiter = PlanWaiter()
        ctx.explainer.explain(ctx.sql, ctx.explain_params, 5.0, waiter)
        plan, reason = waiter.wait()
        assert reason is None and plan_node(plan)
        assert conn.in_transaction()
        assert conn.execute(sa.text("SELECT name FROM items WHERE id = 1000")).scalar() == "mine"
        conn.rollback()
    assert not events.matching("EXPLAIN")
    with pg_engine.connect() as conn:  # the application's transaction was never committed
        assert conn.execute(sa.text("SELECT count(*) FROM items WHERE id = 1000")).scalar() == 0


def test_no_explainer_for_mysql_and_sqlite(
    mysql_engine: Any, sqlite_engine: Any, events: Any
) -> None:
    for engine in (mysql_engine, sqlite_engine):
        dbsight.instrument(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    assert [ctx.explainer for ctx in events.contexts] == [None, None]


@pytest.mark.parametrize("mode", ["full", "route"])
@pytest.mark.parametrize("with_params", [True, False])
def test_sqlcommenter_sync(
    pg_engine: Any, configure_dbsight: Any, pg_admin_dsn: str, mode: str, with_params: bool
) -> None:
    configure_dbsight(sqlcommenter=mode)
    dbsight.instrument(pg_engine)

    def run() -> None:
        with (
            request_scope(REQUEST_ID, route=ROUTE, trace_id=TRACE_ID, span_id=SPAN_ID),
            pg_engine.connect() as conn,
        ):
            if with_params:  # pyformat with parameters: the comment's '%' must be doubled
                conn.execute(sa.text("SELECT pg_sleep(0.32), :x || '%'"), {"x": "a"})
            else:
                conn.exec_driver_sql("SELECT pg_sleep(0.32)")

    seen = server_text_sync(pg_admin_dsn, "pg_sleep(0.32", run)
    assert seen is not None
    expected = {"route": ROUTE}
    if mode == "full":
        expected.update(request_id=REQUEST_ID, traceparent=f"00-{TRACE_ID}-{SPAN_ID}-01")
    assert parse_comment(seen) == expected
    assert "%%" not in seen


# -- AsyncEngine ------------------------------------------------------------
@pytest.mark.asyncio
async def test_async_engine_one_event_and_one_span_per_query(
    async_pg_engine: Any, span_exporter: Any
) -> None:
    exporter, events = span_exporter
    handle = dbsight.instrument(async_pg_engine)
    assert dbsight.instrument(async_pg_engine.sync_engine) is handle
    assert handle.target is async_pg_engine
    async with async_pg_engine.begin() as conn:
        rows = (
            await conn.execute(sa.text("SELECT id FROM items WHERE id <= :n ORDER BY id"), {"n": 3})
        ).all()
        assert [r.id for r in rows] == [1, 2, 3]
        result = await conn.execute(
            sa.text("UPDATE items SET name = name WHERE id <= :n"), {"n": 5}
        )
        assert result.rowcount == 5
    assert [(e.operation, e.rows, e.source) for e in events.events] == [
        ("select", 3, "sqlalchemy"),
        ("update", 5, "sqlalchemy"),
    ]
    spans = [s for s in exporter.get_finished_spans() if s.kind.name == "CLIENT"]
    assert [s.name for s in spans] == ["SELECT items", "UPDATE items"]


@pytest.mark.asyncio
async def test_async_engine_cancellation_error_and_explain(
    async_pg_engine: Any, events: Any
) -> None:
    dbsight.instrument(async_pg_engine)

    async def sleep() -> None:
        async with async_pg_engine.connect() as conn:
            await conn.execute(sa.text("SELECT pg_sleep(5)"))

    task = asyncio.ensure_future(sleep())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (event,) = events.matching("pg_sleep")
    assert event.error.type == "CancelledError"

    events.clear()
    async with async_pg_engine.connect() as conn:
        with pytest.raises(sa.exc.ProgrammingError):
            await conn.execute(sa.text("SELECT * FROM missing_table"))
    (event,) = events.events
    assert event.error.sqlstate == "42P01"

    async with async_pg_engine.connect() as conn:
        await conn.execute(sa.text("INSERT INTO items VALUES (1000, 'mine')"))
        assert (
            await conn.execute(sa.text("SELECT name FROM items WHERE id = :id"), {"id": 1000})
        ).scalar() == "mine"
        ctx = events.contexts[-1]
        waiter = PlanWaiter()
        ctx.explainer.explain(ctx.sql, ctx.explain_params, 5.0, waiter)
        plan, reason = await waiter.await_()
        assert reason is None and plan_node(plan)
        assert (
            await conn.execute(sa.text("SELECT name FROM items WHERE id = 1000"))
        ).scalar() == "mine"
    assert not events.matching("EXPLAIN")


@pytest.mark.asyncio
async def test_async_engine_sqlcommenter(
    async_pg_engine: Any, configure_dbsight: Any, pg_admin_dsn: str
) -> None:
    configure_dbsight(sqlcommenter="full")
    dbsight.instrument(async_pg_engine)

    async def run() -> None:
        async with async_pg_engine.connect() as conn:
            await conn.execute(sa.text("SELECT pg_sleep(0.33)"))

    with request_scope(REQUEST_ID, route=ROUTE, trace_id=TRACE_ID, span_id=SPAN_ID):
        seen = await server_text_async(pg_admin_dsn, "pg_sleep(0.33", run())
    assert seen is not None
    assert parse_comment(seen)["route"] == ROUTE


@pytest.mark.asyncio
async def test_aiosqlite(tmp_path: Any, events: Any) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    try:
        dbsight.instrument(engine)
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (id int)")
            await conn.execute(sa.text("INSERT INTO t VALUES (:id)"), [{"id": 1}, {"id": 2}])
            assert (await conn.execute(sa.text("SELECT count(*) FROM t"))).scalar() == 2
        assert [(e.system, e.operation, e.rows) for e in events.events] == [
            ("sqlite", "ddl", None),
            ("sqlite", "insert", 2),
            ("sqlite", "select", 1),  # SQLAlchemy's aiosqlite adapter has fetched the row
        ]
    finally:
        await engine.dispose()


# -- a driver instrumented underneath SQLAlchemy ------------------------------
@pytest.mark.asyncio
async def test_statement_is_recorded_once_when_the_driver_is_instrumented_too(
    pg_dsn: str, events: Any
) -> None:
    import asyncpg

    async def connect() -> Any:
        con = await asyncpg.connect(pg_dsn)
        dbsight.instrument(con)
        return con

    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect)
    try:
        dbsight.instrument(engine)
        async with engine.connect() as conn:
            events.clear()  # SQLAlchemy's own first-connect queries went through asyncpg only
            assert (
                await conn.execute(sa.text("SELECT CAST(:x AS int) + 1"), {"x": 1})
            ).scalar() == 2
            await conn.commit()
        app = [e for e in events.events if e.operation != "tx"]
        assert [(e.sql, e.source) for e in app] == [("SELECT CAST($1 AS int) + 1", "sqlalchemy")]
    finally:
        await engine.dispose()


def test_psycopg_under_a_sync_engine_is_recorded_once(pg_dsn: str, events: Any) -> None:
    import psycopg

    def connect() -> Any:
        conn = psycopg.connect(pg_dsn)
        dbsight.instrument(conn)
        return conn

    engine = sa.create_engine("postgresql+psycopg://", creator=connect)
    try:
        dbsight.instrument(engine)
        with engine.connect() as conn:
            events.clear()
            assert conn.execute(sa.text("SELECT :x || 'b'"), {"x": "a"}).scalar() == "ab"
        assert [(e.sql, e.source) for e in events.events] == [("SELECT %(x)s || 'b'", "sqlalchemy")]
    finally:
        engine.dispose()
