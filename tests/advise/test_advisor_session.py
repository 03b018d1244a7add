"""The advisor's own session: it does not queue behind a lock (DDL waiting on it would stall
the application behind it), and a statement it cannot plan is a finding, not a failure."""

from __future__ import annotations

import time

import psycopg
from advisor_schema import setup, statement, workload

from dbsight.advise import advise_indexes

SCRIPT = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE a (id int, v int);
CREATE TABLE b (id int, v int);
INSERT INTO a SELECT i, i FROM generate_series(1, 20000) i;
INSERT INTO b SELECT i, i FROM generate_series(1, 20000) i;
ANALYZE
"""


def test_a_locked_table_is_skipped_after_lock_timeout_not_waited_for(pg_dsn: str) -> None:
    setup(pg_dsn, SCRIPT)
    w = workload(
        statement("SELECT * FROM a WHERE v = 1", calls=100, total_ms=900),
        statement("SELECT * FROM b WHERE v = 1", calls=100, total_ms=900),
    )
    with psycopg.connect(pg_dsn) as holder:
        holder.execute("LOCK TABLE b IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        advice = advise_indexes(pg_dsn, w)
        elapsed = time.monotonic() - started
        holder.rollback()
    assert elapsed < 15
    assert [i.index.table for i in advice.indexes] == ["a"]
    failed = [f for f in advice.findings if f["kind"] == "explain_failed"]
    assert [f["normalized"] for f in failed] == ["SELECT * FROM b WHERE v = $1"]


def test_a_statement_that_cannot_be_planned_is_a_finding(pg_dsn: str) -> None:
    setup(pg_dsn, SCRIPT)
    w = workload(
        statement("SELECT * FROM a WHERE v = 1", calls=100, total_ms=900),
        # The text refers to a column the table does not have (the workload came from
        # another version of the schema).
        statement("SELECT * FROM b WHERE missing = 1", calls=100, total_ms=900),
    )
    advice = advise_indexes(pg_dsn, w)
    assert [i.index.table for i in advice.indexes] == ["a"]
    kinds = {f["kind"]: f for f in advice.findings}
    assert kinds["explain_failed"]["normalized"] == "SELECT * FROM b WHERE missing = $1"
    assert advice.analyzed == 1


def test_unknown_tables_are_a_finding(pg_dsn: str) -> None:
    setup(pg_dsn, SCRIPT)
    w = workload(
        statement("SELECT * FROM a WHERE v = 1", calls=100, total_ms=900),
        statement("SELECT * FROM gone WHERE v = 1", calls=100, total_ms=900),
        statement("SELECT 1", calls=100, total_ms=900),
    )
    advice = advise_indexes(pg_dsn, w)
    [finding] = [f for f in advice.findings if f["kind"] == "unknown_tables"]
    assert finding["normalized"] == "SELECT * FROM gone WHERE v = $1"


def test_samples_as_sent_with_comments_and_semicolons_are_planned(pg_dsn: str) -> None:
    from dbsight.workload import Sample

    setup(pg_dsn, SCRIPT)
    samples = [
        Sample("SELECT * FROM a WHERE v = 11; -- from the app"),
        Sample("/* route=/a */ SELECT * FROM a WHERE v = 12 -- trailing"),
        Sample("SELECT * FROM a WHERE v = $1 -- extended", ("13",)),
        # Two statements in one sample are never sent to the database.
        Sample("SELECT * FROM a WHERE v = 14; DROP TABLE b"),
    ]
    w = workload(statement("SELECT * FROM a WHERE v = 1", calls=100, total_ms=900,
                           samples=samples))  # fmt: skip
    advice = advise_indexes(pg_dsn, w)
    [index] = advice.indexes
    assert index.statements[0].generic_plan is False
    assert not [f for f in advice.findings if f["kind"] == "explain_failed"]
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT to_regclass('b')").fetchone()[0] == "b"


def test_a_candidate_hypopg_refuses_costs_only_itself(pg_dsn: str) -> None:
    """xid has no btree operator class: HypoPG refuses an index on it, the rest goes on."""
    setup(pg_dsn, SCRIPT + ";\nCREATE TABLE x (id int, tx xid);\n"
          "INSERT INTO x SELECT i, (i % 1000)::text::xid FROM generate_series(1, 20000) i;\n"
          "ANALYZE x")  # fmt: skip
    w = workload(
        statement("SELECT * FROM a WHERE v = 1", calls=100, total_ms=900),
        statement("SELECT id FROM x WHERE tx = '5'::xid", calls=100, total_ms=900),
    )
    advice = advise_indexes(pg_dsn, w)
    assert [i.index.table for i in advice.indexes] == ["a"]
    assert advice.analyzed == 2
