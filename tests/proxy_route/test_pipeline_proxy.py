"""The request pipeline in a running `dbsight proxy` (transaction mode), with real clients:
each rejection reaches the client as an ErrorResponse naming the rule, and the session goes
on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from prometheus_client import generate_latest

from dbsight._runtime import get_runtime
from dbsight.proxy._config import ProxyConfig
from dbsight.testing.proxy import RunningProxy


@pytest.fixture
def guarded(pg_dsn: str) -> Iterator[Any]:
    made: list[RunningProxy] = []

    def make(*steps: dict[str, Any]) -> str:
        config = ProxyConfig(
            listen="127.0.0.1:0", upstream=pg_dsn, pool_mode="transaction", pool_size=2,
            pipeline=list(steps),
        )
        proxy = RunningProxy(config)
        made.append(proxy)
        return str(proxy.dsn(pg_dsn))

    yield make
    for proxy in made:
        proxy.close()


def test_the_allow_list_refuses_other_users_at_login(guarded: Any, pg_dsn: str) -> None:
    user = urlsplit(pg_dsn).username or "postgres"
    with psycopg.connect(guarded({"handler": "allow", "users": [user]}), autocommit=True) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
    dsn = guarded({"handler": "allow", "users": ["someone_else"]})
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(dsn)
    assert "allow" in str(refused.value)


def test_the_firewall_rejects_unbounded_writes_in_every_protocol_and_state(
    guarded: Any,
) -> None:
    dsn = guarded({"handler": "firewall", "deny_unbounded_writes": True})
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE fw (id int, v text)")
        conn.execute("INSERT INTO fw VALUES (1, 'a'), (2, 'b')")
        with pytest.raises(psycopg.Error) as outside:
            conn.execute("DELETE FROM fw")  # simple protocol, between transactions
        assert outside.value.sqlstate == "21000"
        assert "deny_unbounded_writes" in str(outside.value)
        with pytest.raises(psycopg.Error) as extended:  # with parameters: Parse/Bind/Execute
            conn.execute("UPDATE fw SET v = %s", ("z",))
        assert extended.value.sqlstate == "21000"
        assert conn.execute("UPDATE fw SET v = %s WHERE id = %s", ("c", 1)).rowcount == 1
        with pytest.raises(psycopg.errors.InFailedSqlTransaction), conn.transaction():
            conn.execute("INSERT INTO fw VALUES (3, 'c')")
            with pytest.raises(psycopg.Error) as inside:
                conn.execute("DELETE FROM fw")
            assert inside.value.sqlstate == "21000"
            conn.execute("SELECT 1")  # the transaction failed, as after any error
        assert conn.execute("SELECT count(*) FROM fw").fetchone() == (2,)  # rolled back
        conn.execute("DROP TABLE fw")
    text = generate_latest(get_runtime().registry).decode()
    assert 'proxy_rejected_total{reason="firewall_unbounded_write"}' in text


def test_rate_limits_reject_or_queue(guarded: Any) -> None:
    rejecting = guarded({"handler": "rate_limit", "rate": 0.001, "burst": 2})
    with psycopg.connect(rejecting, autocommit=True) as conn:
        conn.execute("SELECT 1")
        conn.execute("SELECT 2")
        with pytest.raises(psycopg.Error) as limited:
            conn.execute("SELECT 3")
        assert limited.value.sqlstate == "53400"
    queueing = guarded(
        {"handler": "rate_limit", "rate": 20, "burst": 1, "mode": "queue", "max_wait_s": 5}
    )
    with psycopg.connect(queueing, autocommit=True) as conn:
        assert [conn.execute("SELECT %s::int", (i,)).fetchone() for i in range(4)] == [
            (0,), (1,), (2,), (3,),
        ]


def test_max_rows_stops_a_result_past_the_limit(guarded: Any) -> None:
    dsn = guarded({"handler": "firewall", "max_rows": 100})
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert len(conn.execute("SELECT generate_series(1, 100)").fetchall()) == 100
        with pytest.raises(psycopg.Error) as limited:
            conn.execute("SELECT generate_series(1, 1000000)")
        assert limited.value.sqlstate == "54000"
        assert "max_rows" in str(limited.value)
        with pytest.raises(psycopg.Error) as extended:
            conn.execute("SELECT generate_series(1, %s)", (5000,))
        assert extended.value.sqlstate == "54000"
        assert conn.execute("SELECT 'still fine'").fetchone() == ("still fine",)


def test_session_mode_checks_every_statement(pg_dsn: str) -> None:
    """Session mode with a pipeline: the session keeps its server connection (its temporary
    table lasts) and Query and Execute are both checked."""
    proxy = RunningProxy(ProxyConfig(
        listen="127.0.0.1:0", upstream=pg_dsn, pool_mode="session",
        pipeline=[{"handler": "firewall", "deny_unbounded_writes": True, "max_rows": 100},
                  {"handler": "rate_limit", "rate": 20, "burst": 1, "mode": "queue"}],
    ))
    try:
        with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
            conn.execute("CREATE TEMP TABLE t (id int)", prepare=False)
            conn.execute("INSERT INTO t VALUES (%s)", (1,))
            cur = conn.cursor()
            with pytest.raises(psycopg.Error) as rejected:
                cur.execute("DELETE FROM t")  # no parameters: the simple protocol
            assert rejected.value.sqlstate == "21000"
            with pytest.raises(psycopg.Error) as extended:
                cur.execute("UPDATE t SET id = %s", (2,))  # Parse, Bind, Execute
            assert extended.value.sqlstate == "21000"
            with pytest.raises(psycopg.Error) as limited:
                conn.execute("SELECT generate_series(1, %s)", (5000,))
            assert limited.value.sqlstate == "54000"
            assert conn.execute("SELECT id FROM t").fetchall() == [(1,)]  # nothing changed
            assert [conn.execute("SELECT %s::int", (i,)).fetchone() for i in range(3)] == [
                (0,), (1,), (2,)
            ]
    finally:
        proxy.close()


def test_sample_and_log_steps_log_the_statements_they_keep(
    guarded: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="dbsight.test.kept")
    caplog.set_level("INFO", logger="dbsight.test.dropped")
    kept = guarded(
        {"handler": "sample", "environment": "dev"},
        {"handler": "log", "logger": "dbsight.test.kept"},
    )
    dropped = guarded(
        {"handler": "sample", "rate": 0.0},
        {"handler": "log", "logger": "dbsight.test.dropped"},
    )
    for dsn in (kept, dropped):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT 1 WHERE 'x' = %s", ("private literal",)).fetchall()
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1 / 0")
    records = [r for r in caplog.records if r.name == "dbsight.test.kept"]
    assert [(r.operation, r.outcome, r.sqlstate) for r in records] == [  # type: ignore[attr-defined]
        ("select", "ok", None), ("select", "error", "22012")
    ]
    first = records[0]
    assert first.normalized == "SELECT $1 WHERE $2 = $3"  # type: ignore[attr-defined]
    assert first.user and first.database and first.client  # type: ignore[attr-defined]
    assert "private literal" not in repr(first.__dict__)
    assert not [r for r in caplog.records if r.name == "dbsight.test.dropped"]
