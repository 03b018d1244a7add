"""asyncpg on the recorder's lean path (dbsight's own sinks only), against a real PostgreSQL:
the same results, errors and events as on the regular path, every statement counted."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from lean_observers import Batched, Unbatched, fields_but_timing

import dbsight
from dbsight import _runtime
from dbsight.core import request_scope
from dbsight.core._recorder import BATCH

pytestmark = pytest.mark.asyncio

@pytest.fixture
def collector(dbsight_runtime: Any) -> Batched:
    dbsight_runtime()
    collector = Batched()
    dbsight.add_observer(collector)
    return collector


@pytest.fixture
async def con(pg_dsn: str) -> Any:
    connection = await asyncpg.connect(pg_dsn)
    await connection.execute(
        "CREATE TABLE lean_items (id int PRIMARY KEY, name text);"
        "INSERT INTO lean_items SELECT g, 'item ' || g FROM generate_series(1, 100) g;"
    )
    yield connection
    await connection.close()


async def _workload(con: Any) -> list[Any]:
    results: list[Any] = [
        await con.fetch("SELECT id, name FROM lean_items WHERE id <= $1 ORDER BY id", 5),
        await con.fetchrow("SELECT name FROM lean_items WHERE id = $1", 7),
        await con.fetchrow("SELECT name FROM lean_items WHERE id = $1", 1000),
        await con.fetchval("SELECT count(*) FROM lean_items"),
        await con.fetchval("SELECT NULL::int"),
        await con.fetchrow("SELECT 1 AS a", timeout=10),
        await con.fetchval("SELECT 1, 2", column=1),
        await con.execute("UPDATE lean_items SET name = name WHERE id <= $1", 3),
        await con.fetchmany("SELECT $1::int + 1", [(1,), (2,)]),
        await con.executemany(
            "UPDATE lean_items SET name = $2 WHERE id = $1", [(1, "item 1"), (2, "item 2")]
        ),
    ]
    with request_scope("req-1", route="/items/{id}"):
        results.append(await con.fetchval("SELECT name FROM lean_items WHERE id = $1", 2))
    for sql in ("SELECT * FROM lean_missing WHERE id = $1", "SELEC 1"):
        with pytest.raises(asyncpg.PostgresError) as caught:
            await con.fetchrow(sql, *([1] if "$1" in sql else []))
        results.append(type(caught.value))
    with pytest.raises(TypeError):  # asyncpg says what is wrong with the arguments
        await con.fetchrow("SELECT 1", nonsense=1)
    return results


async def test_lean_events_and_results_are_those_of_the_regular_path(
    con: Any, collector: Batched
) -> None:
    recorder = _runtime.recorder
    plain = await _workload(con)
    dbsight.instrument(con)
    assert recorder.lean  # dbsight's sinks and a batched observer: the lean path is open
    lean_results = await _workload(con)
    lean_events = list(collector.seen())
    collector.events.clear()

    unbatched = Unbatched()
    dbsight.add_observer(unbatched)
    assert not recorder.lean
    regular_results = await _workload(con)
    regular_events = list(collector.seen())
    dbsight.remove_observer(unbatched)

    assert lean_results == plain == regular_results
    assert len(lean_events) == len(regular_events) == 14
    assert [fields_but_timing(e) for e in lean_events] == [fields_but_timing(e) for e in regular_events]
    assert [e.rows for e in lean_events[:10]] == [5, 1, 0, 1, 1, 1, 1, 3, 2, None]
    assert lean_events[10].request_id == "req-1" and lean_events[10].route == "/items/{id}"
    assert [e.error.sqlstate for e in lean_events[11:13]] == ["42P01", "42601"]
    assert lean_events[13].error.type == "TypeError"
    assert all(e.duration_s > 0.0 for e in lean_events)


async def test_every_lean_statement_reaches_the_statistics_and_metrics(
    con: Any, collector: Batched
) -> None:
    dbsight.instrument(con)
    count = BATCH * 2 + 3
    for i in range(count):
        await con.fetchrow("SELECT name FROM lean_items WHERE id = $1", i % 100 + 1)
    (entry,) = [s for s in dbsight.stats.top(50) if "lean_items" in s.normalized]
    assert entry.calls == count and entry.rows == count
    assert len(collector.seen()) == count


async def test_a_cancelled_lean_statement_is_recorded_and_propagates(
    con: Any, collector: Batched
) -> None:
    dbsight.instrument(con)
    task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (event,) = [e for e in collector.seen() if "pg_sleep" in e.sql]
    assert event.error is not None and event.error.type == "CancelledError"
    assert 0.2 < event.duration_s < 4


async def test_a_slow_lean_statement_is_logged_with_its_plan(
    con: Any, dbsight_runtime: Any, tmp_path: Any
) -> None:
    log = tmp_path / "slow.jsonl"
    dbsight_runtime(slow_query_threshold_ms=50, explain_slow_queries=True, slow_query_log=log)
    dbsight.instrument(con)
    assert _runtime.recorder.lean
    await con.fetchval("SELECT count(*) FROM lean_items WHERE id > $1", 3)  # held
    await con.fetchval("SELECT pg_sleep(0.1), count(*) FROM lean_items WHERE id > $1", 3)
    # the slow one went at once, after the one held before it
    assert [s.calls for s in dbsight.stats.top(5) if "lean_items" in s.normalized] == [1, 1]
    for _ in range(200):
        if log.exists() and log.read_text().strip():
            break
        await asyncio.sleep(0.025)
    text = log.read_text()
    assert "pg_sleep" in text and '"plan"' in text, text
