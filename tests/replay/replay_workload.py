"""A workload captured through a real ``dbsight proxy`` (psycopg simple and extended protocol,
asyncpg with binary parameters), and copies of its database: one intact, one that lost the
index its busiest statements use.

orders has 200k rows; ``orders_customer`` makes a customer's orders an index scan (~0.1 ms)
where its copy without it reads the whole table (~10 ms and more), so the regression is far
past 20 % and 1 ms whatever the machine's load.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest

from dbsight.proxy._config import ProxyConfig
from dbsight.testing._servers import PgServer, unique_name
from dbsight.testing.proxy import RunningProxy

CALLS = 60  # of each statement (p95 of 60 calls is not one outlier), reads and writes apart
SECRET = "secret-literal"  # in a captured statement's text: never in a report
CUTOFF = dt.datetime(2030, 1, 1, 12, 34, 56, tzinfo=dt.UTC)  # an asyncpg parameter

# the statements, as their normalized text shows them
BY_CUSTOMER = "SELECT id, total FROM orders WHERE customer_id = $1"  # psycopg, extended
BY_CUSTOMER_LITERAL = (  # psycopg, simple protocol, literals in the text
    "SELECT count(*) FROM orders WHERE customer_id = $1 AND status <> $2"
)
BY_CUSTOMER_ASYNCPG = "SELECT id FROM orders WHERE customer_id = $1 AND created_at < $2"
BY_ID = "SELECT total FROM orders WHERE id = $1"  # psycopg, primary key
BY_ID_ASYNCPG = "SELECT status FROM orders WHERE id = $1"  # asyncpg, primary key
LOST_INDEX = (BY_CUSTOMER, BY_CUSTOMER_LITERAL, BY_CUSTOMER_ASYNCPG)
UNAFFECTED = (BY_ID, BY_ID_ASYNCPG)
INSERTS = 4  # captured INSERTs: 'first', 'second' (one transaction), 'rolled back', 'alone'


@dataclass
class Captured:
    capture: Path  # with capture_params
    plain: Path  # the same kind of workload without capture_params
    server: PgServer
    source: str  # the database captured (its name)
    intact: str  # DSN of an unchanged copy
    lost: str  # DSN of a copy without orders_customer
    copy: Callable[[], str]  # a fresh copy of the source (DSN), dropped at the end

    def records(self, path: Path | None = None) -> list[dict[str, Any]]:
        text = (path or self.capture).read_text()
        return [json.loads(line) for line in text.splitlines()]


def _schema(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, "
            "status text NOT NULL, total numeric(10, 2) NOT NULL, created_at timestamptz NOT NULL)"
        )
        conn.execute(
            "INSERT INTO orders SELECT g, g % 20000, CASE WHEN g % 7 = 0 THEN 'open' ELSE "
            "'paid' END, (g % 1000) / 10.0, timestamptz '2024-01-01' + g * interval '1 minute' "
            "FROM generate_series(1, 200000) g"
        )
        conn.execute("CREATE INDEX orders_customer ON orders (customer_id)")
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
        conn.execute("VACUUM ANALYZE orders")


def _psycopg_workload(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for n in range(CALLS):
            conn.execute("SELECT id, total FROM orders WHERE customer_id = %s", (n * 7,)).fetchall()
            conn.execute(  # no parameters: psycopg sends the text as a simple Query
                f"SELECT count(*) FROM orders WHERE customer_id = {n * 11} AND status <> '{SECRET}'"
            ).fetchall()
            conn.execute("SELECT total FROM orders WHERE id = %s", (n * 13 + 1,)).fetchall()
            conn.execute("SELECT count(*) FROM notes; SELECT 1")  # one Query, two statements
        with conn.transaction():
            conn.execute("SELECT total FROM orders WHERE id = %s", (7,))
            conn.execute("INSERT INTO notes (body) VALUES (%s)", ("first",))
            conn.execute("INSERT INTO notes (body) VALUES (%s)", ("second",))
        with conn.transaction():
            conn.execute("INSERT INTO notes (body) VALUES (%s)", ("rolled back",))
            raise psycopg.Rollback()
        conn.execute("INSERT INTO notes (body) VALUES (%s)", ("alone",))


async def _asyncpg_workload(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for n in range(CALLS):
            await conn.fetch(
                "SELECT id FROM orders WHERE customer_id = $1 AND created_at < $2", n * 5, CUTOFF
            )
            await conn.fetch("SELECT status FROM orders WHERE id = $1", n * 17 + 3)
    finally:
        await conn.close()


def capture_workload(upstream: str, path: Path, *, params: bool, mode: str = "transaction") -> None:
    proxy = RunningProxy(
        ProxyConfig(
            listen="127.0.0.1:0", upstream=upstream, pool_mode=mode, capture=path,
            capture_params=params,
        )
    )  # fmt: skip
    try:
        dsn = proxy.dsn(upstream)
        _psycopg_workload(dsn)
        asyncio.run(_asyncpg_workload(dsn))
    finally:
        proxy.close()  # flushes the capture


def _template_copy(server: PgServer, source: str) -> str:
    name = unique_name()
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (source,),
        )
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return name


def captured_workload(
    pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Captured]:
    """The workload captured, its database and copies (a fixture's body: see conftest)."""
    tmp = tmp_path_factory.mktemp("replay")
    source = pg_server.create_database()
    made = [source]
    try:
        dsn = pg_server.dsn(source)
        _schema(dsn)
        capture, plain = tmp / "workload.jsonl", tmp / "plain.jsonl"
        capture_workload(dsn, capture, params=True)
        capture_workload(dsn, plain, params=False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE notes")  # the copies start without the captured writes

        def copy() -> str:
            name = _template_copy(pg_server, source)
            made.append(name)
            return pg_server.dsn(name)

        intact, lost = copy(), copy()
        with psycopg.connect(lost, autocommit=True) as conn:
            conn.execute("DROP INDEX orders_customer")
        yield Captured(capture, plain, pg_server, source, intact, lost, copy)
    finally:
        for name in reversed(made):
            pg_server.drop_database(name)
