"""Binary Bind parameters as text: each type's binary form, as PostgreSQL itself sends it
(its send function), decodes to a text that PostgreSQL reads back as the same value (the
same text out again: json has no equality, and this also holds numeric's scale)."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import psycopg
import pytest

from dbsight.proxy._param_text import BoundParams, binary_text, bind_parameters, parameter_types
from dbsight.testing._servers import PgServer

# (SQL expression, its type): sent by the server in binary, decoded here, read back there
VALUES = [
    ("true", "bool"),
    ("false", "bool"),
    ("'\\x00ff10'::bytea", "bytea"),
    ("'x'::\"char\"", '"char"'),
    ("'a_name'::name", "name"),
    ("(-32768)::int2", "int2"),
    ("2147483647::int4", "int4"),
    ("(-9223372036854775808)::int8", "int8"),
    ("4000000000::oid", "oid"),
    ("'some text, with \"quotes\" and ''single'' ones'::text", "text"),
    ("'véritable'::varchar", "varchar"),
    ("'pad'::char(5)", "bpchar"),
    ("0.1::float4", "float4"),
    ("(-1.5e300)::float8", "float8"),
    ("'NaN'::float8", "float8"),
    ("'-Infinity'::float8", "float8"),
    ("0::numeric", "numeric"),
    ("(-12.3400)::numeric", "numeric"),
    ("0.000001234::numeric", "numeric"),
    ("123456789012345678901234567890.5::numeric", "numeric"),
    ("10000::numeric", "numeric"),
    ("'NaN'::numeric", "numeric"),
    ("'2024-02-29'::date", "date"),
    ("'infinity'::date", "date"),
    ("'13:45:06.5'::time", "time"),
    ("'13:45:06+05:30'::timetz", "timetz"),
    ("'1999-12-31 23:59:59.999999'::timestamp", "timestamp"),
    ("'2024-01-02 03:04:05.25+02'::timestamptz", "timestamptz"),
    ("'-infinity'::timestamptz", "timestamptz"),
    ("'1 year 2 months 3 days 04:05:06.7'::interval", "interval"),
    ("'-1 day -00:00:01'::interval", "interval"),
    ("'{\"a\": [1, 2]}'::json", "json"),
    ("'{\"a\": [1, 2]}'::jsonb", "jsonb"),
    ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", "uuid"),
    ("'192.168.0.1'::inet", "inet"),
    ("'10.0.0.0/8'::cidr", "cidr"),
    ("'2001:db8::1/64'::inet", "inet"),
    ("ARRAY[1, NULL, 3]::int4[]", "int4[]"),
    ("ARRAY[['a', 'b\"c'], ['d\\e', NULL]]::text[]", "text[]"),
    ("'{}'::int8[]", "int8[]"),
    ("'[0:1]={7,8}'::int2[]", "int2[]"),
    ("ARRAY['2024-01-01 00:00:00+00']::timestamptz[]", "timestamptz[]"),
]


@pytest.fixture(scope="module")
def conn(pg_server: PgServer) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with pg_server.temporary_database() as dsn, psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        yield connection


@pytest.mark.parametrize(("expression", "type_name"), VALUES)
def test_a_binary_value_decodes_to_text_the_server_reads_back(
    conn: psycopg.Connection[tuple[object, ...]], expression: str, type_name: str
) -> None:
    # the value in binary, as the type's send function writes it (no psycopg loader between)
    result = conn.pgconn.exec_params(f"SELECT {expression}".encode(), [], result_format=1)
    assert result.status == psycopg.pq.ExecStatus.TUPLES_OK, result.error_message
    raw, oid = result.get_value(0, 0), result.ftype(0)
    assert raw is not None
    text = binary_text(oid, raw)
    assert isinstance(text, str), (expression, text)
    same = conn.execute(
        f"SELECT (%s::{type_name})::text = ({expression})::text", (text,)
    ).fetchone()
    assert same == (True,), (expression, text)


def test_an_unknown_type_is_kept_as_hex_with_its_format() -> None:
    assert binary_text(600, b"\x01\x02") == {"hex": "0102", "format": "binary", "type": 600}
    assert binary_text(0, b"\x01") == {"hex": "01", "format": "binary"}
    assert binary_text(23, b"\x01") == {"hex": "01", "format": "binary", "type": 23}  # malformed


def test_bind_formats_apply_to_all_or_each_parameter() -> None:
    values: list[bytes | None] = [b"\x00\x00\x00\x05", b"five", None]
    each = BoundParams([23, 25, 23], (1, 0, 1), values)
    assert each.as_text() == ["5", "five", None]
    assert BoundParams([], (), [b"7", b"\xff"]).as_text() == [
        "7", {"hex": "ff", "format": "text"},
    ]  # fmt: skip
    assert BoundParams([20], (1,), [struct.pack(">q", -3)]).as_text() == ["-3"]


def test_bind_and_parameter_type_messages_are_read() -> None:
    body = struct.pack(">hhh", 2, 1, 0) + struct.pack(">h", 2)
    body += struct.pack(">i", 4) + b"\x00\x00\x00\x09" + struct.pack(">i", -1)
    assert bind_parameters(body, 0, len(body)) == ((1, 0), [b"\x00\x00\x00\x09", None])
    types = struct.pack(">hII", 2, 23, 25)
    assert parameter_types(types, 0, len(types)) == [23, 25]
    assert parameter_types(b"\x00\x00", 0, 2) == []
