"""psycopg on the recorder's lean path (dbsight's own sinks only), against a real PostgreSQL:
the same results, errors and events as on the regular path, every statement counted."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest
from lean_observers import Batched, Unbatched, fields_but_timing
from psycopg import sql

import dbsight
from dbsight import _runtime
from dbsight.core import request_scope
from dbsight.core._recorder import BATCH

SETUP = (
    "CREATE TABLE lean_items (id int PRIMARY KEY, name text NOT NULL);"
    "INSERT INTO lean_items SELECT g, 'item ' || g FROM generate_series(1, 100) g"
)
ERRORS = 4  # statements of the workloads that raise, at their end


@pytest.fixture
def conn(pg_dsn: str) -> Any:
    connection = psycopg.connect(pg_dsn, autocommit=True)
    connection.execute(SETUP)
    yield connection
    connection.close()


@pytest.fixture
async def aconn(pg_dsn: str) -> Any:
    connection = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
    await connection.execute(SETUP)
    yield connection
    await connection.close()


def _workload(conn: Any) -> list[Any]:
    with conn.cursor() as cur:
        results: list[Any] = [
            cur.execute(
                "SELECT id, name FROM lean_items WHERE id <= %s ORDER BY id", (3,)
            ).fetchall(),
            conn.execute("SELECT name FROM lean_items WHERE id = %(id)s", {"id": 7}).fetchone(),
            cur.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("lean_items"))
            ).fetchone(),
            cur.execute(b"UPDATE lean_items SET name = name WHERE id <= 4").rowcount,
            cur.execute("SELECT 1; UPDATE lean_items SET name = name WHERE id <= 2").rowcount,
            cur.execute("SET application_name = 'lean'").rowcount,
        ]
        cur.executemany(
            "UPDATE lean_items SET name = %s WHERE id = %s", [("item 1", 1), ("item 2", 2)]
        )
        results.append(cur.rowcount)
        cur.executemany(
            "SELECT id FROM lean_items WHERE id = %s", [(1,), (2,), (3,)], returning=True
        )
        results.append(cur.rowcount)
        with request_scope("req-1", route="/items/{id}"):
            results.append(
                cur.execute("SELECT name FROM lean_items WHERE id = %s", (2,)).fetchone()
            )
        for query, params in (
            ("SELECT * FROM lean_missing WHERE id = %s", (1,)),
            ("SELEC 1", None),
            ("SELECT %s, %s", (1,)),  # psycopg itself refuses it: nothing is sent
        ):
            with pytest.raises(psycopg.Error) as caught:
                cur.execute(query, params)
            results.append((type(caught.value), caught.value.sqlstate))
        with pytest.raises(psycopg.Error) as caught:
            cur.executemany("INSERT INTO lean_items VALUES (%s, %s)", [(1, "dup")])
        results.append((type(caught.value), caught.value.sqlstate))
    return results


async def _aworkload(conn: Any) -> list[Any]:
    async with conn.cursor() as cur:
        await cur.execute("SELECT id, name FROM lean_items WHERE id <= %s ORDER BY id", (3,))
        results: list[Any] = [await cur.fetchall()]
        results.append(
            await (
                await conn.execute("SELECT name FROM lean_items WHERE id = %(id)s", {"id": 7})
            ).fetchone()
        )
        await cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("lean_items")))
        results.append(await cur.fetchone())
        await cur.execute(b"UPDATE lean_items SET name = name WHERE id <= 4")
        results.append(cur.rowcount)
        await cur.execute("SELECT 1; UPDATE lean_items SET name = name WHERE id <= 2")
        results.append(cur.rowcount)
        await cur.execute("SET application_name = 'lean'")
        results.append(cur.rowcount)
        await cur.executemany(
            "UPDATE lean_items SET name = %s WHERE id = %s", [("item 1", 1), ("item 2", 2)]
        )
        results.append(cur.rowcount)
        await cur.executemany(
            "SELECT id FROM lean_items WHERE id = %s", [(1,), (2,), (3,)], returning=True
        )
        results.append(cur.rowcount)
        with request_scope("req-1", route="/items/{id}"):
            await cur.execute("SELECT name FROM lean_items WHERE id = %s", (2,))
            results.append(await cur.fetchone())
        for query, params in (
            ("SELECT * FROM lean_missing WHERE id = %s", (1,)),
            ("SELEC 1", None),
            ("SELECT %s, %s", (1,)),
        ):
            with pytest.raises(psycopg.Error) as caught:
                await cur.execute(query, params)
            results.append((type(caught.value), caught.value.sqlstate))
        with pytest.raises(psycopg.Error) as caught:
            await cur.executemany("INSERT INTO lean_items VALUES (%s, %s)", [(1, "dup")])
        results.append((type(caught.value), caught.value.sqlstate))
    return results


def _compared(event: Any) -> dict[str, Any]:
    """What the two paths must agree on: the event's fields but its timing, and what an
    EXPLAIN of it would use."""
    return {
        **fields_but_timing(event),
        "explainer": event.explainer,
        "explain_params": event.explain_params,
        "sampled": event.sampled,
    }


def _check(
    lean_events: list[Any], regular_events: list[Any], lean_collector: Batched, count: int
) -> None:
    assert len(lean_events) == len(regular_events) == count
    assert [_compared(e) for e in lean_events] == [_compared(e) for e in regular_events]
    assert [e.rows for e in lean_events[:8]] == [3, 1, 1, 4, 2, None, 2, 3]
    assert lean_events[2].sql == 'SELECT count(*) FROM "lean_items"'  # as sent
    assert lean_events[3].sql == "UPDATE lean_items SET name = name WHERE id <= 4"
    assert lean_events[8].request_id == "req-1" and lean_events[8].route == "/items/{id}"
    assert [e.error.sqlstate for e in lean_events[9:11]] == ["42P01", "42601"]
    assert lean_events[11].error.type == "ProgrammingError"
    assert lean_events[12].error.sqlstate == "23505"
    # a slow SELECT may be explained, a batch never is
    assert lean_events[0].explainer is not None and lean_events[6].explainer is None
    assert all(e.error is None for e in lean_events[:9])
    assert all(e.duration_s > 0.0 for e in lean_events)
    for event in lean_events:
        assert (event.system, event.source) == ("postgresql", "psycopg")
    assert (lean_events[0].params is not None) is _runtime.recorder.settings.include_query_bodies


def test_lean_events_and_results_are_those_of_the_regular_path(
    conn: Any, lean_collector: Batched
) -> None:
    recorder = _runtime.recorder
    plain = _workload(conn)
    dbsight.instrument(conn)
    assert recorder.lean  # dbsight's sinks and a batched observer: the lean path is open
    lean_results = _workload(conn)
    lean_events = list(lean_collector.seen())
    lean_collector.events.clear()

    unbatched = Unbatched()
    dbsight.add_observer(unbatched)
    assert not recorder.lean
    regular_results = _workload(conn)
    regular_events = list(lean_collector.seen())
    dbsight.remove_observer(unbatched)

    assert lean_results == plain == regular_results
    _check(lean_events, regular_events, lean_collector, 13)


async def test_async_lean_events_and_results_are_those_of_the_regular_path(
    aconn: Any, lean_collector: Batched
) -> None:
    recorder = _runtime.recorder
    plain = await _aworkload(aconn)
    dbsight.instrument(aconn)
    assert recorder.lean
    lean_results = await _aworkload(aconn)
    lean_events = list(lean_collector.seen())
    lean_collector.events.clear()

    unbatched = Unbatched()
    dbsight.add_observer(unbatched)
    assert not recorder.lean
    regular_results = await _aworkload(aconn)
    regular_events = list(lean_collector.seen())
    dbsight.remove_observer(unbatched)

    assert lean_results == plain == regular_results
    _check(lean_events, regular_events, lean_collector, 13)


def test_every_lean_statement_reaches_the_statistics(conn: Any, lean_collector: Batched) -> None:
    dbsight.instrument(conn)
    count = BATCH * 2 + 3
    with conn.cursor() as cur:
        for i in range(count):
            cur.execute("SELECT name FROM lean_items WHERE id = %s", (i % 100 + 1,))
    (entry,) = [s for s in dbsight.stats.top(50) if "lean_items" in s.normalized]
    assert entry.calls == count and entry.rows == count
    assert len(lean_collector.seen()) == count


async def test_a_cancelled_lean_statement_is_recorded_and_propagates(
    aconn: Any, lean_collector: Batched
) -> None:
    dbsight.instrument(aconn)
    task = asyncio.ensure_future(aconn.execute("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (event,) = [e for e in lean_collector.seen() if "pg_sleep" in e.sql]
    assert event.error is not None and event.error.type == "CancelledError"
    assert 0.2 < event.duration_s < 4


def test_a_slow_lean_statement_is_logged_with_its_plan(
    conn: Any, dbsight_runtime: Any, tmp_path: Any
) -> None:
    log = tmp_path / "slow.jsonl"
    dbsight_runtime(slow_query_threshold_ms=50, explain_slow_queries=True, slow_query_log=log)
    dbsight.instrument(conn)
    assert _runtime.recorder.lean
    conn.execute("SELECT count(*) FROM lean_items WHERE id > %s", (3,))  # held
    conn.execute("SELECT pg_sleep(0.1), count(*) FROM lean_items WHERE id > %s", (3,))
    # the slow one went at once, after the one held before it
    assert [s.calls for s in dbsight.stats.top(5) if "lean_items" in s.normalized] == [1, 1]
    for _ in range(200):
        if log.exists() and log.read_text().strip():
            break
        time.sleep(0.025)
    text = log.read_text()
    assert "pg_sleep" in text and '"plan"' in text, text
