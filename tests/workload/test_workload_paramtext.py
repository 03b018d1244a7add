"""Parameters as PostgreSQL's text input, psycopg's placeholders as the server's: checked by
running the converted statements on a real server with the values as text."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import pq
from psycopg.types.json import Jsonb

from dbsight.stats._paramtext import CannotConvert, as_text, dollar_placeholders


class Colour(enum.Enum):
    RED = "red"


class Size(str, enum.Enum):
    LARGE = "large"


def _run(conn: psycopg.Connection[Any], sql: str, params: tuple[str | None, ...]) -> Any:
    """The statement executed as the advisor runs samples: text parameters, types inferred."""
    result = conn.pgconn.exec_params(
        sql.encode(), [None if p is None else p.encode() for p in params]
    )
    assert result.status == pq.ExecStatus.TUPLES_OK, result.error_message.decode()
    return [result.get_value(0, i).decode() for i in range(result.nfields)]  # type: ignore[union-attr]


def test_values_read_back_as_they_were(pg_dsn: str) -> None:
    values: list[tuple[Any, str]] = [
        (42, "int"), (-1.5, "float8"), (decimal.Decimal("12.340"), "numeric"), (True, "bool"),
        ("it's \"quoted\" \\ text", "text"), (b"\x00\xffab", "bytea"),
        (datetime.date(2024, 2, 29), "date"),
        (datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC), "timestamptz"),
        (datetime.time(13, 14, 15), "time"), (datetime.timedelta(days=2, seconds=5), "interval"),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "uuid"),
        ([1, None, 3], "int[]"), ([["a", "b,c"], ['"d"', "e\\f"]], "text[][]"),
        ({"k": [1, 2]}, "jsonb"), (Jsonb({"x": None}), "jsonb"), (Colour.RED, "text"), (Size.LARGE, "text"),
        (float("inf"), "float8"),
    ]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for value, cast in values:
            sql, params = dollar_placeholders(f"SELECT %s::{cast}", [value])
            assert sql == f"SELECT $1::{cast}"
            # the text form, read by the server, equals what psycopg itself sends
            sent = Jsonb(value) if isinstance(value, dict) else value
            got = conn.execute(
                f"SELECT %s::{cast} IS NOT DISTINCT FROM %s::text::{cast}", [sent, params[0]]
            ).fetchone()
            assert got == (True,), (value, params[0])
    assert as_text(None) is None


def test_placeholders_become_the_servers(pg_dsn: str) -> None:
    named = dollar_placeholders(
        "SELECT %(a)s::int + %(b)s::int + %(a)s::int, '100%%'", {"a": 1, "b": 2, "unused": 3}
    )
    assert named == ("SELECT $1::int + $2::int + $1::int, '100%'", ("1", "2"))
    positional = dollar_placeholders("SELECT %s::int, %b::text LIKE 'a%%'", (5, "abc"))
    assert positional == ("SELECT $1::int, $2::text LIKE 'a%'", ("5", "abc"))
    dollars = dollar_placeholders("SELECT $2::int - $1::int", (1, 10))
    assert dollars == ("SELECT $2::int - $1::int", ("1", "10"))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert _run(conn, *named) == ["4", "100%"]
        assert _run(conn, *positional) == ["5", "t"]
        assert _run(conn, *dollars) == ["9"]


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT %s, %s", (1,)),  # too few values
        ("SELECT %(a)s", {"b": 1}),  # a name without a value
        ("SELECT %s", {"a": 1}),  # positional with named values
        ("SELECT %x", (1,)),  # not a placeholder psycopg knows
        ("SELECT $1, $2", (1,)),  # fewer values than $n
        ("SELECT 1", "a string"),  # not a sequence of values
    ],
)
def test_what_cannot_be_converted_is_refused(sql: str, params: Any) -> None:
    with pytest.raises(CannotConvert):
        dollar_placeholders(sql, params)
