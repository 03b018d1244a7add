"""SQLAlchemy on the recorder's lean path (dbsight's own sinks only), against a real
PostgreSQL (psycopg under an Engine, asyncpg under an AsyncEngine) and SQLite: the same
results, errors and events as on the regular path, each statement recorded once."""

from __future__ import annotations

from typing import Any

import asyncpg
import psycopg
import pytest
import sqlalchemy as sa
from lean_observers import Batched, Unbatched, fields_but_timing
from sqlalchemy.ext.asyncio import create_async_engine

import dbsight
from dbsight import _runtime
from dbsight.core import request_scope
from dbsight.core._recorder import BATCH

SETUP = (
    "CREATE TABLE lean_items (id int PRIMARY KEY, name text NOT NULL)",
    "INSERT INTO lean_items SELECT g, 'item ' || g FROM generate_series(1, 100) g",
)


def _url(dsn: str, driver: str) -> str:
    scheme, rest = dsn.split("://", 1)
    return f"{scheme.split('+')[0]}+{driver}://{rest}"


@pytest.fixture
def engine(pg_dsn: str) -> Any:
    engine = sa.create_engine(_url(pg_dsn, "psycopg"))
    with engine.begin() as conn:
        for statement in SETUP:
            conn.exec_driver_sql(statement)
    yield engine
    engine.dispose()


@pytest.fixture
async def async_engine(pg_dsn: str) -> Any:
    engine = create_async_engine(_url(pg_dsn, "asyncpg"))
    async with engine.begin() as conn:
        for statement in SETUP:
            await conn.exec_driver_sql(statement)
    yield engine
    await engine.dispose()


SELECT = sa.text("SELECT id, name FROM lean_items WHERE id <= :n ORDER BY id")
ONE = sa.text("SELECT name FROM lean_items WHERE id = :id")
UPDATE = sa.text("UPDATE lean_items SET name = :name WHERE id = :id")


def _workload(conn: Any) -> list[Any]:
    results: list[Any] = [
        conn.execute(SELECT, {"n": 3}).all(),
        conn.execute(ONE, {"id": 7}).scalar(),
        conn.exec_driver_sql("SELECT count(*) FROM lean_items").scalar(),
        conn.execute(UPDATE, [{"id": 1, "name": "item 1"}, {"id": 2, "name": "item 2"}]).rowcount,
    ]
    with request_scope("req-1", route="/items/{id}"):
        results.append(conn.execute(ONE, {"id": 2}).scalar())
    with pytest.raises(sa.exc.DBAPIError) as caught:
        conn.execute(sa.text("SELECT * FROM lean_missing WHERE id = :id"), {"id": 1})
    results.append(type(caught.value.orig))
    conn.rollback()
    return results


async def _aworkload(conn: Any) -> list[Any]:
    results: list[Any] = [
        (await conn.execute(SELECT, {"n": 3})).all(),
        (await conn.execute(ONE, {"id": 7})).scalar(),
        (await conn.exec_driver_sql("SELECT count(*) FROM lean_items")).scalar(),
        (
            await conn.execute(UPDATE, [{"id": 1, "name": "item 1"}, {"id": 2, "name": "item 2"}])
        ).rowcount,
    ]
    with request_scope("req-1", route="/items/{id}"):
        results.append((await conn.execute(ONE, {"id": 2})).scalar())
    with pytest.raises(sa.exc.DBAPIError) as caught:
        await conn.execute(sa.text("SELECT * FROM lean_missing WHERE id = :id"), {"id": 1})
    results.append(type(caught.value.orig))
    await conn.rollback()
    return results


def _compared(event: Any) -> dict[str, Any]:
    return {
        **fields_but_timing(event),
        "explainer": event.explainer,
        "explain_params": event.explain_params,
        "sampled": event.sampled,
    }


def _check(lean_events: list[Any], regular_events: list[Any], many_rows: int | None) -> None:
    assert len(lean_events) == len(regular_events) == 6
    assert [_compared(e) for e in lean_events] == [_compared(e) for e in regular_events]
    assert [e.rows for e in lean_events[:5]] == [3, 1, 1, many_rows, 1]
    assert {e.source for e in lean_events} == {"sqlalchemy"}
    assert lean_events[4].request_id == "req-1" and lean_events[4].route == "/items/{id}"
    assert lean_events[5].error.sqlstate == "42P01"
    assert lean_events[0].explainer is not None and lean_events[3].explainer is None
    assert (lean_events[0].params is not None) is _runtime.recorder.settings.include_query_bodies


def test_lean_events_and_results_are_those_of_the_regular_path(
    engine: Any, lean_collector: Batched
) -> None:
    recorder = _runtime.recorder
    with engine.connect() as conn:
        plain = _workload(conn)
    dbsight.instrument(engine)
    assert recorder.lean
    with engine.connect() as conn:
        lean_results = _workload(conn)
    lean_events = list(lean_collector.seen())
    lean_collector.events.clear()

    unbatched = Unbatched()
    dbsight.add_observer(unbatched)
    assert not recorder.lean
    with engine.connect() as conn:
        regular_results = _workload(conn)
    regular_events = list(lean_collector.seen())
    dbsight.remove_observer(unbatched)

    assert lean_results == plain == regular_results
    _check(lean_events, regular_events, 2)


async def test_async_lean_events_and_results_are_those_of_the_regular_path(
    async_engine: Any, lean_collector: Batched
) -> None:
    recorder = _runtime.recorder
    async with async_engine.connect() as conn:
        plain = await _aworkload(conn)
    dbsight.instrument(async_engine)
    assert recorder.lean
    async with async_engine.connect() as conn:
        lean_results = await _aworkload(conn)
    lean_events = list(lean_collector.seen())
    lean_collector.events.clear()

    unbatched = Unbatched()
    dbsight.add_observer(unbatched)
    assert not recorder.lean
    async with async_engine.connect() as conn:
        regular_results = await _aworkload(conn)
    regular_events = list(lean_collector.seen())
    dbsight.remove_observer(unbatched)

    assert lean_results == plain == regular_results
    _check(lean_events, regular_events, None)  # (asyncpg counts no executemany rows)


async def test_every_lean_statement_reaches_the_statistics(
    async_engine: Any, lean_collector: Batched
) -> None:
    dbsight.instrument(async_engine)
    count = BATCH * 2 + 3
    async with async_engine.connect() as conn:
        for i in range(count):
            await conn.execute(ONE, {"id": i % 100 + 1})
    (entry,) = [s for s in dbsight.stats.top(50) if "lean_items" in s.normalized]
    assert entry.calls == count and entry.rows == count
    assert len(lean_collector.seen()) == count


async def test_asyncpg_underneath_is_not_recorded_a_second_time(
    pg_dsn: str, lean_collector: Batched
) -> None:
    async def connect() -> Any:
        con = await asyncpg.connect(pg_dsn)
        dbsight.instrument(con)
        return con

    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect)
    try:
        dbsight.instrument(engine)
        assert _runtime.recorder.lean
        async with engine.connect() as conn:
            lean_collector.seen()
            lean_collector.events.clear()  # SQLAlchemy's first-connect queries: asyncpg's only
            query = sa.text("SELECT CAST(:x AS int) + 1")
            assert (await conn.execute(query, {"x": 1})).scalar() == 2
        app = [e for e in lean_collector.seen() if e.operation != "tx"]
        assert [(e.sql, e.source) for e in app] == [("SELECT CAST($1 AS int) + 1", "sqlalchemy")]
    finally:
        await engine.dispose()


def test_psycopg_underneath_is_not_recorded_a_second_time(
    pg_dsn: str, lean_collector: Batched
) -> None:
    def connect() -> Any:
        conn = psycopg.connect(pg_dsn)
        dbsight.instrument(conn)
        return conn

    engine = sa.create_engine("postgresql+psycopg://", creator=connect)
    try:
        dbsight.instrument(engine)
        assert _runtime.recorder.lean
        with engine.connect() as conn:
            lean_collector.seen()
            lean_collector.events.clear()
            assert conn.execute(sa.text("SELECT :x || 'b'"), {"x": "a"}).scalar() == "ab"
        assert [(e.sql, e.source) for e in lean_collector.seen()] == [
            ("SELECT %(x)s || 'b'", "sqlalchemy")
        ]
    finally:
        engine.dispose()


def test_sqlite_on_the_lean_path(tmp_path: Any, lean_collector: Batched) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'lean.db'}")
    try:
        dbsight.instrument(engine)
        assert _runtime.recorder.lean
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id int PRIMARY KEY)")
            conn.execute(sa.text("INSERT INTO t VALUES (:id)"), [{"id": 1}, {"id": 2}])
            assert conn.execute(sa.text("SELECT id FROM t ORDER BY id")).scalars().all() == [1, 2]
        events = lean_collector.seen()
        assert [(e.system, e.operation, e.rows, e.explainer) for e in events] == [
            ("sqlite", "ddl", None, None),
            ("sqlite", "insert", 2, None),
            ("sqlite", "select", None, None),
        ]
    finally:
        engine.dispose()
