"""Row counts of in-process events, client by client, against real servers: a SELECT that
returns N rows records N and an UPDATE of k rows records k, whichever driver ran it and
whether SQLAlchemy sat on top; where the client cannot know, None (never 0)."""

from __future__ import annotations

from typing import Any

import asyncpg
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

import dbsight


def _url(dsn: str, driver: str) -> str:
    scheme, rest = dsn.split("://", 1)
    return f"{scheme.split('+')[0]}+{driver}://{rest}"


def _rows(events: Any) -> list[tuple[str, int | None]]:
    return [(e.sql.split()[0].upper(), e.rows) for e in events.events if e.operation != "tx"]


# -- SQLAlchemy, every dialect ---------------------------------------------------------------
# what each statement of the workloads below records, by driver: (ddl, insert of 10 rows,
# SELECT of 7, SELECT of none, UPDATE of 4, streamed SELECT of 10)
SQLALCHEMY_ROWS = {
    "psycopg": [None, 10, 7, 0, 4, None],
    "psycopg_async": [None, 10, 7, 0, 4, None],
    "asyncpg": [None, None, 7, 0, 4, None],  # executemany: asyncpg keeps no command tag
    "pymysql": [0, 10, 7, 0, 4, None],  # MySQL says 0 rows for DDL
    "sqlite": [None, 10, None, None, 4, None],  # sqlite3 counts no SELECT before its fetch
    "aiosqlite": [None, 10, 7, 0, 4, None],  # SQLAlchemy's adapter has fetched the rows
}
STATEMENTS = ["CREATE", "INSERT", "SELECT", "SELECT", "UPDATE", "SELECT"]


def _sync_workload(engine: Any) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE nums (n int PRIMARY KEY)")
        conn.execute(sa.text("INSERT INTO nums VALUES (:n)"), [{"n": n} for n in range(1, 11)])
        assert len(conn.execute(sa.text("SELECT n FROM nums WHERE n <= :k"), {"k": 7}).all()) == 7
        assert conn.execute(sa.text("SELECT n FROM nums WHERE n > :k"), {"k": 99}).all() == []
        assert conn.execute(sa.text("UPDATE nums SET n = n WHERE n <= :k"), {"k": 4}).rowcount == 4
        streamed = conn.execution_options(stream_results=True).execute(sa.text("SELECT n FROM nums"))
        assert len(streamed.all()) == 10


async def _async_workload(engine: Any) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE nums (n int PRIMARY KEY)")
        await conn.execute(
            sa.text("INSERT INTO nums VALUES (:n)"), [{"n": n} for n in range(1, 11)]
        )
        selected = await conn.execute(sa.text("SELECT n FROM nums WHERE n <= :k"), {"k": 7})
        assert len(selected.all()) == 7
        none = await conn.execute(sa.text("SELECT n FROM nums WHERE n > :k"), {"k": 99})
        assert none.all() == []
        updated = await conn.execute(sa.text("UPDATE nums SET n = n WHERE n <= :k"), {"k": 4})
        assert updated.rowcount == 4
        streamed = await conn.stream(sa.text("SELECT n FROM nums"))
        assert len(await streamed.all()) == 10


@pytest.mark.parametrize("driver", ["psycopg", "pymysql", "sqlite"])
def test_sqlalchemy_sync_rows(
    request: Any, tmp_path: Any, events: Any, driver: str
) -> None:
    if driver == "sqlite":
        url = f"sqlite:///{tmp_path / 'rows.db'}"
    else:
        url = _url(request.getfixturevalue("mysql_dsn" if driver == "pymysql" else "pg_dsn"), driver)
    engine = sa.create_engine(url)
    try:
        dbsight.instrument(engine)
        _sync_workload(engine)
    finally:
        engine.dispose()
    assert _rows(events) == list(zip(STATEMENTS, SQLALCHEMY_ROWS[driver], strict=True))


@pytest.mark.parametrize("driver", ["psycopg_async", "asyncpg", "aiosqlite"])
async def test_sqlalchemy_async_rows(
    request: Any, tmp_path: Any, events: Any, driver: str
) -> None:
    if driver == "aiosqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'rows.db'}"
    else:
        url = _url(request.getfixturevalue("pg_dsn"), driver)
    engine = create_async_engine(url)
    try:
        dbsight.instrument(engine)
        await _async_workload(engine)
    finally:
        await engine.dispose()
    assert _rows(events) == list(zip(STATEMENTS, SQLALCHEMY_ROWS[driver], strict=True))


async def test_sqlalchemy_asyncpg_counts_rows_its_status_does_not(pg_dsn: str, events: Any) -> None:
    # SQLAlchemy's asyncpg adapter reads rowcount off SELECT/INSERT/UPDATE/DELETE tags only;
    # the rows it fetched count for the others
    engine = create_async_engine(_url(pg_dsn, "asyncpg"))
    try:
        dbsight.instrument(engine)
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("SHOW server_version")).scalar()
            assert len((await conn.exec_driver_sql("VALUES (1), (2), (3)")).all()) == 3
    finally:
        await engine.dispose()
    assert [e.rows for e in events.events if e.operation != "tx"] == [1, 3]


# -- asyncpg -----------------------------------------------------------------------------------
@pytest.fixture
async def apg(pg_dsn: str) -> Any:
    con = await asyncpg.connect(pg_dsn)
    await con.execute(
        "CREATE TABLE nums (n int PRIMARY KEY, v int); "
        "INSERT INTO nums SELECT g, NULL FROM generate_series(1, 10) g"
    )
    yield con
    await con.close()


async def test_asyncpg_connection_rows(apg: Any, events: Any) -> None:
    dbsight.instrument(apg)
    assert len(await apg.fetch("SELECT n FROM nums WHERE n <= $1", 7)) == 7
    assert await apg.fetchrow("SELECT n FROM nums ORDER BY n") is not None  # 10 rows, 1 read
    assert await apg.fetchrow("SELECT n FROM nums WHERE n > 99") is None
    assert await apg.fetchval("SELECT n FROM nums WHERE n = $1", 3) == 3
    assert await apg.fetchval("SELECT v FROM nums WHERE n = 3") is None  # one row, NULL
    assert await apg.fetchval("SELECT v FROM nums WHERE n > 99") is None  # no row
    assert await apg.execute("UPDATE nums SET v = 1 WHERE n <= $1", 4) == "UPDATE 4"
    assert await apg.execute("UPDATE nums SET v = 2 WHERE n <= 5") == "UPDATE 5"
    assert await apg.fetch("UPDATE nums SET v = 3 WHERE n <= 6") == []  # no RETURNING
    assert len(await apg.fetchmany("SELECT $1::int", [(1,), (2,)])) == 2
    await apg.executemany("UPDATE nums SET v = $2 WHERE n = $1", [(1, 1), (2, 2)])
    assert await apg.execute("BEGIN") == "BEGIN"
    assert await apg.execute("ROLLBACK") == "ROLLBACK"
    assert [e.rows for e in events.events] == [
        7, 1, 0, 1, 1, 0, 4, 5, 6, 2,
        None,  # executemany: asyncpg keeps none of the command tags
        None, None,  # BEGIN, ROLLBACK have no row count
    ]  # fmt: skip


async def test_asyncpg_prepared_statement_rows(apg: Any, events: Any) -> None:
    dbsight.instrument(apg)
    stmt = await apg.prepare("SELECT v FROM nums WHERE n <= $1 ORDER BY n")
    assert len(await stmt.fetch(7)) == 7
    assert await stmt.fetchrow(7) is not None  # suspended after its one row
    assert await stmt.fetchrow(0) is None
    assert await stmt.fetchval(1) is None  # one row, NULL
    assert await stmt.fetchval(5) is None  # five rows, the first one's NULL read
    assert await stmt.fetchval(0) is None  # no row
    update = await apg.prepare("UPDATE nums SET v = 7 WHERE n <= $1")
    assert await update.fetch(3) == []
    assert [e.rows for e in events.events] == [7, 1, 0, 1, 1, 0, 3]


async def test_asyncpg_cursor_rows(apg: Any, events: Any) -> None:
    dbsight.instrument(apg)
    async with apg.transaction():
        rows = [r async for r in apg.cursor("SELECT n FROM nums ORDER BY n", prefetch=3)]
        assert len(rows) == 10
        cursor = await apg.cursor("SELECT n FROM nums ORDER BY n")
        assert len(await cursor.fetch(4)) == 4
        assert len(await cursor.fetch(20)) == 6
    cursors = [e.rows for e in events.events if e.operation == "select"]
    assert cursors == [10, 10]


async def test_asyncpg_failed_statement_has_no_rows(apg: Any, events: Any) -> None:
    dbsight.instrument(apg)
    with pytest.raises(asyncpg.UndefinedColumnError):
        await apg.fetchval("SELECT nope FROM nums")
    with pytest.raises(asyncpg.UniqueViolationError):
        await apg.fetch("INSERT INTO nums VALUES (1) RETURNING n")
    assert [(e.outcome, e.rows) for e in events.events] == [("error", None), ("error", None)]


# -- psycopg -----------------------------------------------------------------------------------
@pytest.fixture
def pg(pg_dsn: str) -> Any:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE nums (n int PRIMARY KEY, v int)")
        conn.execute("INSERT INTO nums SELECT g, NULL FROM generate_series(1, 10) g")
        yield conn


def test_psycopg_rows(pg: Any, events: Any) -> None:
    dbsight.instrument(pg)
    cur = pg.cursor()
    assert len(cur.execute("SELECT n FROM nums WHERE n <= %s", (7,)).fetchall()) == 7
    cur.execute("UPDATE nums SET v = 1 WHERE n <= %s", (4,))
    cur.execute("SHOW work_mem")
    cur.execute("CREATE TABLE other (n int)")
    cur.executemany("UPDATE nums SET v = %s WHERE n <= %s", [(2, 2), (3, 3)])
    cur.executemany("UPDATE nums SET v = %s WHERE n <= %s RETURNING n", [(2, 2), (3, 3)],
                    returning=True)  # fmt: skip
    # several statements in one string: the last one's rows (as asyncpg and the proxy count)
    cur.execute("UPDATE nums SET v = 4 WHERE n = 1; SELECT n FROM nums WHERE n <= 3")
    with cur.copy("COPY nums (n) TO STDOUT") as copy:
        assert len(list(copy)) > 0
    assert len(list(cur.stream("SELECT n FROM nums WHERE n <= %s", (6,)))) == 6
    with pg.transaction(), pg.cursor("named") as named:
        named.execute("SELECT n FROM nums ORDER BY n")
        assert len(named.fetchmany(4)) == 4
        assert len(named.fetchall()) == 6
    with pg.pipeline():  # results arrive at the sync point: unknown
        cur.execute("SELECT n FROM nums")
        cur.executemany("UPDATE nums SET v = %s WHERE n <= %s", [(2, 2), (3, 3)])
        cur.executemany("UPDATE nums SET v = %s WHERE n <= %s RETURNING n", [(2, 2)],
                        returning=True)  # fmt: skip
    assert [e.rows for e in events.events if e.operation != "tx"] == [
        7, 4, 1, None, 5, 5, 3, 10, 6, 10, None, None, None,
    ]  # fmt: skip
