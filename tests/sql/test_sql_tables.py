"""Tables read or written, in order of first appearance."""

from __future__ import annotations

import pytest

from dbsight.sql import analyze

PG_TABLES = [
    ("SELECT * FROM users", ("users",)),
    ("SELECT * FROM Users", ("users",)),  # unquoted: folded like PostgreSQL does
    ('SELECT * FROM "Users"', ("Users",)),  # quoted: kept exact
    ("SELECT * FROM public.users", ("public.users",)),
    ('SELECT * FROM "Public"."Users"', ("Public.Users",)),
    ("SELECT * FROM db.public.users", ("db.public.users",)),
    ("SELECT * FROM a JOIN b ON a.id = b.a_id LEFT JOIN c USING (id)", ("a", "b", "c")),
    ("SELECT * FROM a, b, a", ("a", "b")),
    ("SELECT * FROM a WHERE id IN (SELECT a_id FROM b)", ("a", "b")),
    ("SELECT * FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.x = a.x)", ("a", "b")),
    ("SELECT (SELECT max(x) FROM b) FROM a", ("b", "a")),
    ("SELECT * FROM (SELECT * FROM inner_t) s", ("inner_t",)),
    ("SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.a = a.id) l", ("a", "b")),
    ("SELECT * FROM a CROSS JOIN LATERAL f(a.x)", ("a",)),
    ("SELECT a FROM x UNION SELECT b FROM y EXCEPT SELECT c FROM z", ("x", "y", "z")),
    # CTE names are not tables ...
    ("WITH c AS (SELECT * FROM base) SELECT * FROM c JOIN other ON true", ("base", "other")),
    ("WITH a AS (SELECT * FROM t1), b AS (SELECT * FROM a) SELECT * FROM b", ("t1",)),
    ("WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT n FROM r) SELECT * FROM r", ()),
    # ... but a non-recursive CTE's own name inside it is the real table
    ("WITH t AS (SELECT * FROM t) SELECT * FROM t", ("t",)),
    # a qualified name never refers to a CTE
    ("WITH t AS (SELECT 1) SELECT * FROM t JOIN public.t ON true", ("public.t",)),
    # nested WITH scopes
    ("SELECT * FROM (WITH x AS (SELECT * FROM s) SELECT * FROM x) q, x", ("s", "x")),
    ("INSERT INTO t (a) VALUES (1)", ("t",)),
    ("INSERT INTO archive SELECT * FROM live WHERE old", ("archive", "live")),
    ("WITH src AS (SELECT * FROM live) INSERT INTO archive SELECT * FROM src", ("live", "archive")),
    ("UPDATE t SET a = u.a FROM u WHERE t.id = u.id", ("t", "u")),
    ("UPDATE t SET a = (SELECT max(a) FROM u)", ("t", "u")),
    ("DELETE FROM t USING u WHERE t.id = u.id", ("t", "u")),
    ("DELETE FROM t WHERE id IN (SELECT id FROM u)", ("t", "u")),
    ("WITH d AS (DELETE FROM t RETURNING *) INSERT INTO log SELECT * FROM d", ("t", "log")),
    (
        "MERGE INTO target t USING source s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT VALUES (s.id)",
        ("target", "source"),
    ),
    ("SELECT * INTO new_t FROM old_t", ("new_t", "old_t")),
    ("CREATE TABLE x AS SELECT * FROM y", ("x", "y")),
    ("CREATE TABLE child (id int REFERENCES parent (id))", ("child", "parent")),
    ("CREATE INDEX idx ON s.t (a)", ("s.t",)),
    ("ALTER TABLE t ADD COLUMN b int", ("t",)),
    ("DROP TABLE a, s.b", ("a", "s.b")),
    ("TRUNCATE a, b", ("a", "b")),
    ("COPY t FROM STDIN", ("t",)),
    ("LOCK TABLE t", ("t",)),
    ("EXPLAIN SELECT * FROM t", ("t",)),
    ("BEGIN; UPDATE a SET x = 1; SELECT * FROM b; COMMIT", ("a", "b")),
    ("SELECT * FROM generate_series(1, 3)", ()),
    ("SELECT 1", ()),
    ("not sql", ()),
]


@pytest.mark.parametrize(("sql", "tables"), PG_TABLES)
def test_tables_postgresql(sql, tables):
    assert analyze(sql).tables == tables


@pytest.mark.parametrize(
    ("dialect", "sql", "tables"),
    [
        ("mysql", "SELECT * FROM a JOIN b ON a.id = b.id", ("a", "b")),
        ("mysql", "SELECT * FROM db.t", ("db.t",)),
        ("mysql", "SELECT * FROM `My Table`", ("My Table",)),
        ("mysql", "SELECT * FROM a WHERE x IN (SELECT y FROM b)", ("a", "b")),
        ("mysql", "WITH c AS (SELECT * FROM base) SELECT * FROM c", ("base",)),
        ("mysql", "INSERT INTO t (a) SELECT a FROM u", ("t", "u")),
        ("mysql", "UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.a = 1", ("t1", "t2")),
        ("mysql", "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id", ("t1", "t2")),
        ("mysql", "REPLACE INTO t (a) SELECT a FROM u", ("t", "u")),
        ("mysql", "SELECT a FROM x UNION SELECT b FROM y", ("x", "y")),
        ("sqlite", "SELECT * FROM [my table] JOIN other USING (id)", ("my table", "other")),
        ("sqlite", "INSERT OR REPLACE INTO t VALUES (1)", ("t",)),
        ("sqlite", "SELECT * FROM json_each('[1]')", ()),
        (
            "sqlite",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
            (),
        ),
        ("generic", "SELECT * FROM s.t JOIN u ON true", ("s.t", "u")),
    ],
)
def test_tables_other_dialects(dialect, sql, tables):
    assert analyze(sql, dialect).tables == tables
