"""The checks' connection: read-only transactions under a statement and lock timeout, one per
check, so that a query that fails (permission denied, a timeout) fails only its own check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from ._report import CheckError

__all__ = ["Session", "connect", "describe_dsn"]

APPLICATION_NAME = "dbsight check"
CONNECT_TIMEOUT_S = 10
# A catalog function such as pg_relation_size waits for a lock an ALTER TABLE holds: give up
# soon rather than queue behind it (and make the application's statements queue behind us).
LOCK_TIMEOUT_MS = 2_000


def describe_dsn(dsn: str) -> str:
    """``dsn`` as a report may show it: postgresql://user@host:port/dbname, no password."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparsable DSN)"
    user = str(parts.get("user") or "")
    host = str(parts.get("host") or "localhost")
    port = parts.get("port")
    dbname = str(parts.get("dbname") or "")
    where = f"{host}:{port}" if port else str(host)
    return f"postgresql://{user + '@' if user else ''}{where}/{dbname}"


class Session:
    """A connection whose every transaction is READ ONLY with a ``statement_timeout``."""

    def __init__(self, conn: psycopg.Connection[Any], timeout_ms: int) -> None:
        self._conn = conn
        self._timeout_ms = timeout_ms

    @property
    def pid(self) -> int:
        return self._conn.info.backend_pid

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._conn.transaction():
            self._conn.execute(
                "SELECT set_config('statement_timeout', %s, true),"
                " set_config('lock_timeout', %s, true)",
                (str(self._timeout_ms), str(min(self._timeout_ms, LOCK_TIMEOUT_MS))),
            )
            yield self

    def rows(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._conn.cursor(row_factory=dict_row) as cur:
            # Always with parameters, so that every query writes a literal % as %%.
            cur.execute(query, params or {})  # type: ignore[arg-type]  # literal queries
            return cur.fetchall()

    def value(self, query: str, params: dict[str, Any] | None = None) -> Any:
        with self._conn.cursor() as cur:
            cur.execute(query, params or {})  # type: ignore[arg-type]
            row = cur.fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self._conn.close()


def connect(dsn: str, *, timeout_s: float) -> Session:
    """A `Session` on ``dsn``; `CheckError` with a one-line reason when it cannot connect."""
    try:
        conn = psycopg.connect(
            dsn,
            autocommit=True,  # transactions only where `Session.transaction` opens them
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=APPLICATION_NAME,
        )
    except psycopg.Error as exc:
        raise CheckError(f"cannot connect to {describe_dsn(dsn)}: {one_line(str(exc))}") from None
    conn.read_only = True  # every transaction opened from now on is BEGIN READ ONLY
    return Session(conn, max(1, round(timeout_s * 1000)))


def one_line(message: str) -> str:
    """A server or driver message on one line (they come with DETAIL and HINT lines)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def valid_dsn(dsn: str) -> str | None:
    """Why ``dsn`` is not a PostgreSQL connection string, or None when it is one."""
    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        return f"not a PostgreSQL connection string: {one_line(str(exc))}"
    return None
