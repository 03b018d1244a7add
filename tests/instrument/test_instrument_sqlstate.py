"""``db_client_errors_total`` counts each failed statement by the SQLSTATE the server sent,
for every instrumented client against real servers (asyncpg, psycopg, SQLAlchemy over
asyncpg, psycopg and PyMySQL, MariaDB's error numbers mapped to its SQLSTATEs), while the
application still gets the very exception the driver raised; and
``db_client_pool_timeouts_total`` counts the waits for a pool connection that timed out."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from psycopg_pool import ConnectionPool, PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine

import dbsight
from dbsight._runtime import get_runtime
from dbsight.core._mysql_sqlstates import MYSQL_SQLSTATES

ERRORS = "db_client_errors_total"
TIMEOUTS = "db_client_pool_timeouts_total"


def sample(name: str, **labels: str) -> float:
    """One sample of the runtime's registry (0 when absent)."""
    text = generate_latest(get_runtime().registry).decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def errors(system: str, operation: str, table: str, sqlstate: str) -> float:
    return sample(ERRORS, system=system, operation=operation, table=table, sqlstate=sqlstate,
                  error_class=sqlstate[:2] if sqlstate != "unknown" else "unknown")  # fmt: skip


def _url(dsn: str, driver: str) -> str:
    scheme, rest = dsn.split("://", 1)
    return f"{scheme.split('+')[0]}+{driver}://{rest}"


SCHEMA = "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)"
SEED = "INSERT INTO accounts VALUES (1, 100), (2, 100)"


@pytest.fixture
def pg_accounts(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(SEED)
    return pg_dsn


@pytest.fixture
def mysql_accounts(mysql_dsn: str) -> str:
    engine = sa.create_engine(_url(mysql_dsn, "pymysql"))
    with engine.begin() as conn:
        conn.exec_driver_sql(SCHEMA + " ENGINE=InnoDB")
        conn.exec_driver_sql(SEED)
    engine.dispose()
    return mysql_dsn


def deadlock(first: Callable[[str], None], second: Callable[[str], None]) -> list[BaseException]:
    """Two transactions that update accounts 1 and 2 in opposite orders, in two threads: the
    server kills one of them. ``first``/``second`` run a statement on one connection each;
    returns what the two threads raised."""
    raised: list[BaseException] = []
    both_locked = threading.Barrier(2, timeout=10)

    def run(execute: Callable[[str], None], mine: int, other: int) -> None:
        try:
            execute("BEGIN")
            execute(f"UPDATE accounts SET balance = balance - 1 WHERE id = {mine}")
            both_locked.wait()
            execute(f"UPDATE accounts SET balance = balance + 1 WHERE id = {other}")
            execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001  (the test inspects it)
            raised.append(exc)
            try:
                execute("ROLLBACK")
            except BaseException:  # noqa: BLE001
                pass

    threads = [
        threading.Thread(target=run, args=(first, 1, 2)),
        threading.Thread(target=run, args=(second, 2, 1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return raised


async def test_asyncpg_counts_the_servers_sqlstate_and_raises_its_exception(
    configure_dbsight: Any, pg_accounts: str
) -> None:
    configure_dbsight()
    conn = await asyncpg.connect(pg_accounts)
    try:
        dbsight.instrument(conn)
        for _ in range(2):
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute("INSERT INTO accounts VALUES (1, 0)")
        with pytest.raises(asyncpg.DivisionByZeroError):
            await conn.fetchval("SELECT balance / 0 FROM accounts WHERE id = $1", 1)
    finally:
        await conn.close()
    assert errors("postgresql", "insert", "accounts", "23505") == 2
    assert errors("postgresql", "select", "accounts", "22012") == 1
    assert sample("db_client_operations_total", system="postgresql", operation="insert",
                  table="accounts", outcome="error") == 2  # fmt: skip


def test_psycopg_counts_a_real_deadlock_as_40P01(configure_dbsight: Any, pg_accounts: str) -> None:
    configure_dbsight()
    a = psycopg.connect(pg_accounts, autocommit=True)
    b = psycopg.connect(pg_accounts, autocommit=True)
    try:
        for conn in (a, b):
            conn.execute("SET deadlock_timeout = '50ms'")
            dbsight.instrument(conn)
        raised = deadlock(lambda sql: a.execute(sql), lambda sql: b.execute(sql))
        with pytest.raises(psycopg.errors.UniqueViolation):
            a.execute("INSERT INTO accounts VALUES (2, 0)")
    finally:
        a.close()
        b.close()
    assert [type(exc) for exc in raised] == [psycopg.errors.DeadlockDetected]
    assert errors("postgresql", "update", "accounts", "40P01") == 1
    assert errors("postgresql", "insert", "accounts", "23505") == 1


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_sqlalchemy_on_postgresql_counts_the_drivers_sqlstate(
    configure_dbsight: Any, pg_accounts: str, driver: str
) -> None:
    configure_dbsight()
    duplicate = sa.text("INSERT INTO accounts VALUES (1, 0)")
    if driver == "asyncpg":
        engine = create_async_engine(_url(pg_accounts, driver))
        dbsight.instrument(engine)
        with pytest.raises(sa.exc.IntegrityError) as caught:
            async with engine.connect() as conn:
                await conn.execute(duplicate)
        await engine.dispose()
    else:
        sync_engine = sa.create_engine(_url(pg_accounts, driver))
        dbsight.instrument(sync_engine)
        with pytest.raises(sa.exc.IntegrityError) as caught, sync_engine.connect() as conn:
            conn.execute(duplicate)
        sync_engine.dispose()
    assert "duplicate key" in str(caught.value)  # SQLAlchemy's own wrapper, unchanged
    assert errors("postgresql", "insert", "accounts", "23505") == 1


def test_sqlalchemy_on_mariadb_maps_error_numbers_to_sqlstates(
    configure_dbsight: Any, mysql_accounts: str
) -> None:
    configure_dbsight()
    engine = sa.create_engine(_url(mysql_accounts, "pymysql"), pool_size=3)
    dbsight.instrument(engine)
    with pytest.raises(sa.exc.IntegrityError) as duplicate, engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO accounts VALUES (1, 0)"))
    assert duplicate.value.orig.args[0] == 1062  # ER_DUP_ENTRY, as PyMySQL raised it
    with pytest.raises(sa.exc.ProgrammingError), engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table"))

    a, b = engine.connect(), engine.connect()
    try:
        raised = deadlock(lambda sql: a.exec_driver_sql(sql), lambda sql: b.exec_driver_sql(sql))
    finally:
        a.close()
        b.close()
        engine.dispose()
    assert [exc.orig.args[0] for exc in raised] == [1213]  # type: ignore[attr-defined]
    # what the server sent agrees with the table used when a driver drops it
    for exc in (duplicate.value, *raised):
        number, sent = exc.orig.args[0], exc.orig.sqlstate  # type: ignore[attr-defined]
        assert MYSQL_SQLSTATES[number] == sent
    assert errors("mysql", "insert", "accounts", "23000") == 1
    assert errors("mysql", "select", "no_such_table", "42S02") == 1
    # MariaDB's SQLSTATE for a deadlock (ER_LOCK_DEADLOCK) is 40001
    assert errors("mysql", "update", "accounts", "40001") == 1


def test_a_sqlstate_mariadb_sends_is_taken_as_is(
    configure_dbsight: Any, mysql_accounts: str
) -> None:
    configure_dbsight()
    engine = sa.create_engine(_url(mysql_accounts, "pymysql"))
    dbsight.instrument(engine)
    with pytest.raises(sa.exc.OperationalError) as caught, engine.connect() as conn:
        # the application's own SQLSTATE: PyMySQL (1.2 on) keeps the one the server sent
        conn.exec_driver_sql("SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'")
    engine.dispose()
    assert caught.value.orig.args[0] == 1644  # ER_SIGNAL_EXCEPTION, not in the table
    assert errors("mysql", "other", "", "45000") == 1


async def test_asyncpg_pool_wait_timeouts_are_counted(
    configure_dbsight: Any, pg_dsn: str
) -> None:
    configure_dbsight()
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1)
    try:
        handle = dbsight.instrument(pool)
        name = handle.pool_name
        assert sample(TIMEOUTS, pool=name) == 0
        async with pool.acquire():
            for _ in range(2):
                with pytest.raises(asyncio.TimeoutError):
                    await pool.acquire(timeout=0.05)
        assert await pool.fetchval("SELECT 1") == 1  # the pool still works
        assert sample(TIMEOUTS, pool=name) == 2
        handle.uninstrument()
        assert type(pool) is asyncpg.Pool
    finally:
        await pool.close()


def test_sqlalchemy_queue_pool_timeouts_are_counted_across_dispose(
    configure_dbsight: Any, pg_dsn: str
) -> None:
    configure_dbsight()
    engine = sa.create_engine(_url(pg_dsn, "psycopg"), pool_size=1, max_overflow=0,
                              pool_timeout=0.05)  # fmt: skip
    handle = dbsight.instrument(engine)
    name = handle.pool_name

    def one_timeout() -> None:
        with engine.connect():
            with pytest.raises(sa.exc.TimeoutError):
                engine.connect()

    one_timeout()
    assert sample(TIMEOUTS, pool=name) == 1
    engine.dispose()  # a new pool: still counted
    one_timeout()
    assert sample(TIMEOUTS, pool=name) == 2
    handle.uninstrument()
    assert "_do_get" not in engine.pool.__dict__
    engine.dispose()


async def test_async_sqlalchemy_pool_timeouts_are_counted(
    configure_dbsight: Any, pg_dsn: str
) -> None:
    configure_dbsight()
    engine = create_async_engine(_url(pg_dsn, "asyncpg"), pool_size=1, max_overflow=0,
                                 pool_timeout=0.05)  # fmt: skip
    handle = dbsight.instrument(engine)
    try:
        async with engine.connect():
            with pytest.raises(sa.exc.TimeoutError):
                async with engine.connect():
                    pass
        assert sample(TIMEOUTS, pool=handle.pool_name) == 1
    finally:
        await engine.dispose()


def test_psycopg_pool_timeouts_are_read_from_its_statistics(
    configure_dbsight: Any, pg_dsn: str
) -> None:
    configure_dbsight()
    with ConnectionPool(pg_dsn, min_size=1, max_size=1, open=True, name="sqlstate") as pool:
        handle = dbsight.instrument(pool)
        with pool.connection():
            with pytest.raises(PoolTimeout):
                pool.getconn(timeout=0.05)
        assert sample(TIMEOUTS, pool=handle.pool_name) == 1


def test_pool_without_visible_timeouts_has_no_series(configure_dbsight: Any, pg_dsn: str) -> None:
    configure_dbsight()
    engine = sa.create_engine(_url(pg_dsn, "psycopg"), poolclass=sa.pool.NullPool)
    dbsight.instrument(engine)
    text = generate_latest(get_runtime().registry).decode()
    assert f'{TIMEOUTS}{{pool="sqlalchemy' not in text
    engine.dispose()


def test_error_numbers_map_when_the_driver_drops_the_sqlstate() -> None:
    """PyMySQL before 1.2, mysqlclient and asyncmy raise ``(number, message)`` only; only a
    MySQL driver's exception is read that way."""
    from dbsight.core import error_info

    assert error_info(pymysql.err.IntegrityError(1062, "Duplicate entry")).sqlstate == "23000"
    assert error_info(pymysql.err.OperationalError(1213, "Deadlock found")).sqlstate == "40001"
    assert error_info(pymysql.err.OperationalError(9999, "new error")).sqlstate is None
    assert error_info(OSError(1062, "not a database error")).sqlstate is None
    kept = pymysql.err.OperationalError(1644, "refused", sqlstate="45000")
    assert error_info(kept).sqlstate == "45000"


ERRMSG = Path("/usr/share/mysql/errmsg-utf8.txt")


def test_the_error_number_table_agrees_with_mariadbs_error_list() -> None:
    if not ERRMSG.exists():
        pytest.skip(f"{ERRMSG} (MariaDB's error list) is not installed")
    listed: dict[int, tuple[str, str]] = {}
    number: int | None = None
    for line in ERRMSG.read_text(encoding="utf-8").splitlines():
        start = re.match(r"(?:start-error-number|skip-to-error-number)\s+(\d+)", line)
        if start:
            number = int(start.group(1))
            continue
        entry = re.match(r"([A-Z][A-Z0-9_]+)(?:\s+([0-9A-Z]{5}))?(?:\s+\S+)?\s*$", line)
        if entry and number is not None:
            listed[number] = (entry.group(1), entry.group(2) or "HY000")
            number += 1
    assert listed[1062][0] == "ER_DUP_ENTRY"  # the numbering is read right
    for number, sqlstate in MYSQL_SQLSTATES.items():
        assert listed[number][1] == sqlstate, (number, listed[number])
