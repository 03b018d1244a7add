"""Fingerprints: equal for the same statement shape, different otherwise."""

from __future__ import annotations

import re

import pytest

from dbsight.sql import analyze
from dbsight.sql._analyze import analyze_fresh

# Each inner list: texts that must share one fingerprint.  Fingerprints of
# different inner lists (of the same dialect) must all differ.
PG_GROUPS = [
    [
        "SELECT * FROM t WHERE id = 1",
        "SELECT * FROM t WHERE id = 42",
        "SELECT * FROM t WHERE id = 'x'",
        "SELECT * FROM t WHERE id = $1",
        "SELECT * FROM t WHERE id = $7",
        "SELECT * FROM t WHERE id = %s",
        "SELECT * FROM t WHERE id = %(id)s",
        "SELECT * FROM t WHERE id = :id",
        "SELECT * FROM t WHERE id = ?",
        "select  *\n\tfrom t\n where id = 1",
        "SELECT * /* comment */ FROM t -- trailing\nWHERE id = 1",
        "/* leading */ SELECT * FROM t WHERE id = 1;",
        "SELECT * FROM t WHERE id = E'x'",
        "SELECT * FROM t WHERE id = $$x$$",
        "SELECT * FROM t WHERE id = 1.5e3",
    ],
    [
        "SELECT * FROM t WHERE id IN (1, 2, 3)",
        "SELECT * FROM t WHERE id IN (1)",
        "SELECT * FROM t WHERE id IN ($1, $2)",
        "SELECT * FROM t WHERE id IN (%s, %s, %s)",
        "SELECT * FROM t WHERE id IN (%(a)s, %(b)s)",
        "SELECT * FROM t WHERE id IN (:a, :b, :c, :d)",
        "SELECT * FROM t WHERE id IN (?, ?)",
        "SELECT * FROM t WHERE id IN ('a', 'b')",
        "SELECT * FROM t WHERE id in (1,2,3,4,5,6,7,8,9,10)",
    ],
    [
        "SELECT * FROM t WHERE id = ANY($1)",
        "SELECT * FROM t WHERE id = ANY(%s)",
        "SELECT * FROM t WHERE id = ANY('{1,2,3}')",
        "SELECT * FROM t WHERE id = ANY(:ids)",
    ],
    ["SELECT * FROM t WHERE id <> ALL($1)"],
    ["SELECT * FROM t WHERE id NOT IN (1, 2)", "SELECT * FROM t WHERE id NOT IN ($1)"],
    ["SELECT * FROM t WHERE id <> 1"],
    ["SELECT * FROM t WHERE id > 1", "SELECT * FROM t WHERE id > $1"],
    ["SELECT * FROM t WHERE id >= 1"],
    ["SELECT * FROM t WHERE name LIKE 'a%'"],
    ["SELECT * FROM t WHERE name ILIKE 'a%'"],
    ["SELECT * FROM t WHERE id IS NULL"],
    ["SELECT * FROM u WHERE id = 1"],
    ["SELECT * FROM public.t WHERE id = 1"],
    ["SELECT a FROM t WHERE id = 1"],
    ["SELECT * FROM t WHERE other_id = 1"],
    ["SELECT * FROM t WHERE id = 1 FOR UPDATE"],
    ["SELECT * FROM t WHERE id = 1 ORDER BY a"],
    ["SELECT * FROM t WHERE id = 1 AND b = 2", "SELECT * FROM t WHERE id = $1 AND b = $2"],
    ["SELECT * FROM t WHERE id = 1 OR b = 2"],
    [
        "INSERT INTO t (a, b) VALUES (1, 'x')",
        "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')",
        "INSERT INTO t (a, b) VALUES (%s, %s)",
        "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)",
    ],
    ["INSERT INTO t (a) VALUES (1)"],
    ["UPDATE t SET a = 1 WHERE id = 2", "UPDATE t SET a = %s WHERE id = %s"],
    ["DELETE FROM t WHERE id = 1", "DELETE FROM t WHERE id = $1"],
    ["SELECT 1", "SELECT 2", "SELECT 'x'"],
    ["SELECT 1; SELECT 2"],
]

MYSQL_GROUPS = [
    [
        "SELECT * FROM t WHERE id = 1",
        "SELECT * FROM t WHERE id = 'x'",
        'SELECT * FROM t WHERE id = "x"',
        "SELECT * FROM t WHERE id = %s",
        "SELECT * FROM t WHERE id = %(id)s",
        "SELECT * FROM t WHERE id = ?",
        "SELECT * FROM t WHERE id = :id",
        "select *  from t # comment\n where id = 1",
        "SELECT * FROM t /* c */ WHERE id = 1 -- c",
    ],
    [
        "SELECT * FROM t WHERE id IN (1, 2, 3)",
        "SELECT * FROM t WHERE id IN (1)",
        "SELECT * FROM t WHERE id IN (%s, %s)",
        "SELECT * FROM t WHERE id IN (?, ?, ?, ?)",
    ],
    ["SELECT * FROM t WHERE id > 1"],
    ["SELECT * FROM u WHERE id = 1"],
    ["SELECT * FROM db.t WHERE id = 1"],
    ["SELECT a FROM t WHERE id = 1"],
    ["SELECT * FROM t WHERE id = 1 FOR UPDATE"],
    [
        "INSERT INTO t (a, b) VALUES (1, 'x')",
        "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
        "INSERT INTO t (a, b) VALUES (%s, %s)",
    ],
    ["REPLACE INTO t (a, b) VALUES (1, 'x')"],
    ["UPDATE t SET a = 1 WHERE id = 2", "UPDATE t SET a = %s WHERE id = %s"],
    ["DELETE FROM t WHERE id = 1"],
]

SQLITE_GROUPS = [
    [
        "SELECT * FROM t WHERE id = 1",
        "SELECT * FROM t WHERE id = ?",
        "SELECT * FROM t WHERE id = ?1",
        "SELECT * FROM t WHERE id = :id",
        "SELECT * FROM t WHERE id = @id",
        "SELECT * FROM t WHERE id = $id",
        "SELECT * FROM t WHERE id = 'x' -- c",
    ],
    ["SELECT * FROM t WHERE id IN (1, 2)", "SELECT * FROM t WHERE id IN (?, ?, ?)"],
    ["SELECT * FROM t WHERE id < 1"],
    ["SELECT * FROM [t] WHERE id = 1", 'SELECT * FROM "t" WHERE id = 1'],
    ["SELECT * FROM other WHERE id = 1"],
]


@pytest.mark.parametrize(
    ("dialect", "groups"),
    [("postgresql", PG_GROUPS), ("mysql", MYSQL_GROUPS), ("sqlite", SQLITE_GROUPS)],
)
def test_fingerprint_equal_within_and_different_across_shapes(dialect, groups):
    by_group = []
    for group in groups:
        fps = {analyze(q, dialect).fingerprint for q in group}
        assert len(fps) == 1, (group, fps)
        # the same again without any cache
        assert {analyze_fresh(q, dialect).fingerprint for q in group} == fps, group
        by_group.append(fps.pop())
    assert len(set(by_group)) == len(by_group), "two shapes share a fingerprint"


@pytest.mark.parametrize(
    ("dialect", "q"),
    [
        ("postgresql", "SELECT 1"),
        ("postgresql", "not sql at all ("),
        ("postgresql", ""),
        ("mysql", "SELECT 1"),
        ("sqlite", "SELECT 1"),
        ("oracle", "SELECT 1 FROM dual"),
    ],
)
def test_fingerprint_format(dialect, q):
    assert re.fullmatch(r"[0-9a-f]{16}", analyze(q, dialect).fingerprint)


def test_in_list_and_any_are_distinct_shapes():
    eq = analyze("SELECT * FROM t WHERE id = $1").fingerprint
    in_list = analyze("SELECT * FROM t WHERE id IN ($1, $2)").fingerprint
    any_ = analyze("SELECT * FROM t WHERE id = ANY($1)").fingerprint
    assert len({eq, in_list, any_}) == 3


def test_unparseable_fingerprint_is_stable_and_literal_free():
    a = analyze("SELEC * FRM t WHERE x = 'one'")
    b = analyze("SELEC  * FRM t WHERE x = 'two' -- c")
    assert a.operation == "other"
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != analyze("SELEC * FRM u WHERE x = 'one'").fingerprint


def test_dialect_aliases_agree():
    q = "SELECT * FROM t WHERE id = 1"
    assert analyze(q, "postgres") == analyze(q, "pg") == analyze(q, "postgresql")
    assert analyze(q, "mariadb") == analyze(q, "mysql")
    assert analyze(q, "MySQL") == analyze(q, "mysql")


def test_tables_differing_only_in_a_numeric_suffix_are_different_shapes():
    # libpg_query merges them on purpose (partitions); dbsight keeps them apart so that
    # statistics and metrics of different tables are not merged.
    assert analyze("SELECT * FROM t10").fingerprint != analyze("SELECT * FROM t11").fingerprint
    a = analyze("SELECT * FROM users_2024 WHERE id = 1")
    b = analyze("SELECT * FROM users_2025 WHERE id = 2")
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint == analyze("select *  from users_2024 where id = $1").fingerprint
