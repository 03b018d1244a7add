"""The result cache in a running `dbsight proxy`: answers byte-identical to the server's,
invalidated by writes through the proxy, never used inside transactions."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import asyncpg
import psycopg
import pytest

from dbsight.proxy._config import ProxyConfig
from dbsight.testing.proxy import RunningProxy


def cache_stats(proxy: RunningProxy) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        cache = proxy.server.pooling.cache  # type: ignore[union-attr]
        return dict(cache.stats())

    return dict(proxy.call(read()))


def raw_answer(dsn: str, sql: str, setup: str | None = None) -> bytes:
    """The bytes PostgreSQL (or the proxy) sends for a simple Query, on a connection psycopg
    logged in (and ran ``setup`` on)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if setup is not None:
            conn.execute(setup)
        s = socket.socket(fileno=os.dup(conn.pgconn.socket))
        try:
            s.settimeout(10)
            body = sql.encode() + b"\0"
            s.sendall(b"Q" + (len(body) + 4).to_bytes(4, "big") + body)
            data = b""
            while not data.endswith(b"Z\x00\x00\x00\x05I"):
                data += s.recv(65536)
            return data
        finally:
            s.close()


def caching_prices(pg_dsn: str, mode: str) -> RunningProxy:
    """A fresh ``prices`` table, and a proxy in ``mode`` that caches reads of it."""
    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        setup.execute("DROP TABLE IF EXISTS prices")
        setup.execute("CREATE TABLE prices (id int PRIMARY KEY, amount numeric, at date)")
        setup.execute("INSERT INTO prices VALUES (1, 9.99, '2026-01-02'), (2, 5, NULL)")
    return RunningProxy(ProxyConfig(
        listen="127.0.0.1:0", upstream=pg_dsn, pool_mode=mode,
        cache=[{"table": "prices", "ttl_s": 60}],
    ))


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_cached_answers_are_the_servers_bytes_and_writes_invalidate(pg_dsn: str, mode: str) -> None:
    proxy = caching_prices(pg_dsn, mode)
    try:
        dsn = proxy.dsn(pg_dsn)
        sql = "SELECT id, amount, at FROM prices ORDER BY id"
        direct = raw_answer(pg_dsn, sql)
        first = raw_answer(dsn, sql)  # a miss: stored
        second = raw_answer(dsn, sql)  # a hit
        assert first == direct and second == direct
        assert cache_stats(proxy)["hits"] == 1

        with psycopg.connect(dsn, autocommit=True) as conn:
            with conn.transaction():  # inside a transaction: never from the cache
                assert conn.execute(sql).fetchall()[0][0] == 1
            conn.execute("UPDATE prices SET amount = 10 WHERE id = 1")
            assert conn.execute(sql).fetchone()[1] == 10  # the write dropped the entry
            assert conn.execute(sql).fetchone()[1] == 10
        assert cache_stats(proxy)["hits"] == 2
        assert cache_stats(proxy)["invalidations"] >= 1

        async def prepared() -> list[Any]:  # the extended protocol, a named statement
            conn = await asyncpg.connect(dsn)
            try:
                return [await conn.fetchval("SELECT amount FROM prices WHERE id = $1", 2)
                        for _ in range(3)]
            finally:
                await conn.close()

        before = cache_stats(proxy)["hits"]
        assert asyncio.run(prepared()) == [5, 5, 5]
        assert cache_stats(proxy)["hits"] >= before + 2

        with psycopg.connect(dsn, autocommit=True) as conn:  # keyed by the search_path in use
            conn.execute("CREATE SCHEMA IF NOT EXISTS shadow")
            conn.execute("CREATE TABLE IF NOT EXISTS shadow.prices (id int, amount numeric, at date)")
            conn.execute("SET search_path = shadow, public")
            if mode == "session":  # the session's own SET: its reads see shadow.prices
                assert conn.execute(sql).fetchall() == []
            conn.execute("DROP SCHEMA shadow CASCADE")
    finally:
        proxy.close()


REACH_SCHEMA = """
DROP TABLE IF EXISTS prices, orders, lines, events, quiet, m CASCADE;
DROP FUNCTION IF EXISTS bump(), on_event() CASCADE;
DROP PROCEDURE IF EXISTS bump_all();
CREATE TABLE prices (id int PRIMARY KEY, p int);
INSERT INTO prices VALUES (1, 10);
CREATE PROCEDURE bump_all() LANGUAGE sql AS $$UPDATE prices SET p = p + 1$$;
CREATE FUNCTION bump() RETURNS int LANGUAGE plpgsql AS
  $$BEGIN UPDATE prices SET p = p + 1; RETURN 1; END$$;
CREATE TABLE orders (id int PRIMARY KEY);
CREATE TABLE lines (id int, order_id int REFERENCES orders ON DELETE CASCADE);
INSERT INTO orders SELECT generate_series(1, 5);
INSERT INTO lines SELECT g, g FROM generate_series(1, 5) g;
CREATE FUNCTION on_event() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN UPDATE prices SET p = p + 100; RETURN NEW; END$$;
CREATE TABLE events (id int);
CREATE TRIGGER priced AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION on_event();
CREATE TABLE quiet (id int);
CREATE TABLE m (at int, v int) PARTITION BY RANGE (at);
CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (100);
CREATE VIEW price_view AS SELECT p FROM prices;
"""


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_writes_that_reach_other_tables_invalidate_them(pg_dsn: str, mode: str) -> None:
    """Rows a write changes without naming their table — through a function, a trigger, a
    cascading foreign key, a partition or the base table of a view — are not served stale;
    a write that reaches nothing cached leaves the cache alone."""
    from dbsight.sql import analyze

    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        setup.execute(REACH_SCHEMA)
    view_read = "SELECT p FROM price_view"
    rules = [{"table": t, "ttl_s": 600} for t in ("prices", "lines", "m", "m1")]
    rules.append({"fingerprint": analyze(view_read).fingerprint, "ttl_s": 600})
    proxy = RunningProxy(ProxyConfig(
        listen="127.0.0.1:0", upstream=pg_dsn, pool_mode=mode, cache=rules
    ))
    try:
        with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn, \
                psycopg.connect(pg_dsn, autocommit=True) as direct:

            def served_fresh(read: str, write: str) -> None:
                conn.execute(read).fetchall()
                hits = cache_stats(proxy)["hits"]
                conn.execute(read).fetchall()
                assert cache_stats(proxy)["hits"] == hits + 1, read  # cached
                conn.execute(write)
                assert conn.execute(read).fetchall() == direct.execute(read).fetchall(), write

            served_fresh("SELECT p FROM prices", "SELECT bump()")
            served_fresh("SELECT p FROM prices", "INSERT INTO quiet SELECT bump()")
            served_fresh("SELECT p FROM prices", "INSERT INTO events VALUES (1)")  # trigger
            served_fresh("SELECT count(*) FROM lines", "DELETE FROM orders WHERE id = 1")
            served_fresh("SELECT count(*) FROM m", "INSERT INTO m1 VALUES (1, 1)")
            served_fresh("SELECT count(*) FROM m1", "INSERT INTO m VALUES (2, 1)")
            served_fresh(view_read, "UPDATE prices SET p = p + 1")
            served_fresh("SELECT p FROM prices", "DO $$BEGIN UPDATE prices SET p = 0; END$$")
            served_fresh("SELECT p FROM prices", "SELECT 1; CALL bump_all()")

            conn.execute("SELECT p FROM prices").fetchall()
            hits = cache_stats(proxy)["hits"]
            conn.execute("INSERT INTO quiet VALUES (1)")  # reaches no cached table
            conn.execute("SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL")
            conn.execute("SELECT p FROM prices").fetchall()
            assert cache_stats(proxy)["hits"] == hits + 1
    finally:
        proxy.close()


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_an_asyncpg_pool_keeps_hitting_the_cache(pg_dsn: str, mode: str) -> None:
    """asyncpg resets each connection it gets back (advisory unlocks, CLOSE ALL, UNLISTEN,
    RESET ALL): that writes no table, and leaves the cache as it was."""
    proxy = caching_prices(pg_dsn, mode)
    try:
        async def borrow_and_read() -> None:
            pool = await asyncpg.create_pool(proxy.dsn(pg_dsn), min_size=1, max_size=1)
            try:
                for _ in range(4):
                    async with pool.acquire() as conn:  # reset when it goes back
                        assert await conn.fetchval(
                            "SELECT amount FROM prices WHERE id = $1", 2
                        ) == 5
            finally:
                await pool.close()

        asyncio.run(borrow_and_read())
        assert cache_stats(proxy)["hits"] == 3
    finally:
        proxy.close()


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_sessions_with_other_settings_get_their_own_answers(pg_dsn: str, mode: str) -> None:
    """A timestamptz is sent in the session's TimeZone: a session that SET another one (or
    asked for it at startup) is not served an answer cached for the first."""
    proxy = caching_prices(pg_dsn, mode)
    sql = "SELECT id, at::timestamptz FROM prices ORDER BY id"
    try:
        dsn = proxy.dsn(pg_dsn)
        tokyo = f"{dsn}{'&' if '?' in dsn else '?'}options=-c%20TimeZone%3DAsia%2FTokyo"
        utc = raw_answer(dsn, sql)
        assert raw_answer(dsn, sql) == utc  # a hit
        assert raw_answer(tokyo, sql) == raw_answer(
            f"{pg_dsn}{'&' if '?' in pg_dsn else '?'}options=-c%20TimeZone%3DAsia%2FTokyo", sql
        ) != utc
        lima = "SET TimeZone = 'America/Lima'"  # a SET of its own (kept in both modes)
        assert raw_answer(dsn, sql, lima) == raw_answer(pg_dsn, sql, lima) != utc
    finally:
        proxy.close()


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_answers_from_the_cache_are_observed_as_statements(pg_dsn: str, mode: str) -> None:
    from dbsight._runtime import get_runtime
    from dbsight.sql import analyze

    proxy = caching_prices(pg_dsn, mode)
    try:
        dsn = proxy.dsn(pg_dsn)
        simple = "SELECT id, amount FROM prices ORDER BY id"
        prepared = "SELECT amount FROM prices WHERE id = $1"
        stats = get_runtime().stats
        before = {sql: (stats.get(analyze(sql).fingerprint) or None) for sql in (simple, prepared)}
        with psycopg.connect(dsn, autocommit=True) as conn:
            for _ in range(3):  # a miss, then two hits
                assert len(conn.execute(simple).fetchall()) == 2

        async def fetch() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                for _ in range(3):
                    assert await conn.fetchval(prepared, 2) == 5
            finally:
                await conn.close()

        asyncio.run(fetch())
        assert cache_stats(proxy)["hits"] >= 4
        for sql, rows in ((simple, 2), (prepared, 1)):
            after = stats.get(analyze(sql).fingerprint)
            assert after is not None
            old = before[sql]
            calls = after.calls - (old.calls if old else 0)
            counted = (after.rows or 0) - ((old.rows or 0) if old else 0)
            assert (calls, counted) == (3, 3 * rows), sql  # every call, the hits included
    finally:
        proxy.close()
