"""Table checks: sequential scans of a big table, dead tuples, stale statistics, the cache
hit ratio and transaction-ID wraparound, on tables built for each."""

from __future__ import annotations

import pytest
from check_helpers import check, connect, flush_stats, objects

from dbsight.check._maintenance import XID_MAX


def test_a_big_table_read_by_sequential_scans(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE visits (id int PRIMARY KEY, page int)")
        conn.execute("INSERT INTO visits SELECT n, n % 100 FROM generate_series(1, 10000) n")
        conn.execute("CREATE TABLE small (id int PRIMARY KEY, page int)")  # same reads, 100 rows
        conn.execute("INSERT INTO small SELECT n, n % 100 FROM generate_series(1, 100) n")
        for table in ("visits", "small"):
            conn.execute(f"SELECT * FROM {table} WHERE id = 7").fetchall()  # one index scan
            for _ in range(20):
                conn.execute(f"SELECT count(*) FROM {table} WHERE page = 3").fetchall()
        flush_stats(conn)

    result = check(pg_dsn, "sequential_scans")

    assert result.status == "failed"
    assert objects(result) == ["public.visits"]
    (item,) = result.items
    assert item["live_rows"] == 10_000 and item["seq_scans"] >= 20 and item["index_scans"] >= 1
    assert item["index_percent"] < 95
    assert "dbsight advise" in (result.hint or "")
    # the same table under the row threshold passes
    assert check(pg_dsn, "sequential_scans", seq_scan_min_rows=10_001).status == "ok"


def test_dead_tuples_where_autovacuum_is_off(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE sessions (id int, data text) WITH (autovacuum_enabled = off)")
        conn.execute("INSERT INTO sessions SELECT n, 'x' FROM generate_series(1, 10000) n")
        conn.execute("DELETE FROM sessions WHERE id <= 5000")
        conn.execute("CREATE TABLE churn (id int)")  # a few dead rows: under 1,000
        conn.execute("INSERT INTO churn SELECT generate_series(1, 100)")
        conn.execute("DELETE FROM churn")
        flush_stats(conn)

    result = check(pg_dsn, "dead_tuples")

    assert result.status == "failed"
    assert objects(result) == ["public.sessions"]
    (item,) = result.items
    assert item["dead_rows"] == 5000 and item["live_rows"] == 5000 and item["dead_percent"] == 50.0
    assert item["autovacuum_enabled"] is False and item["last_vacuum"] is None
    hint = result.hint or ""
    assert "VACUUM (ANALYZE, VERBOSE) public.sessions;" in hint
    assert "ALTER TABLE public.sessions RESET (autovacuum_enabled);" in hint

    with connect(pg_dsn) as conn:  # a person runs the hint
        conn.execute("VACUUM (ANALYZE) sessions")
        flush_stats(conn)
    assert check(pg_dsn, "dead_tuples").status == "ok"


def test_a_big_table_never_analyzed_has_stale_statistics(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE ledger (id int) WITH (autovacuum_enabled = off)")
        conn.execute("INSERT INTO ledger SELECT generate_series(1, 10000)")
        flush_stats(conn)
    result = check(pg_dsn, "vacuum_analyze")
    assert result.status == "failed" and result.severity == "info"
    (item,) = result.items
    assert item["table"] == "ledger" and item["reason"] == "never analyzed"
    assert "ANALYZE VERBOSE public.ledger;" in (result.hint or "")

    with connect(pg_dsn) as conn:
        conn.execute("ANALYZE ledger")
        flush_stats(conn)
    assert check(pg_dsn, "vacuum_analyze").status == "ok"
    with connect(pg_dsn) as conn:  # a quarter of the rows changed since
        conn.execute("UPDATE ledger SET id = -id WHERE id <= 2500")
        flush_stats(conn)
    again = check(pg_dsn, "vacuum_analyze")
    assert again.status == "failed"
    assert again.items[0]["reason"] == "25% of rows changed since the last analyze"


def test_cache_hit_ratio_of_a_table_read_from_disk(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE tiny (id int PRIMARY KEY)")
        conn.execute("INSERT INTO tiny SELECT generate_series(1, 10)")
        conn.execute("SELECT * FROM tiny WHERE id = 1").fetchall()
        flush_stats(conn)
    quiet = check(pg_dsn, "cache_hit_ratio")
    assert quiet.status == "ok"  # too few block accesses to judge
    assert {i["kind"]: i["judged"] for i in quiet.items} == {"heap": False, "index": False}
    assert "not judged" in quiet.summary

    with connect(pg_dsn) as conn:
        # Written through the bulk-write ring and larger than a quarter of shared_buffers
        # (32 MB here), the table is read through a small ring too: most of its blocks
        # come from outside shared buffers.
        conn.execute("CREATE TABLE archive AS SELECT n AS id, repeat('x', 200) AS body "
                     "FROM generate_series(1, 60000) n")  # fmt: skip
        for _ in range(2):
            conn.execute("SELECT count(*) FROM archive").fetchall()
        flush_stats(conn)
        big = conn.execute(
            "SELECT 4 * pg_relation_size('archive')"
            " > pg_size_bytes(current_setting('shared_buffers'))"
        ).fetchone()[0]  # type: ignore[index]
    if not big:
        pytest.skip("shared_buffers is too large here for a table read from disk")
    result = check(pg_dsn, "cache_hit_ratio")
    assert result.status == "failed"
    assert objects(result) == ["heap"]
    heap = next(i for i in result.items if i["kind"] == "heap")
    assert heap["judged"] and heap["hit_ratio"] < 0.99 and heap["reads"] > 1000
    assert "shared_buffers" in (result.hint or "")


def test_transaction_id_wraparound_by_its_thresholds(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE t (id int)")
    ok = check(pg_dsn, "transaction_id_wraparound")
    assert ok.status == "ok" and ok.severity == "warning"
    assert "transactions left before wraparound" in ok.summary
    # Every table is under the hard stop: with the limits there, every table fails, and the
    # critical limit makes the check critical.
    warned = check(pg_dsn, "transaction_id_wraparound", xid_warning_left=XID_MAX)
    assert warned.status == "failed" and warned.severity == "warning"
    assert "public.t" in objects(warned)
    item = next(i for i in warned.items if i["table"] == "t")
    assert item["transactions_left"] == XID_MAX - item["xid_age"]
    assert "VACUUM (FREEZE, VERBOSE)" in (warned.hint or "")
    critical = check(pg_dsn, "transaction_id_wraparound", xid_warning_left=XID_MAX,
                     xid_critical_left=XID_MAX)  # fmt: skip
    assert critical.severity == "critical"
