"""The PostgreSQL fixtures give every test a real, isolated database."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import psycopg
import pytest

from dbsight.testing import PgServer, pg_url

_seen: dict[str, str] = {}


def _dbname(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def test_pg_dsn_round_trip_with_psycopg(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO items VALUES (1, 'one'), (2, 'two')")
        conn.commit()
        rows = conn.execute("SELECT id, name FROM items ORDER BY id").fetchall()
        current = conn.execute("SELECT current_database()").fetchone()
    assert rows == [(1, "one"), (2, "two")]
    assert current is not None and current[0] == _dbname(pg_dsn)
    assert current[0].startswith("dbsight_test_")


async def test_pg_dsn_round_trip_with_asyncpg(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        await conn.executemany("INSERT INTO items VALUES ($1, $2)", [(1, "one"), (2, "two")])
        rows = await conn.fetch("SELECT id, name FROM items ORDER BY id")
        assert [tuple(r) for r in rows] == [(1, "one"), (2, "two")]
        assert await conn.fetchval("SELECT current_database()") == _dbname(pg_dsn)
    finally:
        await conn.close()


def test_first_of_two_gets_a_database(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE left_behind (x int)")
    _seen["first"] = _dbname(pg_dsn)


def test_second_of_two_gets_another_database(pg_dsn: str, pg_server: PgServer) -> None:
    if "first" not in _seen:
        pytest.skip("runs after test_first_of_two_gets_a_database")
    first = _seen["first"]
    assert _dbname(pg_dsn) != first
    assert not pg_server.database_exists(first), "the previous test's database was not dropped"
    with psycopg.connect(pg_dsn) as conn:
        found = conn.execute("SELECT to_regclass('left_behind')").fetchone()
    assert found == (None,)


def test_database_is_dropped_even_with_open_connections(pg_server: PgServer) -> None:
    with pg_server.temporary_database() as dsn:
        name = _dbname(dsn)
        leaked = psycopg.connect(dsn)  # deliberately left open, in a transaction
        leaked.execute("CREATE TABLE t (x int)")
        assert pg_server.database_exists(name)
    assert not pg_server.database_exists(name)
    with pytest.raises(psycopg.OperationalError):
        leaked.execute("SELECT 1")
    leaked.close()


def test_admin_dsn_is_a_superuser_on_postgres(pg_admin_dsn: str) -> None:
    with psycopg.connect(pg_admin_dsn) as conn:
        row = conn.execute(
            "SELECT current_database(), rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == ("postgres", True)


def test_default_server_is_private(pg_server: PgServer) -> None:
    if os.environ.get("DBSIGHT_TEST_PG_DSN"):
        pytest.skip("DBSIGHT_TEST_PG_DSN selects an external server")
    assert pg_server.embedded is not None
    assert pg_server.embedded.port != 5432
    with psycopg.connect(pg_server.admin_dsn) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('fsync', 'listen_addresses', 'wal_level', 'max_connections')"
            ).fetchall()
        )
    assert settings == {
        "fsync": "off",
        "listen_addresses": "127.0.0.1",
        "wal_level": "replica",
        "max_connections": "200",
    }


@pytest.mark.parametrize(
    ("dsn", "dbname", "expected"),
    [
        ("postgresql://u@h:5/db", "x", "postgresql://u@h:5/x"),
        ("postgres://u:p%40ss@h/db?sslmode=disable", "x",
         "postgresql://u:p%40ss@h/x?sslmode=disable"),
        ("postgresql://u@h:5/db", None, "postgresql://u@h:5/db"),
        ("host=127.0.0.1 port=5432 user=postgres dbname=test", "x",
         "postgresql://postgres@127.0.0.1:5432/x"),
        ("host=/var/run/postgresql user=me dbname=test", None,
         "postgresql://me@/test?host=%2Fvar%2Frun%2Fpostgresql"),
    ],
)  # fmt: skip
def test_pg_url(dsn: str, dbname: str | None, expected: str) -> None:
    assert pg_url(dsn, dbname) == expected


INNER_TEST = textwrap.dedent(
    """
    import psycopg

    def test_inner(pg_dsn, pg_server):
        assert pg_server.embedded is None
        with psycopg.connect(pg_dsn) as conn:
            conn.execute("CREATE TABLE t (x int)")
            name = conn.execute("SELECT current_database()").fetchone()[0]
        with open("inner_db.txt", "w") as f:
            f.write(name)
    """
)


def test_external_server_from_env(pg_server: PgServer, tmp_path: Path) -> None:
    """DBSIGHT_TEST_PG_DSN (here in key=value form) makes the fixtures use that server."""
    url = urlsplit(pg_server.admin_dsn)
    conninfo = f"host={url.hostname} port={url.port} user={url.username} dbname=postgres"
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "DBSIGHT_TEST_PG_DSN": conninfo}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "dbsight.testing.pytest_plugin", "test_inner.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    inner_db = (tmp_path / "inner_db.txt").read_text()
    assert inner_db.startswith("dbsight_test_")
    assert not pg_server.database_exists(inner_db)
