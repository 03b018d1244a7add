"""Row counts through `dbsight proxy`, against a real PostgreSQL and real clients: the proxy
records the rows the in-process instrument of the same client records for the same
statement (both watch it here: the client is instrumented and talks to the proxy)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

# The session-mode tests' statement collector and wait.
from test_proxy_session import events, settle  # noqa: F401  (a fixture; F811 below is its use)

import dbsight
from dbsight.instrument import uninstrument_all


@pytest.fixture
def instrumented(events: Any) -> Iterator[Any]:  # noqa: F811
    yield events
    uninstrument_all()


def by_source(collector: Any, source: str) -> list[Any]:
    return [e for e in collector.ok + collector.errors if e.source == source]


def paired(collector: Any, source: str, count: int) -> list[tuple[str, int | None, int | None]]:
    """(statement, rows in-process, rows through the proxy) for each of the ``count``
    statements the in-process instrument ``source`` recorded, matched by fingerprint and
    order with what the proxy recorded (which also sees what the client runs on its own)."""
    settle(lambda: len(by_source(collector, source)) >= count)
    mine = sorted(by_source(collector, source), key=lambda e: e.started_at)
    fingerprints = {e.fingerprint for e in mine}

    def relayed() -> list[Any]:
        return sorted(
            (e for e in by_source(collector, "proxy") if e.fingerprint in fingerprints),
            key=lambda e: e.started_at,
        )

    # per fingerprint: the proxy may record more of one (executemany) before the last of
    # another arrives, so a total count could be reached too early
    wanted = Counter(e.fingerprint for e in mine)
    settle(lambda: Counter(e.fingerprint for e in relayed()) >= wanted)
    pairs = []
    queue = relayed()
    for event in mine:
        twin = next(e for e in queue if e.fingerprint == event.fingerprint)
        queue.remove(twin)
        pairs.append((event.normalized, event.rows, twin.rows))
    return pairs


async def _asyncpg_workload(con: Any) -> None:
    await con.execute("CREATE TABLE nums (n int PRIMARY KEY, v int)")
    await con.execute("INSERT INTO nums SELECT g, NULL FROM generate_series(1, 10) g")
    assert len(await con.fetch("SELECT n FROM nums WHERE n <= $1", 7)) == 7
    assert await con.fetchrow("SELECT n FROM nums ORDER BY n") is not None  # 1 of 10
    assert await con.fetchrow("SELECT n FROM nums WHERE n > 99") is None
    assert await con.fetchval("SELECT v FROM nums WHERE n = $1", 3) is None  # a NULL
    assert await con.fetchval("SELECT count(*) FROM nums") == 10
    assert await con.execute("UPDATE nums SET v = 1 WHERE n <= $1", 4) == "UPDATE 4"
    assert await con.execute("UPDATE nums SET v = 2 WHERE n <= 5") == "UPDATE 5"
    assert await con.fetch("DELETE FROM nums WHERE n = 10 RETURNING n") != []
    stmt = await con.prepare("SELECT n FROM nums WHERE n <= $1 ORDER BY n")
    assert len(await stmt.fetch(3)) == 3
    assert await stmt.fetchval(5) == 1
    async with con.transaction():
        rows = [r async for r in con.cursor("SELECT n FROM nums ORDER BY n", prefetch=2)]
        assert len(rows) == 9


ASYNCPG_ROWS = [
    ("CREATE TABLE nums (n int PRIMARY KEY, v int)", None, None),
    ("INSERT INTO nums SELECT g, NULL FROM generate_series($1, $2) g", 10, 10),
    ("SELECT n FROM nums WHERE n <= $1", 7, 7),
    ("SELECT n FROM nums ORDER BY n", 1, 1),  # fetchrow: suspended after one row
    ("SELECT n FROM nums WHERE n > $1", 0, 0),
    ("SELECT v FROM nums WHERE n = $1", 1, 1),  # fetchval of a NULL: one row
    ("SELECT count(*) FROM nums", 1, 1),
    ("UPDATE nums SET v = $1 WHERE n <= $2", 4, 4),
    ("UPDATE nums SET v = $1 WHERE n <= $2", 5, 5),
    ("DELETE FROM nums WHERE n = $1 RETURNING n", 1, 1),
    ("SELECT n FROM nums WHERE n <= $1 ORDER BY n", 3, 3),
    ("SELECT n FROM nums WHERE n <= $1 ORDER BY n", 1, 1),  # prepared fetchval: suspended
    ("BEGIN", None, None),
    ("SELECT n FROM nums ORDER BY n", 9, 9),  # a cursor: one statement over five Executes
    ("COMMIT", None, None),
]


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
async def test_asyncpg_rows_are_the_same_in_process_and_through_the_proxy(
    proxy_factory: Any, pg_dsn: str, instrumented: Any, pool_mode: str
) -> None:
    proxy = proxy_factory(pg_dsn, pool_mode=pool_mode)
    con = await asyncpg.connect(proxy.dsn(pg_dsn))
    try:
        dbsight.instrument(con)
        await _asyncpg_workload(con)
    finally:
        await con.close()
    assert paired(instrumented, "asyncpg", len(ASYNCPG_ROWS)) == ASYNCPG_ROWS
    assert not instrumented.errors


async def test_asyncpg_what_only_the_proxy_can_count(
    proxy_factory: Any, pg_dsn: str, instrumented: Any
) -> None:
    """asyncpg's execute() without arguments discards the rows it gets (a SHOW's tag has no
    count) and its executemany() every command tag: None in-process. The proxy counts the
    DataRows, and sees executemany as one statement per set of arguments."""
    proxy = proxy_factory(pg_dsn)
    con = await asyncpg.connect(proxy.dsn(pg_dsn))
    try:
        dbsight.instrument(con)
        await con.execute("CREATE TABLE nums (n int)")
        assert await con.execute("SHOW work_mem") == "SHOW"
        await con.executemany("INSERT INTO nums VALUES ($1)", [(1,), (2,)])
    finally:
        await con.close()
    settle(lambda: len([e for e in instrumented.ok if e.sql.startswith("INSERT")]) == 3)
    inserts = [(e.source, e.rows) for e in instrumented.ok if e.sql.startswith("INSERT")]
    assert sorted(inserts, key=str) == [("asyncpg", None), ("proxy", 1), ("proxy", 1)]
    shows = {e.source: e.rows for e in instrumented.ok if e.sql.startswith("SHOW")}
    assert shows == {"asyncpg": None, "proxy": 1}


SQLALCHEMY_STATEMENTS: list[tuple[str, dict[str, Any] | None]] = [
    ("CREATE TABLE nums (n int PRIMARY KEY)", None),
    ("INSERT INTO nums SELECT generate_series(1, 10)", None),
    ("SELECT n FROM nums WHERE n <= :k", {"k": 7}),
    ("SELECT n FROM nums WHERE n > :k", {"k": 99}),
    ("UPDATE nums SET n = n WHERE n <= :k", {"k": 4}),
]


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_sqlalchemy_rows_are_the_same_in_process_and_through_the_proxy(
    proxy_factory: Any, pg_dsn: str, instrumented: Any, driver: str
) -> None:
    proxy = proxy_factory(pg_dsn)
    url = "postgresql+" + driver + "://" + proxy.dsn(pg_dsn).split("://", 1)[1]
    if driver == "asyncpg":
        engine = create_async_engine(url)
        try:
            dbsight.instrument(engine)
            async with engine.begin() as conn:
                for sql, params in SQLALCHEMY_STATEMENTS:
                    result = await conn.execute(sa.text(sql), params)
                    if result.returns_rows:
                        result.all()
        finally:
            await engine.dispose()
    else:
        sync_engine = sa.create_engine(url)
        try:
            dbsight.instrument(sync_engine)
            with sync_engine.begin() as sync_conn:
                for sql, params in SQLALCHEMY_STATEMENTS:
                    result = sync_conn.execute(sa.text(sql), params)
                    if result.returns_rows:
                        result.all()
        finally:
            sync_engine.dispose()
    rows = [(ours, theirs) for _, ours, theirs in paired(instrumented, "sqlalchemy", 5)]
    assert rows == [(None, None), (10, 10), (7, 7), (0, 0), (4, 4)]


def test_psycopg_rows_through_the_proxy(proxy: Any, pg_dsn: str, instrumented: Any) -> None:
    with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
        dbsight.instrument(conn)
        conn.execute("CREATE TABLE nums (n int PRIMARY KEY)")
        conn.execute("INSERT INTO nums SELECT generate_series(1, 10)")  # simple protocol
        assert len(conn.execute("SELECT n FROM nums WHERE n <= %s", (7,)).fetchall()) == 7
        conn.execute("SHOW work_mem")
        conn.execute("UPDATE nums SET n = n WHERE n <= 2; SELECT n FROM nums WHERE n <= 3")
        with conn.cursor().copy("COPY nums TO STDOUT") as copy:
            assert len(list(copy)) > 0
        cur = conn.cursor()
        cur.executemany("UPDATE nums SET n = n WHERE n <= %s RETURNING n", [(2,), (3,)],
                        returning=True)  # fmt: skip
        assert len(list(conn.cursor().stream("SELECT n FROM nums WHERE n <= %s", (6,)))) == 6
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("SELECT nope FROM nums")
    pairs = paired(instrumented, "psycopg", 9)
    assert [(ours, theirs) for _, ours, theirs in pairs[:6]] == [
        (None, None), (10, 10), (7, 7), (1, 1), (3, 3), (10, 10),
    ]  # fmt: skip
    # executemany: one event in-process (all its rows), one per statement through the proxy
    assert pairs[6][1] == 5
    relayed = [e.rows for e in by_source(instrumented, "proxy") if "RETURNING" in e.sql]
    assert relayed == [2, 3]
    # stream: psycopg's single-row mode fetches every row in one Execute
    assert pairs[7][1:] == (6, 6)
    assert pairs[8][1:] == (None, None)  # the error: no rows
    assert [e.rows for e in instrumented.errors] == [None, None]


async def test_a_suspended_portal_is_one_statement_until_it_goes_away(
    proxy: Any, pg_dsn: str, instrumented: Any
) -> None:
    con = await asyncpg.connect(proxy.dsn(pg_dsn))
    try:
        await con.execute("CREATE TABLE nums (n int PRIMARY KEY)")
        await con.execute("INSERT INTO nums SELECT generate_series(1, 20)")
        async with con.transaction():
            # read 5 of 20 in batches of 3, then left: the portal lives until the COMMIT
            cursor = con.cursor("SELECT n FROM nums WHERE n > 0 ORDER BY n", prefetch=3)
            async for row in cursor:
                if row["n"] == 5:
                    break
            # fetchrow twice in the transaction: the unnamed portal is bound again
            assert await con.fetchrow("SELECT n FROM nums WHERE n > 1 ORDER BY n") is not None
            assert await con.fetchrow("SELECT n FROM nums WHERE n > 2 ORDER BY n") is not None
            # a cursor moved through and closed
            moved = await con.cursor("SELECT n FROM nums WHERE n > 3 ORDER BY n")
            assert len(await moved.fetch(4)) == 4
            assert await moved.forward(5) == 5
            assert len(await moved.fetch(2)) == 2
            await con.execute("SELECT 'after the cursors'")
    finally:
        await con.close()
    settle(lambda: any(e.sql.startswith("COMMIT") for e in instrumented.ok))
    rows = {e.sql: e.rows for e in instrumented.ok if e.sql.startswith("SELECT n FROM nums")}
    assert rows == {
        "SELECT n FROM nums WHERE n > 0 ORDER BY n": 6,  # two batches of 3 reached the client
        "SELECT n FROM nums WHERE n > 1 ORDER BY n": 1,
        "SELECT n FROM nums WHERE n > 2 ORDER BY n": 1,
        "SELECT n FROM nums WHERE n > 3 ORDER BY n": 6,  # fetched 4 + 2 (MOVE relays none)
    }
    cursors = [e for e in instrumented.ok if e.sql.startswith("SELECT n FROM nums WHERE n > 0")]
    assert len(cursors) == 1 and 0 < cursors[0].duration_s
