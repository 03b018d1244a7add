"""How the analysis commands name a PostgreSQL DSN: never with its password."""

from __future__ import annotations

import psycopg
import pytest

from dbsight.core._dsn import cannot_connect, describe_dsn, first_line, invalid_dsn


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://app:s3cret@db.internal:6432/shop?sslmode=require",
         "postgresql://app@db.internal:6432/shop"),
        ("postgresql://app@db/shop?password=s3cret", "postgresql://app@db/shop"),
        ("host=db port=5433 user=app password='s3 cret' dbname=shop",
         "postgresql://app@db:5433/shop"),
        ("postgresql://app:s3cret@/shop?host=/run/postgresql",
         "postgresql://app@/shop?host=/run/postgresql"),
        ("dbname=shop", "postgresql://localhost/shop"),
        ("user=app", "postgresql://app@localhost/app"),  # libpq's default database: the user's
        ("postgresql://app:s3cret@db:notaport/shop x=", "(unparsable DSN)"),
    ],
)  # fmt: skip
def test_the_password_is_never_shown(dsn: str, shown: str) -> None:
    assert describe_dsn(dsn) == shown
    assert "s3" not in describe_dsn(dsn)


def test_first_line_and_the_connect_message() -> None:
    assert first_line("\n  FATAL: no such database\nDETAIL: more\n") == "FATAL: no such database"
    assert first_line("") == "unknown error"
    assert first_line(ValueError()) == "ValueError"
    error = psycopg.OperationalError("connection refused\n\tIs the server running?")
    assert cannot_connect("postgresql://u:pw@127.0.0.1:1/x", error) == (
        "cannot connect to postgresql://u@127.0.0.1:1/x: connection refused"
    )


def test_invalid_dsn_says_why() -> None:
    assert invalid_dsn("postgresql://u@h/db") is None
    problem = invalid_dsn("host=h port")
    assert problem is not None and problem.startswith("not a PostgreSQL connection string: ")
