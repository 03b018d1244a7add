"""Without HypoPG the advisor says so and stops; it enables it only when asked."""

from __future__ import annotations

import psycopg
import pytest
from advisor_schema import statement, workload

from dbsight.advise import AdvisorError, AdvisorOptions, advise_indexes


def _table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int, v int)")
        conn.execute("INSERT INTO t SELECT i, i FROM generate_series(1, 20000) i")
        conn.execute("ANALYZE t")


def _enabled(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return bool(conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'").fetchone()[0])  # fmt: skip


def test_hypopg_not_enabled_is_a_clear_error_and_changes_nothing(pg_dsn: str) -> None:
    _table(pg_dsn)
    w = workload(statement("SELECT * FROM t WHERE v = 3"))
    with pytest.raises(AdvisorError) as caught:
        advise_indexes(pg_dsn, w)
    message = str(caught.value)
    assert "HypoPG is installed on the server but not enabled in database" in message
    assert "CREATE EXTENSION hypopg" in message and "--create-extension" in message
    assert not _enabled(pg_dsn)


def test_create_extension_enables_it_when_asked(pg_dsn: str) -> None:
    _table(pg_dsn)
    w = workload(statement("SELECT * FROM t WHERE v = 3", calls=100, total_ms=500))
    advice = advise_indexes(pg_dsn, w, options=AdvisorOptions(create_extension=True))
    assert _enabled(pg_dsn)
    assert [i.index.columns for i in advice.indexes] == [("v",)]


def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(AdvisorError, match="cannot connect to the database"):
        advise_indexes("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", workload())
