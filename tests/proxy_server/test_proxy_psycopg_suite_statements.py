"""Prepared statements through transaction pooling after DDL, DEALLOCATE ALL and ROLLBACK:
what psycopg's own suite found (tests/test_prepared.py: test_alter_table_clears_state,
test_change_type, test_change_type_execute, test_change_type_savepoint).

psycopg (prepare_threshold=0 prepares every statement) sends DEALLOCATE ALL after a DROP,
ALTER or ROLLBACK and prepares the same text again; the proxy shares one server statement per
text and parameter types, so it must know that the server dropped them, and that a statement
prepared before DDL may name a type that is gone.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest


def pooled(proxy_factory: Any, pg_dsn: str, pool_size: int = 1) -> str:
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=pool_size)
    return str(proxy.dsn(pg_dsn))


def test_statement_prepared_again_after_alter_and_deallocate_all(
    proxy_factory: Any, pg_dsn: str
) -> None:
    dsn = pooled(proxy_factory, pg_dsn)
    with psycopg.connect(dsn) as conn:
        conn.prepare_threshold = 0
        conn.execute("CREATE TABLE testalter (id serial primary key, data text)")
        conn.execute("INSERT INTO testalter (data) VALUES (%s)", ["foo"])
        rows = conn.execute("SELECT * FROM testalter ORDER BY id").fetchall()
        assert [r[1] for r in rows] == ["foo"]
        conn.execute("ALTER TABLE testalter ADD data2 text")  # psycopg: DEALLOCATE ALL next
        conn.execute("INSERT INTO testalter (data) VALUES (%s)", ["bar"])
        rows = conn.execute("SELECT * FROM testalter ORDER BY id").fetchall()
        assert rows == [(1, "foo", None), (2, "bar", None)]


def test_same_text_after_type_dropped_and_created_again(
    proxy_factory: Any, pg_dsn: str
) -> None:
    dsn = pooled(proxy_factory, pg_dsn)
    insert = "INSERT INTO preptable (bar) VALUES (%(enum_col)s::prepenum[])"
    with psycopg.connect(dsn) as conn:
        conn.prepare_threshold = 0
        conn.execute("CREATE TYPE prepenum AS ENUM ('foo', 'bar', 'baz')")
        conn.execute("CREATE TABLE preptable(id integer, bar prepenum[])")
        conn.cursor().execute(insert, {"enum_col": ["foo"]})
        conn.execute("DROP TABLE preptable")
        conn.execute("DROP TYPE prepenum")
        conn.execute("CREATE TYPE prepenum AS ENUM ('foo', 'bar', 'baz')")
        conn.execute("CREATE TABLE preptable(id integer, bar prepenum[])")
        conn.cursor().execute(insert, {"enum_col": ["foo"]})
        assert conn.execute("SELECT bar::text[] FROM preptable").fetchall() == [(["foo"],)]


@pytest.mark.parametrize("many", [False, True], ids=["execute", "executemany"])
def test_same_text_after_rolled_back_type(proxy_factory: Any, pg_dsn: str, many: bool) -> None:
    """Each round's type is rolled back. psycopg's DEALLOCATE ALL after the ROLLBACK runs
    on its own, so in transaction pooling on any connection: here on none (psycopg forgets
    its statements, the DEALLOCATE ALL is dropped), and the next round's Parse, on the same
    connection, must not find the statement that names the rolled-back type."""
    dsn = pooled(proxy_factory, pg_dsn)
    insert = "INSERT INTO preptable (bar) VALUES (%(enum_col)s::prepenum[])"
    with psycopg.connect(dsn) as conn:
        conn.prepare_threshold = 0

        def dropped(_conn: Any) -> Any:  # psycopg's DEALLOCATE ALL, sent elsewhere
            conn._prepared._to_flush.clear()
            yield from ()

        conn._prepared.maintain_gen = dropped  # type: ignore[method-assign]
        for _ in range(3):
            conn.execute("CREATE TYPE prepenum AS ENUM ('foo', 'bar', 'baz')")
            conn.execute("CREATE TABLE preptable(id integer, bar prepenum[])")
            if many:
                conn.cursor().executemany(insert, [{"enum_col": ["foo"]}, {"enum_col": ["bar"]}])
            else:
                conn.cursor().execute(insert, {"enum_col": ["foo"]})
            assert conn.execute("SELECT count(*) FROM preptable").fetchone() == (2 if many else 1,)
            conn.rollback()  # (psycopg forgets its statements: the next round prepares again)


def test_other_client_sees_new_columns_after_alter(proxy_factory: Any, pg_dsn: str) -> None:
    """One server connection: a statement the first client prepared there before another
    client's ALTER TABLE is not the one a later client's same text runs (it would fail with
    'cached plan must not change result type')."""
    dsn = pooled(proxy_factory, pg_dsn)
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute("CREATE TABLE shared_alter (id int, data text)")
        setup.execute("INSERT INTO shared_alter VALUES (1, 'a')")
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as first:
        assert first.execute("SELECT * FROM shared_alter").fetchall() == [(1, "a")]
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("ALTER TABLE shared_alter ADD extra int DEFAULT 7")
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as later:
        assert later.execute("SELECT * FROM shared_alter").fetchall() == [(1, "a", 7)]


def test_deallocate_all_in_a_transaction_then_prepare_again(
    proxy_factory: Any, pg_dsn: str
) -> None:
    """DEALLOCATE ALL inside the transaction: the same connection runs the statement next,
    and must prepare it again rather than answer the Parse from what it had."""
    dsn = pooled(proxy_factory, pg_dsn)
    with psycopg.connect(dsn, prepare_threshold=0) as conn:
        with conn.transaction():
            assert conn.execute("SELECT %s::int + 1", [1]).fetchone() == (2,)
            conn.execute("DEALLOCATE ALL")
            conn._prepared.clear()  # (what psycopg itself does after DROP/ALTER/ROLLBACK)
            conn._prepared._to_flush.clear()
            assert conn.execute("SELECT %s::int + 1", [2]).fetchone() == (3,)


def test_committed_create_keeps_statements_shared(proxy_factory: Any, pg_dsn: str) -> None:
    """A temporary table per transaction (a committed CREATE) changes nothing prepared
    before: the same text keeps its one server statement on the connection, not prepared
    again under a new name."""
    dsn = pooled(proxy_factory, pg_dsn)
    text = "SELECT %s::int + 40"
    names = "SELECT name FROM pg_prepared_statements WHERE statement = 'SELECT $1::int + 40'"
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as first:
        assert first.execute(text, [2]).fetchone() == (42,)
        before = first.execute(names, prepare=False).fetchall()
    with psycopg.connect(dsn) as other:
        other.execute("CREATE TEMP TABLE scratch (n int) ON COMMIT DROP")
        other.commit()
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as later:
        assert later.execute(text, [1]).fetchone() == (41,)
        assert later.execute(names, prepare=False).fetchall() == before
    assert len(before) == 1
