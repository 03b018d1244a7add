"""pg_stat_statements as a workload: the server's rows fingerprinted as dbsight fingerprints
what its instruments see, so both join statement for statement."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import psycopg
import pytest

import dbsight
from dbsight.workload import (
    ANALYSIS_MARK,
    Workload,
    WorkloadError,
    from_pg_stat_statements,
    from_stats,
)


def _prepare(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute(
            "CREATE TABLE orders (id int PRIMARY KEY, customer int NOT NULL, status text, "
            "total numeric, created timestamptz DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO orders (id, customer, status, total) "
            "SELECT g, g % 50, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'done' END, g * 1.5 "
            "FROM generate_series(1, 500) g"
        )
        dboid = conn.execute(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        assert dboid is not None
        conn.execute("SELECT pg_stat_statements_reset(0, %s, 0)", (dboid[0],))


def _ours(workload: Workload) -> dict[str, Any]:
    return {s.fingerprint: s for s in workload if "orders" in s.tables}


def _run_psycopg(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        dbsight.instrument(conn)
        # literals, as an application that inlines them sends them
        conn.execute("SELECT * FROM orders WHERE id = 7")
        conn.execute("SELECT * FROM orders WHERE id = 8")
        conn.execute("SELECT id FROM orders WHERE customer IN (1, 2, 3) AND status = 'open'")
        conn.execute("SELECT id FROM orders WHERE customer IN (4, 5) AND status = 'done'")
        conn.execute("SELECT count(*) FROM orders WHERE total > 10.5 AND created < now()")
        # psycopg's placeholders (sent to the server as $1 ...)
        conn.execute("SELECT * FROM orders WHERE customer = %s ORDER BY id LIMIT %s", (3, 5))
        conn.execute("SELECT * FROM orders WHERE customer = %(c)s ORDER BY id LIMIT %(n)s",
                     {"c": 4, "n": 2})
        conn.execute("SELECT id FROM orders WHERE customer IN (%s, %s, %s)", (1, 2, 3))
        conn.execute("SELECT id FROM orders WHERE id = ANY(%s)", ([1, 2, 3],))
        with conn.transaction():
            conn.execute("UPDATE orders SET status = %s WHERE id = %s", ("done", 10))
            conn.execute("UPDATE orders SET status = 'open' WHERE id = 20")
        conn.execute("INSERT INTO orders (id, customer, status, total) VALUES (1001, 1, 'open', 2)")
        conn.execute("INSERT INTO orders (id, customer, status, total) VALUES (%s, %s, %s, %s)",
                     (1002, 2, "open", 3))
        conn.execute("DELETE FROM orders WHERE id IN (1001, 1002)")


async def _run_asyncpg(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        dbsight.instrument(conn)
        await conn.fetch("SELECT * FROM orders WHERE id = $1", 9)
        await conn.fetch("SELECT * FROM orders WHERE customer = $1 ORDER BY id LIMIT $2", 6, 3)
        await conn.fetch("SELECT id FROM orders WHERE customer IN ($1, $2) AND status = $3",
                         7, 8, "done")
        await conn.fetchval("SELECT count(*) FROM orders WHERE total > 99 AND created < now()")
        await conn.execute("UPDATE orders SET status = $1 WHERE id = $2", "open", 30)
        async with conn.transaction():
            await conn.fetchrow("SELECT * FROM orders WHERE id = 11 FOR UPDATE")
    finally:
        await conn.close()


def test_instrumented_statements_join_the_servers_rows_by_fingerprint(
    pg_dsn: str, configure: Callable[..., Any]
) -> None:
    _prepare(pg_dsn)
    configure()
    _run_psycopg(pg_dsn)
    asyncio.run(_run_asyncpg(pg_dsn))
    # a client dbsight does not instrument
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("SELECT status, count(*) FROM orders GROUP BY status")

    seen = _ours(from_stats())
    server = _ours(from_pg_stat_statements(pg_dsn))
    assert len(seen) >= 10
    for fingerprint, statement in seen.items():
        assert fingerprint in server, f"{statement.normalized!r} has no server row"
        # every call dbsight saw, the server ran once (IN lists of two lengths and
        # several queryids added up)
        assert server[fingerprint].calls == statement.calls, statement.normalized
    # the statement only the server knows is the one from the uninstrumented client
    (only_server,) = [s for fp, s in server.items() if fp not in seen]
    assert only_server.normalized.startswith("SELECT status, count(*) FROM orders GROUP BY")
    assert only_server.sources == ("pg_stat_statements",) and not only_server.instrumented
    assert only_server.p95_s is None and only_server.calls == 1

    merged = _ours(from_stats().merge(from_pg_stat_statements(pg_dsn)))
    assert set(merged) == set(server)
    assert not merged[only_server.fingerprint].instrumented
    for fingerprint in seen:
        statement = merged[fingerprint]
        assert statement.instrumented
        assert set(statement.sources) == {"stats", "pg_stat_statements"}
        assert statement.calls == seen[fingerprint].calls  # counted once, not twice
        assert statement.p95_s is not None  # dbsight's percentile kept


def test_server_rows_are_summed_per_fingerprint_and_chatter_is_left_out(pg_dsn: str) -> None:
    _prepare(pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for n in range(1, 6):  # five IN-list lengths: five rows on the server, one statement
            ids = ", ".join(str(i) for i in range(n))
            conn.execute(f"SELECT id FROM orders WHERE id IN ({ids})")
        with conn.transaction():
            conn.execute("SET LOCAL work_mem = '8MB'")
            conn.execute("SHOW work_mem")
            conn.execute("SELECT pg_sleep(0.05), id FROM orders WHERE id = 1")
        conn.execute("EXPLAIN SELECT * FROM orders")
        conn.execute("ANALYZE orders")
        conn.execute(f"{ANALYSIS_MARK} SELECT count(*) FROM orders WHERE total > 7")
        server_rows = conn.execute(
            "SELECT count(*) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = current_database() AND query LIKE 'SELECT id FROM orders WHERE id IN%'"
        ).fetchone()
    assert server_rows == (5,)  # the server keeps each list length apart
    workload = from_pg_stat_statements(pg_dsn)
    texts = [s.normalized for s in workload]
    (in_list,) = [s for s in workload if "IN (" in s.normalized]
    assert in_list.calls == 5 and in_list.rows == 0 + 1 + 2 + 3 + 4  # no id 0
    (sleep,) = [s for s in workload if "pg_sleep" in s.normalized]
    assert sleep.total_time_s >= 0.05 and sleep.mean_time_s >= 0.05
    assert not any(
        t.startswith(("SET", "SHOW", "BEGIN", "COMMIT", "EXPLAIN", "ANALYZE")) for t in texts
    )
    assert not any("pg_stat_statements" in t or "pg_extension" in t for t in texts)
    assert not any("total >" in t for t in texts)  # dbsight's analysis queries
    assert workload.skipped["utility"] >= 6
    assert all(s.operation in ("select", "insert", "ddl", "other") for s in workload)


def test_window_runs_from_the_last_reset(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        reset = conn.execute(
            "SELECT extract(epoch FROM now() - stats_reset) FROM pg_stat_statements_info"
        ).fetchone()
    workload = from_pg_stat_statements(pg_dsn)
    assert reset is not None and workload.window_s is not None
    assert workload.window_s >= float(reset[0]) - 1.0


def test_a_database_without_the_extension_is_told_how_to_add_it(pg_dsn: str) -> None:
    with pytest.raises(WorkloadError) as caught:
        from_pg_stat_statements(pg_dsn)
    message = str(caught.value)
    assert "pg_stat_statements is not installed" in message
    assert "shared_preload_libraries" in message
    assert "CREATE EXTENSION pg_stat_statements" in message
    assert "\n" not in message


def test_a_server_without_the_library_preloaded_is_told_how_to_load_it() -> None:
    from dbsight.embedded import BinariesNotFoundError
    from dbsight.embedded.postgres import EmbeddedPostgres
    from dbsight.testing._servers import pg_url

    cluster = EmbeddedPostgres(name="dbsight-no-pgss", settings={"shared_preload_libraries": ""})
    try:
        cluster.start()
    except BinariesNotFoundError as exc:
        pytest.skip(f"no PostgreSQL server binaries: {exc}")
    try:
        dsn = pg_url(cluster.dsn("postgres"))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        with pytest.raises(WorkloadError) as caught:
            from_pg_stat_statements(dsn)
    finally:
        cluster.stop()
    message = str(caught.value)
    assert "pg_stat_statements is not loaded" in message
    assert "add pg_stat_statements to shared_preload_libraries" in message
    assert "CREATE EXTENSION pg_stat_statements" in message


def test_an_unreachable_database_is_one_line(unused_tcp_port: int) -> None:
    dsn = f"postgresql://nobody:secret@127.0.0.1:{unused_tcp_port}/shop"
    with pytest.raises(WorkloadError) as caught:
        from_pg_stat_statements(dsn)
    message = str(caught.value)
    where = f"postgresql://nobody@127.0.0.1:{unused_tcp_port}/shop"
    assert message.startswith(f"cannot connect to {where}: ")
    assert "secret" not in message and "\n" not in message
