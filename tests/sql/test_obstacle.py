"""``SqlInfo.obstacle``: why a text is not read-only, in words; empty exactly when it is."""

from __future__ import annotations

import pytest

from dbsight.sql import analyze

CASES = [
    ("postgresql", "SELECT a FROM t WHERE id = $1", ""),
    ("postgresql", "SHOW work_mem", ""),
    ("postgresql", "EXPLAIN SELECT a FROM t", ""),
    ("postgresql", "SELECT a FROM t FOR SHARE", "FOR SHARE (locks rows)"),
    ("postgresql", "SELECT a FROM t FOR KEY SHARE SKIP LOCKED", "FOR KEY SHARE (locks rows)"),
    ("postgresql", "UPDATE t SET a = 1", "UPDATE (writes)"),
    ("postgresql", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
     "MERGE (writes)"),
    ("postgresql", "SELECT a FROM t; DELETE FROM t", "DELETE (writes)"),
    ("postgresql", "COPY t FROM STDIN", "COPY FROM (writes)"),
    ("postgresql", "COMMIT", "COMMIT (transaction control)"),
    ("postgresql", "SET TRANSACTION READ ONLY", "SET TRANSACTION (transaction control)"),
    ("postgresql", "CREATE TABLE u AS SELECT 1", "CREATE TABLE AS (DDL)"),
    ("postgresql", "LOCK TABLE t", "LOCK (not a query)"),
    ("postgresql", "SELECT f(a), s.g() FROM t",
     "calls f(), s.g() (outside the read-only built-ins)"),
    ("postgresql", "SELECT * FROM t TABLESAMPLE foo (1)", "TABLESAMPLE FOO"),
    ("postgresql", "SELECT 'open", "an unterminated quote or comment, or a NUL character"),
    ("postgresql", "SELEKT 1", "does not parse"),
    ("mysql", "SELECT a FROM t", ""),
    ("mysql", "SELECT a FROM t FOR UPDATE", "FOR UPDATE (locks rows)"),
    ("mysql", "REPLACE INTO t VALUES (1)", "REPLACE (not a query)"),
    ("mysql", "SELECT @@version", "a user or system variable"),
    ("sqlite", "DELETE FROM t", "DELETE (writes)"),
    ("sqlite", "SELECT random()", ""),
]


@pytest.mark.parametrize(("dialect", "sql", "obstacle"), CASES)
def test_obstacle_says_why(dialect: str, sql: str, obstacle: str) -> None:
    info = analyze(sql, dialect)
    assert info.obstacle == obstacle
    assert info.read_only is (obstacle == "")


def test_texts_of_one_shape_share_their_obstacle() -> None:
    first = analyze("SELECT a FROM t WHERE id = 1 FOR UPDATE")
    second = analyze("SELECT a FROM t WHERE id = 2 FOR UPDATE")
    assert first.obstacle == second.obstacle == "FOR UPDATE (locks rows)"
