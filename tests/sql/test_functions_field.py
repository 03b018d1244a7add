"""SqlInfo.functions: the functions that alone keep a PostgreSQL text from being read-only.

The proxy asks the server about the volatility of just these names; a name reported for
a text that is not read-only for another reason as well would let a write reach a replica,
so every other obstacle must empty the field.
"""

from __future__ import annotations

import pytest

from dbsight.sql import SqlInfo, analyze
from dbsight.sql._analyze import analyze_fresh

ONLY_FUNCTIONS = [
    ("SELECT my_fn(1)", ("my_fn",)),
    ("SELECT s.f(x) FROM t", ("s.f",)),
    ("SELECT nextval('s')", ("nextval",)),
    ("SELECT pg_advisory_lock(1)", ("pg_advisory_lock",)),
    ("SELECT MY_FN(1), My_Fn(2)", ("my_fn",)),
    ('SELECT "MyFn"(1), myfn(2)', ("MyFn", "myfn")),
    ('SELECT "S"."F"()', ("S.F",)),
    ("SELECT b(1) + a(2), b(3), lower(c(4))", ("b", "a", "c")),
    ("SELECT * FROM f() AS x WHERE g(x.a)", ("f", "g")),
    ("SELECT * FROM t WHERE id IN (SELECT f(id) FROM u)", ("f",)),
    ("WITH c AS (SELECT f() AS v) SELECT v, g() FROM c", ("f", "g")),
    ("SELECT f(); SELECT g(), f()", ("f", "g")),
    ("SELECT 1; SELECT f()", ("f",)),
    ("EXPLAIN SELECT f()", ("f",)),
    ("SELECT public.f(x), pg_catalog.nextval('s') FROM t", ("public.f", "pg_catalog.nextval")),
]


@pytest.mark.parametrize(("sql", "functions"), ONLY_FUNCTIONS)
def test_functions_when_they_are_the_only_obstacle(sql: str, functions: tuple[str, ...]) -> None:
    info = analyze_fresh(sql)
    assert info.read_only is False
    assert info.functions == functions


NOT_ONLY_FUNCTIONS = [
    "SELECT f() FROM t FOR UPDATE",
    "SELECT f() FROM t FOR SHARE SKIP LOCKED",
    "WITH d AS (DELETE FROM t RETURNING *) SELECT f()",
    "WITH d AS (INSERT INTO t VALUES (f()) RETURNING *) SELECT * FROM d",
    "SELECT f() INTO newt FROM t",
    "SELECT f() FROM t WHERE a === b",  # an operator outside the allow-list
    "SELECT f() FROM t WHERE a OPERATOR(myschema.===) b",
    "SELECT f() FROM t TABLESAMPLE my_method(10)",
    "SELECT f(); DELETE FROM t",
    "SELECT f(); CREATE TABLE t (a int)",
    "SELECT f(); SET search_path = x",
    "SELECT f(); BEGIN",
    "INSERT INTO t SELECT f()",
    "UPDATE t SET a = f()",
    "DELETE FROM t WHERE a = f()",
    "CALL p()",
    "DO $$ BEGIN PERFORM f(); END $$",
    "EXPLAIN ANALYZE SELECT f()",
    "COPY (SELECT f()) TO STDOUT",
    "DECLARE c CURSOR FOR SELECT f()",
    "PREPARE p AS SELECT f()",
    "CREATE VIEW v AS SELECT f()",
    'SELECT "a.b"(1)',  # a dot inside a quoted name: not to be confused with a.b
    "SELECT db.s.f(1)",
    "SELECT f() FROM t WHERE CURRENT OF c",
]


@pytest.mark.parametrize("sql", NOT_ONLY_FUNCTIONS)
def test_no_functions_when_something_else_blocks(sql: str) -> None:
    info = analyze_fresh(sql)
    assert info.read_only is False
    assert info.functions == ()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "SELECT lower(name), count(*) FROM t GROUP BY 1",
        "SELECT pg_catalog.upper(x), now(), coalesce(a, b) FROM t",
        "SHOW search_path",
        "EXPLAIN SELECT lower(x) FROM t",
    ],
)
def test_no_functions_when_read_only(sql: str) -> None:
    info = analyze_fresh(sql)
    assert info.read_only is True
    assert info.functions == ()


def test_unparseable_and_ambiguous_texts_have_none() -> None:
    assert analyze_fresh("SELECT f(").functions == ()
    # its statement boundaries depend on standard_conforming_strings: never read-only
    ambiguous = analyze_fresh("SELECT f('\\'); DELETE FROM t; --')")
    assert ambiguous.read_only is False
    assert ambiguous.functions == ()


@pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
def test_other_dialects_have_none(dialect: str) -> None:
    info = analyze("SELECT my_fn(1) FROM t", dialect)
    assert info.read_only is False
    assert info.functions == ()


def test_cached_paths_agree() -> None:
    """The exact and the masked caches give the same names as a fresh analysis."""
    first = analyze("SELECT f(1) FROM t WHERE a = 2")
    other_literals = analyze("SELECT f(7) FROM t WHERE a = 9")
    assert first.functions == other_literals.functions == ("f",)
    assert analyze("SELECT f(1) FROM t WHERE a = 2") is first


def test_positional_construction_still_works() -> None:
    info = SqlInfo("SELECT $1", "0" * 16, "select", (), True)
    assert info.functions == ()
    assert SqlInfo("SELECT f()", "0" * 16, "select", (), False, ("f",)).functions == ("f",)


def test_operator_symbols_of_read_only_texts() -> None:
    assert set(analyze_fresh("SELECT a FROM t WHERE a = 1 AND b < 2").operators) == {"=", "<"}
    assert analyze_fresh("SELECT f(a) FROM t WHERE a ## 2").operators == ("##",)
    assert analyze_fresh("SELECT a FROM t WHERE a = ANY ($1)").operators == ("=",)
    assert analyze_fresh("SELECT 1 OPERATOR(pg_catalog.+) 2").operators == ()  # the built-in
    assert analyze_fresh("UPDATE t SET a = 1 WHERE b = 2").operators == ()  # not read-only
