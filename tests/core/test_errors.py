"""What of an error message may be shown without include_query_bodies (`public_message`)."""

from __future__ import annotations

import pytest

from dbsight.core import QueryError, error_info, error_summary, public_message


@pytest.mark.parametrize(
    ("sqlstate", "message", "shown"),
    [
        # names only: kept, DETAIL / LINE / HINT dropped
        ("23505", 'duplicate key value violates unique constraint "u_email"\n'
         "DETAIL:  Key (email)=(bob@x.com) already exists.",
         'duplicate key value violates unique constraint "u_email"'),
        ("42703", 'column "nme" does not exist\nLINE 1: SELECT nme FROM t WHERE x = \'s\'\n'
         "HINT:  Perhaps you meant to reference the column \"t.name\".",
         'column "nme" does not exist'),
        # values: masked
        ("22P02", 'invalid input syntax for type integer: "abc"',
         'invalid input syntax for type integer: "?"'),
        ("22003", 'value "99999999999" is out of range for type integer',
         'value "?" is out of range for type integer'),
        ("22021", 'invalid byte sequence for encoding "UTF8": 0xe9 0x20',
         'invalid byte sequence for encoding "?": ? ?'),
        ("42601", "syntax error at or near \"'secret'\"", 'syntax error at or near "?"'),
        # the application's own text (RAISE EXCEPTION): withheld
        ("P0001", "no user bob@x.com", None),
        # no SQLSTATE (a client library's check): masked
        (None, "invalid input for query argument $1: 'abc' (expected int)",
         "invalid input for query argument $1: '?' (expected int)"),
        (None, "<class 'asyncpg.exceptions.DataError'>: invalid input for query argument $2: 42",
         "invalid input for query argument $2: ?"),
        (None, "", None),
    ],
)
def test_public_message(sqlstate: str | None, message: str, shown: str | None) -> None:
    assert public_message(QueryError("E", sqlstate, message)) == shown


def test_other_databases_messages_are_masked_whatever_their_sqlstate() -> None:
    error = QueryError("IntegrityError", "23000", "Duplicate entry 'bob@x.com' for key 'email'")
    assert public_message(error, "mysql") == "Duplicate entry '?' for key '?'"


def test_a_mysql_drivers_code_and_message() -> None:
    class OperationalError(Exception):  # pymysql's shape: args = (code, message)
        pass

    error = error_info(OperationalError(1062, "Duplicate entry 'bob@x.com' for key 'email'"))
    assert error.message == "Duplicate entry 'bob@x.com' for key 'email'"


def test_summary() -> None:
    error = QueryError("UndefinedTable", "42P01", 'relation "t" does not exist')
    assert error_summary(error, public_message(error)) == (
        '42P01 UndefinedTable: relation "t" does not exist'
    )
    assert error_summary(QueryError("TimeoutError"), None) == "TimeoutError"
