"""The normalized text: literals and placeholders masked, safe to log."""

from __future__ import annotations

import pytest

from dbsight.sql import analyze, mask_literals

PG_CASES = [
    ("SELECT * FROM t WHERE id = 42", "SELECT * FROM t WHERE id = $1"),
    (
        "SELECT * FROM t WHERE a = 'x' AND b = 1.5 AND c = $1",
        "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $3",
    ),
    ("SELECT * FROM t WHERE a = %s AND b = %(name)s", "SELECT * FROM t WHERE a = $1 AND b = $2"),
    ("SELECT * FROM t WHERE a = :a AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"),
    ("SELECT $2, $1", "SELECT $1, $2"),
    ("SELECT E'it\\'s', U&'\\0041', B'0101', X'FF', N'nat'", "SELECT $1, $2, $3, $4, $5"),
    ("SELECT $$dollar$$, $tag$ a ' b $tag$", "SELECT $1, $2"),
    ("SELECT 0x1F, 1_000, .5, 1e10, 3.14", "SELECT $1, $2, $3, $4, $5"),
    ("SELECT  *\n\tFROM   t  -- comment\n WHERE /* c */ a = 1", "SELECT * FROM t WHERE a = $1"),
    ("SELECT /* outer /* nested */ still */ 1", "SELECT $1"),
    ("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN ($1 /*, ... */)"),
    (
        "SELECT * FROM t WHERE id IN (%s,%s) AND x = 5",
        "SELECT * FROM t WHERE id IN ($1 /*, ... */) AND x = $2",
    ),
    ("SELECT * FROM t WHERE id IN (7)", "SELECT * FROM t WHERE id IN ($1)"),
    ("SELECT * FROM t WHERE id NOT IN (1, 2)", "SELECT * FROM t WHERE id NOT IN ($1 /*, ... */)"),
    ("SELECT * FROM t WHERE id IN (SELECT 1)", "SELECT * FROM t WHERE id IN (SELECT $1)"),
    (
        "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')",
        "INSERT INTO t (a, b) VALUES ($1, $2) /*, ... */",
    ),
    ("INSERT INTO t VALUES (1, 2), (3)", "INSERT INTO t VALUES ($1, $2), ($3)"),
    ("SELECT x::int, a := 1, arr[1:2]", "SELECT x::int, a := $1, arr[$2:$3]"),
    ("SELECT data ? 'k', data ?| array['a'] FROM t", "SELECT data ? $1, data ?| array[$2] FROM t"),
    ('SELECT "MixedCase", "odd ""name""" FROM "T"', 'SELECT "MixedCase", "odd ""name""" FROM "T"'),
    ("select lower(Name) from Users", "select lower(Name) from Users"),
    ("SELECT 1;", "SELECT $1"),
    ("SELECT t1.c2, a$1 FROM t1", "SELECT t1.c2, a$1 FROM t1"),
    ("", ""),
    ("  -- only a comment", ""),
]


@pytest.mark.parametrize(("sql", "expected"), PG_CASES)
def test_normalized_postgresql(sql, expected):
    assert analyze(sql).normalized == expected
    assert mask_literals(sql) == expected


@pytest.mark.parametrize(
    ("dialect", "sql", "expected"),
    [
        (
            "mysql",
            "SELECT * FROM t WHERE a = \"x\" AND b = 'y'",
            "SELECT * FROM t WHERE a = $1 AND b = $2",
        ),
        ("mysql", "SELECT 'it\\'s', _utf8mb4'x', X'41', 0x1F", "SELECT $1, $2, $3, $4"),
        ("mysql", "SELECT 1 # comment\n, 2 -- c\n, 3", "SELECT $1 , $2 , $3"),
        ("mysql", "SELECT 1--1", "SELECT $1--$2"),
        (
            "mysql",
            "SELECT * FROM `t` WHERE `a` IN (%s, %s)",
            "SELECT * FROM `t` WHERE `a` IN ($1 /*, ... */)",
        ),
        ("mysql", "SELECT 1 /*! FOR UPDATE */", "SELECT $1 FOR UPDATE"),
        (
            "sqlite",
            "SELECT * FROM [t] WHERE a = :a AND b = @b AND c = $c AND d = ?3",
            "SELECT * FROM [t] WHERE a = $1 AND b = $2 AND c = $3 AND d = $4",
        ),
        ("sqlite", "SELECT X'00ff', 'a''b'", "SELECT $1, $2"),
        (
            "oracle",
            "SELECT * FROM t WHERE a = :a AND b = 'x'",
            "SELECT * FROM t WHERE a = $1 AND b = $2",
        ),
    ],
)
def test_normalized_other_dialects(dialect, sql, expected):
    assert analyze(sql, dialect).normalized == expected
    assert mask_literals(sql, dialect) == expected


SECRET_STATEMENTS = [
    ("postgresql", "SELECT * FROM users WHERE email = 'SECRET1@example.com'"),
    ("postgresql", "SELECT E'SECRET1\\'still', 'a''SECRET2'"),
    ("postgresql", "SELECT $$SECRET1$$, $q$SECRET2 ' \" -- /* $q$"),
    ("postgresql", "SELECT U&'SECRET1', B'101', X'SECRET2'"),
    ("postgresql", "SELECT 'SECRET1'\n'SECRET2'"),  # continued literal
    ("postgresql", "SELECT 'SECRET1\\', 'SECRET2'"),  # backslash in a standard string
    ("postgresql", "SELECT 'unterminated SECRET1"),
    ("postgresql", "SELECT /* unterminated 'SECRET1'"),
    ("postgresql", "SELECT /* /* */ ' */ SELECT 'SECRET1'"),
    ("postgresql", "SELECT 1 -- SECRET1 in a comment"),
    ("postgresql", "SELECT 31415926, 2.7182818e5"),
    ("postgresql", "SELECT \"ok\" FROM t WHERE x = 'SECRET1' AND y = $tag$SECRET2$tag$"),
    ("postgresql", "SELECT 'SECRET1' \x00 'SECRET2'"),
    ("mysql", "SELECT \"SECRET1\", 'SECRET2', 'it\\'s SECRET3'"),
    ("mysql", "SELECT 1 # SECRET1\n"),
    ("mysql", "SELECT /*! 'SECRET1' */ 1"),
    ("mysql", "SELECT 'SECRET1' 'SECRET2'"),
    ("sqlite", "SELECT 'SECRET1', X'5EC2E7'"),
    ("sqlite", "SELECT 'SECRET1''SECRET2'"),
    ("generic", "SELECT 'SECRET1', 31415926"),
]


@pytest.mark.parametrize(("dialect", "sql"), SECRET_STATEMENTS)
def test_normalized_never_contains_a_literal(dialect, sql):
    normalized = analyze(sql, dialect).normalized
    for secret in ("SECRET", "31415926", "2718", "5EC2E7", "101"):
        assert secret not in normalized, normalized
