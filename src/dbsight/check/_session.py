"""The checks' connection: read-only transactions under a statement and lock timeout, one per
check, so that a query that fails (permission denied, a timeout) fails only its own check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..core._dsn import cannot_connect
from ..workload import ANALYSIS_MARK
from ._report import CheckError

__all__ = ["Session", "connect"]

APPLICATION_NAME = "dbsight check"
CONNECT_TIMEOUT_S = 10
# A catalog function such as pg_relation_size waits for a lock an ALTER TABLE holds: give up
# soon rather than queue behind it (and make the application's statements queue behind us).
LOCK_TIMEOUT_MS = 2_000


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
            cur.execute(_marked(query), params or {})  # type: ignore[arg-type]  # literal queries
            return cur.fetchall()

    def value(self, query: str, params: dict[str, Any] | None = None) -> Any:
        with self._conn.cursor() as cur:
            cur.execute(_marked(query), params or {})  # type: ignore[arg-type]
            row = cur.fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self._conn.close()


def _marked(query: str) -> str:
    """The check's query with the analysis mark: a pg_stat_statements workload read later
    leaves it out (the server keeps the comment in the statement's text)."""
    return f"{ANALYSIS_MARK} {query}"


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
        raise CheckError(cannot_connect(dsn, exc)) from None
    conn.read_only = True  # every transaction opened from now on is BEGIN READ ONLY
    return Session(conn, max(1, round(timeout_s * 1000)))
