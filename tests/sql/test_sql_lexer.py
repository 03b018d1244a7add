"""The one-pass masking lexer behind the masked cache."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbsight.sql._lexer import _Scanner, apply_rewrites, normalized_from_key, scan


@pytest.mark.parametrize(
    ("sql", "key"),
    [
        ("SELECT 1", "SELECT \x00I"),
        ("SELECT 1.5, 2e3, .5", "SELECT \x00F, \x00F, \x00F"),
        ("SELECT 'a', $$b$$, $t$c$t$", "SELECT \x00S, \x00S, \x00S"),
        ("SELECT E'a', U&'b', N'c'", "SELECT E\x00S, U&\x00S, N\x00S"),
        ("SELECT B'01', X'ff'", "SELECT B\x00B, X\x00B"),
        ("SELECT $1, %s, %(n)s, :n", "SELECT \x00P, \x00P, \x00P, \x00P"),
        ("SELECT x IN (1, 'a', $1)", "SELECT x IN (\x00L)"),
        ("VALUES (1, 2), (3, 4)", "VALUES (\x00I, \x00I)\x00V"),
        ("SELECT  a ,\n b /* c */ -- d\n", "SELECT a , b"),
        ("SELECT somee'x'", "SELECT somee\x00S"),  # no E prefix inside an identifier
        ("SELECT t1.c2, a$1", "SELECT t1.c2, a$1"),
        ("SELECT x::int", "SELECT x::int"),
        ("SELECT arr[lo:hi], arr[:n]", "SELECT arr[lo:hi], arr[:n]"),
        ("SELECT j ? 'k', j ?| a, j ?& b", "SELECT j ? \x00S, j ?| a, j ?& b"),
        (
            "SELECT * FROM t WHERE a = ? AND b IN (?, ?)",
            "SELECT * FROM t WHERE a = \x00P AND b IN (\x00L)",
        ),
        ("SELECT ? FROM t LIMIT ?", "SELECT \x00P FROM t LIMIT \x00P"),
        ("SELECT 1;  ", "SELECT \x00I"),
    ],
)
def test_postgresql_keys(sql, key):
    result = scan(sql, "postgresql")
    assert result.key == key
    assert result.sure


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgresql", "SELECT 'a\\'"),  # standard_conforming_strings decides
        ("postgresql", "SELECT 'a'\n'b'"),
        ("postgresql", "SELECT 'a' 'b'"),
        ("postgresql", "SELECT 'open"),
        ("postgresql", 'SELECT "open'),
        ("postgresql", "SELECT $q$open"),
        ("postgresql", "SELECT /* open"),
        ("postgresql", "SELECT 1abc"),
        ("postgresql", "SELECT $1abc"),
        ("postgresql", "SELECT 1\x00"),
        ("mysql", "SELECT 'a\\'b'"),
        ("mysql", 'SELECT "a"'),
        ("mysql", "SELECT 1 /*! FOR UPDATE */"),
        ("mysql", "SELECT 'a' 'b'"),
        ("sqlite", "SELECT 'open"),
    ],
)
def test_not_sure(dialect, sql):
    assert not scan(sql, dialect).sure


@pytest.mark.parametrize(
    ("dialect", "sql", "broken"),
    [
        ("postgresql", "SELECT 'open", True),
        ("postgresql", "SELECT /* open", True),
        ("postgresql", "/*" * 1000, True),
        ("postgresql", 'SELECT "open', True),
        ("postgresql", "SELECT 'a\\'", False),
        ("sqlite", "SELECT 1 /* comments may stay open in SQLite", False),
        ("mysql", "SELECT 'open", True),
    ],
)
def test_broken_texts_are_not_parsed(dialect, sql, broken):
    assert scan(sql, dialect).broken is broken


@pytest.mark.parametrize(
    ("sql", "parse_text"),
    [
        ("SELECT * FROM t WHERE a = %s", "SELECT * FROM t WHERE a =  $1 "),
        ("SELECT %(a)s, :b, ?", "SELECT  $1 ,  $2 ,  $3 "),
        ("SELECT j ? 'k' FROM t WHERE a = ?", "SELECT j ? 'k' FROM t WHERE a =  $1 "),
        ("SELECT 10 %% 3", "SELECT 10 %% 3"),
        ("SELECT x::text", "SELECT x::text"),
    ],
)
def test_postgresql_placeholder_rewrites(sql, parse_text):
    assert apply_rewrites(sql, scan(sql, "postgresql").rewrites) == parse_text


@pytest.mark.parametrize(
    ("dialect", "sql", "parse_text"),
    [
        ("mysql", "SELECT %s, %(a)s, :b, ?", "SELECT  ? ,  ? ,  ? , ?"),
        ("sqlite", "SELECT :a, @b, $c, ?1, ?", "SELECT  ? ,  ? ,  ? ,  ? , ?"),
        ("generic", "SELECT $1, :a", "SELECT  ? ,  ? "),
        ("mysql", "SELECT 1 /*!50000 FOR UPDATE */", "SELECT 1          FOR UPDATE   "),
    ],
)
def test_other_dialect_rewrites(dialect, sql, parse_text):
    assert apply_rewrites(sql, scan(sql, dialect).rewrites) == parse_text


@pytest.mark.parametrize(
    ("dialect", "sql", "sure", "ambiguous"),
    [
        ("postgresql", "SELECT 'a\\_b' FROM t", True, False),  # bounds fixed either way
        ("postgresql", "SELECT 'a\\\\' FROM t", True, False),
        ("postgresql", "SELECT 'a\\' FROM t", False, True),
        ("postgresql", "SELECT 'a\\'', 'b' FROM t", False, True),
        ("postgresql", "SELECT E'a\\'' FROM t", True, False),  # E'' has fixed rules
        ("mysql", "SELECT 'a\\_b' FROM t", True, False),
        ("mysql", "SELECT 'a\\'b' FROM t", False, True),
        ("mysql", 'SELECT "x" FROM t', False, False),
        ("mysql", 'SELECT "f" (1) FROM t', False, True),
        ("mysql", "SELECT 1 /*!50000 FOR UPDATE */", False, True),
        ("sqlite", "SELECT 'a\\' FROM t", True, False),  # no escapes in SQLite at all
    ],
)
def test_setting_dependent_string_bounds(dialect, sql, sure, ambiguous):
    result = scan(sql, dialect)
    assert (result.sure, result.ambiguous) == (sure, ambiguous)


def test_mysql_comment_rules():
    assert scan("SELECT 1 -- c\n", "mysql").key == "SELECT \x00I"
    assert scan("SELECT 1--1", "mysql").key == "SELECT \x00I--\x00I"  # no space: not a comment
    assert scan("SELECT 1 # c\n, 2", "mysql").key == "SELECT \x00I , \x00I"
    assert scan("SELECT 1 # c", "postgresql").key == "SELECT \x00I # c"  # an operator there
    # MySQL does not nest comments, PostgreSQL does
    assert scan("SELECT /* /* */ 1", "mysql").key == "SELECT \x00I"
    assert scan("SELECT /* /* */ */ 1", "postgresql").key == "SELECT \x00I"


def test_quoted_identifiers_with_double_spaces_are_not_squeezed():
    assert scan('SELECT "a  b",   1', "postgresql").key == 'SELECT "a  b",   \x00I'
    assert scan('SELECT "a b",   1', "postgresql").key == 'SELECT "a b", \x00I'


def test_normalized_from_key_numbers_and_collapses():
    assert normalized_from_key("SELECT \x00I, E\x00S, x IN (\x00L), \x00P") == (
        "SELECT $1, $2, x IN ($3 /*, ... */), $4"
    )
    assert normalized_from_key("VALUES (\x00I, \x00S)\x00V") == "VALUES ($1, $2) /*, ... */"


def test_partition_bounds_are_not_collapsed():
    key = scan("CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1, 2)", "postgresql").key
    assert key.endswith("IN (\x00I, \x00I)")


_PIECES = st.sampled_from(
    ['"a"', '"b c"', '"x""y"', "`q`", "[s]", ".", ".5", ",", " ", "  ", "\n", "t1", "x", "=",
     "'s'", "E'e'", "$$d$$", "$1", "%s", ":n", "?", "--c\n", "/*c*/", "1", "(", ")", '"', "'",
     "SELECT ", " FROM ", "IN (1, 2)", "\\", "#", "@a"]
)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(
    pieces=st.lists(_PIECES, max_size=30),
    dialect=st.sampled_from(["postgresql", "mysql", "sqlite", "generic"]),
)
def test_identifier_chaining_changes_nothing(pieces, dialect):
    """Matching runs of quoted identifiers at once is only an optimization."""
    text = "".join(pieces)
    assert scan(text, dialect) == _Scanner(dialect, chain_idents=False).scan(text)
