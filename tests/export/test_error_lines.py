"""Failed statements in the query log (``dbsight.query`` at WARNING) name the SQLSTATE and
the server's message, without the values it may quote: real errors of real PostgreSQL
through psycopg, asyncpg and SQLAlchemy (on both), and through `dbsight proxy`."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

import dbsight
from dbsight.export.logging import QUERY_LOGGER, configure_json_logging
from dbsight.instrument import uninstrument_all

EMAIL = "bob@x.com"
SETUP = (
    "CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE)",
    f"INSERT INTO users (email) VALUES ('{EMAIL}')",
)
DUPLICATE = f"INSERT INTO users (email) VALUES ('{EMAIL}')"
BAD_INPUT = "SELECT 'zxqv'::int"
MISSING = "SELECT * FROM no_such_table"
STATEMENTS = (DUPLICATE, BAD_INPUT, MISSING)
# SQLSTATE -> (the line's message without bodies, part of its error_message with them)
EXPECTED = {
    "23505": (
        'query failed insert users: 23505 {type}: duplicate key value violates unique '
        'constraint "users_email_key"',
        "Key (email)=(bob@x.com) already exists.",
    ),
    "22P02": (  # a statement without a table: no dangling space before the colon
        'query failed select: 22P02 {type}: invalid input syntax for type integer: "?"',
        'invalid input syntax for type integer: "zxqv"',
    ),
    "42P01": (
        'query failed select no_such_table: 42P01 {type}: relation "no_such_table" does not '
        "exist",
        'relation "no_such_table" does not exist',
    ),
}


class QueryLog:
    """The ``dbsight.query`` WARNING lines, as the JSON formatter writes them."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.logger = logging.getLogger(QUERY_LOGGER)
        self.handler = configure_json_logging(logging.WARNING, self.buffer, self.logger)
        self.logger.propagate = False

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines()]

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(logging.NOTSET)
        self.logger.propagate = True


@pytest.fixture
def query_log(fresh_runtime: Any) -> Iterator[Callable[..., QueryLog]]:
    logs: list[QueryLog] = []

    def configure(**settings: Any) -> QueryLog:
        settings.setdefault("explain_slow_queries", False)
        dbsight.configure(dbsight.Settings(tracing_enabled=False, **settings))
        log = QueryLog()
        logs.append(log)
        return log

    yield configure
    uninstrument_all()
    for log in logs:
        log.close()


def setup_table(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for statement in SETUP:
            conn.execute(statement)


def check(lines: list[dict[str, Any]], types: dict[str, str], bodies: bool) -> None:
    """One line per failed statement; the server's message with its values masked (or
    whole, DETAIL included, with bodies)."""
    by_sqlstate = {line["sqlstate"]: line for line in lines}
    assert len(lines) == len(by_sqlstate) == len(EXPECTED), lines
    for sqlstate, (message, with_bodies) in EXPECTED.items():
        line = by_sqlstate[sqlstate]
        if bodies:
            assert with_bodies in line["error_message"]
            continue
        assert line["message"] == message.format(type=types[sqlstate])
        assert line["message"].endswith(": " + line["error_message"])
        # ('zxqv' is not hex: no test database's random name can hold it)
        assert EMAIL not in json.dumps(line) and "zxqv" not in json.dumps(line)


PSYCOPG_TYPES = {"23505": "UniqueViolation", "22P02": "InvalidTextRepresentation",
                 "42P01": "UndefinedTable"}
ASYNCPG_TYPES = {"23505": "UniqueViolationError", "22P02": "InvalidTextRepresentationError",
                 "42P01": "UndefinedTableError"}


@pytest.mark.parametrize("bodies", [False, True])
def test_psycopg(pg_dsn: str, query_log: Any, bodies: bool) -> None:
    setup_table(pg_dsn)
    log = query_log(include_query_bodies=bodies)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        dbsight.instrument(conn)
        for statement in STATEMENTS:
            with pytest.raises(psycopg.errors.Error):
                conn.execute(statement)
    check(log.lines(), PSYCOPG_TYPES, bodies)


@pytest.mark.parametrize("bodies", [False, True])
async def test_asyncpg(pg_dsn: str, query_log: Any, bodies: bool) -> None:
    setup_table(pg_dsn)
    log = query_log(include_query_bodies=bodies)
    conn = await asyncpg.connect(pg_dsn)
    try:
        dbsight.instrument(conn)
        for statement in STATEMENTS:
            with pytest.raises(asyncpg.PostgresError):
                await conn.execute(statement)
    finally:
        await conn.close()
    check(log.lines(), ASYNCPG_TYPES, bodies)


def test_sqlalchemy_on_psycopg(pg_dsn: str, query_log: Any) -> None:
    setup_table(pg_dsn)
    log = query_log()
    engine = create_engine(pg_dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        dbsight.instrument(engine)
        for statement in STATEMENTS:
            with engine.connect() as conn, pytest.raises(Exception) as raised:
                conn.execute(text(statement))
            assert raised.type.__module__.startswith("sqlalchemy")  # unchanged: SQLAlchemy's
    finally:
        engine.dispose()
    check(log.lines(), PSYCOPG_TYPES, False)


async def test_sqlalchemy_on_asyncpg(pg_dsn: str, query_log: Any) -> None:
    setup_table(pg_dsn)
    log = query_log()
    engine = create_async_engine(pg_dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        dbsight.instrument(engine)
        for statement in STATEMENTS:
            async with engine.connect() as conn:
                with pytest.raises(Exception):
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()
    lines = log.lines()
    check(lines, {line["sqlstate"]: line["error_type"] for line in lines}, False)


def test_the_proxys_error_events(pg_dsn: str, query_log: Any) -> None:
    from dbsight.proxy._config import ProxyConfig
    from dbsight.testing.proxy import RunningProxy

    setup_table(pg_dsn)
    log = query_log()
    proxy = RunningProxy(ProxyConfig(listen="127.0.0.1:0", upstream=pg_dsn))
    try:
        with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
            for statement in STATEMENTS:
                with pytest.raises(psycopg.errors.Error):
                    conn.execute(statement)
        # the proxy forwards the server's answer before it records it
        for _ in range(1000):
            if len([line for line in log.lines() if line["source"] == "proxy"]) == 3:
                break
            proxy.call(_pause())
    finally:
        proxy.close()
    lines = [line for line in log.lines() if line["source"] == "proxy"]
    check(lines, dict.fromkeys(PSYCOPG_TYPES, "ServerError"), False)


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.01)
