"""Unused, duplicate and invalid indexes, on a database that has each."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from check_helpers import check, connect, flush_stats, objects

from dbsight.check import run_checks
from dbsight.check._thresholds import CheckThresholds


def test_duplicate_indexes_are_those_whose_columns_lead_another_of_the_same_shape(
    pg_dsn: str,
) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer int, placed date, "
                     "status text, tags text[])")  # fmt: skip
        conn.execute("CREATE INDEX orders_customer ON orders (customer)")  # covered
        conn.execute("CREATE INDEX orders_customer_placed ON orders (customer, placed)")
        conn.execute("CREATE INDEX orders_status_a ON orders (status)")  # identical pair:
        conn.execute("CREATE INDEX orders_status_b ON orders (status)")  # the later name goes
        conn.execute("CREATE INDEX orders_id ON orders (id)")  # the primary key covers it
        # Not duplicates: another predicate, another operator class, another method, a
        # unique index, an expression, a column that is not the leading one.
        conn.execute("CREATE INDEX orders_customer_open ON orders (customer) WHERE status = 'open'")
        conn.execute("CREATE INDEX orders_status_pattern ON orders (status text_pattern_ops)")
        conn.execute("CREATE INDEX orders_status_hash ON orders USING hash (status)")
        conn.execute("CREATE UNIQUE INDEX orders_customer_id ON orders (customer, id)")
        conn.execute("CREATE INDEX orders_lower_status ON orders (lower(status))")
        conn.execute("CREATE INDEX orders_placed ON orders (placed)")
        conn.execute("CREATE INDEX orders_tags ON orders USING gin (tags)")

    result = check(pg_dsn, "duplicate_indexes")

    assert result.status == "failed" and result.severity == "warning"
    assert sorted(objects(result)) == ["public.orders_customer", "public.orders_id",
                                       "public.orders_status_b"]  # fmt: skip
    by_index = {item["index"]: item for item in result.items}
    assert by_index["orders_customer"]["covered_by"] in (
        "orders_customer_placed",
        "orders_customer_id",
    )
    assert by_index["orders_customer"]["columns"] == ["customer"]
    assert by_index["orders_status_b"]["covered_by"] == "orders_status_a"
    assert by_index["orders_id"]["covered_by"] == "orders_pkey"
    assert "3 indexes" in result.summary
    assert "DROP INDEX CONCURRENTLY public.orders_status_b;" in (result.hint or "")
    # the hint is printed, not run: the indexes are all still there
    with connect(pg_dsn) as conn:
        names = {
            r[0]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'orders'")
        }
    assert {"orders_customer", "orders_status_b", "orders_id"} <= names


def test_quoted_names_are_quoted_in_the_statements(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        conn.execute('CREATE SCHEMA "Sales"')
        conn.execute('CREATE TABLE "Sales"."Order" (a int, b int)')
        conn.execute('CREATE INDEX "Order A" ON "Sales"."Order" (a)')
        conn.execute('CREATE INDEX "Order AB" ON "Sales"."Order" (a, b)')
    result = check(pg_dsn, "duplicate_indexes")
    assert objects(result) == ['"Sales"."Order A"']
    assert 'DROP INDEX CONCURRENTLY "Sales"."Order A";' in (result.hint or "")


def test_an_index_left_invalid_by_a_failed_concurrent_build_is_invalid(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE emails (id int, address text)")
        conn.execute("INSERT INTO emails VALUES (1, 'a@example.org'), (2, 'a@example.org')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY emails_address ON emails (address)")
    result = check(pg_dsn, "invalid_indexes")
    assert result.status == "failed"
    assert objects(result) == ["public.emails_address"]
    assert result.items[0]["table"] == "emails"
    assert "REINDEX INDEX CONCURRENTLY public.emails_address;" in (result.hint or "")
    # an invalid index is not also reported as unused or duplicate
    unused = check(pg_dsn, "unused_indexes", unused_index_min_bytes=0)
    assert "public.emails_address" not in objects(unused)


def test_an_unused_index_above_the_size_threshold_is_unused(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE events (id int PRIMARY KEY, kind int, at int)")
        conn.execute("INSERT INTO events SELECT n, n % 7, n FROM generate_series(1, 5000) n")
        conn.execute("CREATE INDEX events_kind ON events (kind)")  # never used
        conn.execute("CREATE INDEX events_at ON events (at)")  # used below
        conn.execute("CREATE UNIQUE INDEX events_id_kind ON events (id, kind)")  # unique: kept
        conn.execute("ANALYZE events")
        assert "Index" in str(conn.execute("EXPLAIN SELECT * FROM events WHERE at = 5").fetchall())
        conn.execute("SELECT * FROM events WHERE at = 5")
        size = conn.execute("SELECT pg_relation_size('events_kind')").fetchone()[0]  # type: ignore[index]
        flush_stats(conn)

    result = check(pg_dsn, "unused_indexes", unused_index_min_bytes=size)
    assert result.status == "failed"
    assert objects(result) == ["public.events_kind"]
    item = result.items[0]
    assert item["scans"] == 0 and item["size_bytes"] == size and item["table"] == "events"
    assert result.hint == (
        "Drop them, once sure no rare job needs them (statistics cover only the time since "
        "their reset):\nDROP INDEX CONCURRENTLY public.events_kind;"
    )
    # smaller than the threshold: not reported
    assert check(pg_dsn, "unused_indexes", unused_index_min_bytes=size + 1).status == "ok"


def test_an_index_scanned_on_a_replica_is_not_unused(pg_replicated_db) -> None:  # type: ignore[no-untyped-def]
    primary = pg_replicated_db.primary_dsn
    (replica,) = pg_replicated_db.replica_dsns
    with connect(primary) as conn:
        conn.execute("CREATE TABLE reports (id int, owner int, month int)")
        conn.execute("INSERT INTO reports SELECT n, n % 50, n % 12 FROM generate_series(1, 2000) n")
        conn.execute("CREATE INDEX reports_owner ON reports (owner)")  # read on the replica
        conn.execute("CREATE INDEX reports_month ON reports (month)")  # read nowhere
    pg_replicated_db.wait_for_replay()
    with connect(replica) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute("SELECT * FROM reports WHERE owner = 3").fetchall()
        flush_stats(conn)
    thresholds = CheckThresholds(unused_index_min_bytes=0)

    alone = run_checks(primary, thresholds=thresholds, only=["unused_indexes"])
    assert set(objects(alone.result("unused_indexes"))) == {
        "public.reports_owner",
        "public.reports_month",
    }

    both = run_checks(primary, replicas=[replica], thresholds=thresholds, only=["unused_indexes"])
    result = both.result("unused_indexes")
    assert objects(result) == ["public.reports_month"]
    assert "on the primary and 1 replica" in result.summary
    assert "1 index used only on a replica" in result.summary

    # a replica that cannot be reached: the check cannot say what is unused, the others run
    down = "postgresql://nobody@127.0.0.1:1/postgres"
    report = run_checks(primary, replicas=[down], thresholds=thresholds)
    assert report.result("unused_indexes").status == "error"
    assert (
        "cannot connect to postgresql://nobody@127.0.0.1:1/postgres"
        in report.result("unused_indexes").summary
    )
    assert all(c.status != "error" for c in report.checks if c.name != "unused_indexes")


def test_an_index_being_built_concurrently_is_not_invalid(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE jobs (id int, state text)")
    writer = psycopg.connect(pg_dsn)  # an open write: the build waits for it
    builder = psycopg.connect(pg_dsn, autocommit=True)
    thread = threading.Thread(
        target=lambda: builder.execute("CREATE INDEX CONCURRENTLY jobs_state ON jobs (state)")
    )
    try:
        writer.execute("INSERT INTO jobs VALUES (1, 'queued')")
        thread.start()
        with connect(pg_dsn) as probe:
            deadline = time.monotonic() + 10
            while not probe.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_index WHERE NOT indisvalid"
                " AND indexrelid = to_regclass('jobs_state'))"
            ).fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < deadline
                time.sleep(0.02)
        result = check(pg_dsn, "invalid_indexes")
        assert result.status == "ok", result  # invalid, but being built right now
    finally:
        writer.rollback()
        thread.join(10)
        writer.close()
        builder.close()
    assert check(pg_dsn, "invalid_indexes").status == "ok"
