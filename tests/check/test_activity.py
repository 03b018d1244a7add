"""Sessions: idle in transaction, blocked and blocking, long-running, and the connections by
state, with real sessions in the checked database. Statements are shown normalized."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest
from check_helpers import check, connect, objects, run
from typer.testing import CliRunner

from dbsight.cli import app as cli

SECRET = "s3cret-literal"


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_session_idle_in_transaction_fails_with_its_last_statement_normalized(
    pg_dsn: str,
) -> None:
    with connect(pg_dsn) as setup:
        setup.execute("CREATE TABLE accounts (id int PRIMARY KEY, owner text)")
        setup.execute("INSERT INTO accounts VALUES (1, %s)", (SECRET,))
    with psycopg.connect(pg_dsn) as idle:  # not autocommit: the SELECT opens a transaction
        idle.execute(f"SELECT * FROM accounts WHERE owner = '{SECRET}'").fetchall()
        pid = idle.info.backend_pid
        time.sleep(0.3)

        assert check(pg_dsn, "idle_in_transaction").status == "ok"  # 60 s by default
        result = check(pg_dsn, "idle_in_transaction", idle_in_transaction_s=0.2)

        assert result.status == "failed"
        assert objects(result) == [str(pid)]
        (item,) = result.items
        assert item["query"] == "SELECT * FROM accounts WHERE owner = $1"
        assert item["state"] == "idle in transaction" and item["idle_s"] >= 0.2
        assert SECRET not in json.dumps(result.to_dict())
        assert f"SELECT pg_terminate_backend({pid});" in (result.hint or "")
        assert "idle_in_transaction_session_timeout" in (result.hint or "")
        # the count limit (PgHero: 100) fails however short the wait
        assert check(pg_dsn, "idle_in_transaction", idle_in_transaction_count=1).status == "failed"


def test_a_blocked_session_and_its_blocker(pg_dsn: str) -> None:
    with connect(pg_dsn) as setup:
        setup.execute("CREATE TABLE stock (sku int PRIMARY KEY, quantity int)")
        setup.execute("INSERT INTO stock VALUES (1, 10)")
    blocker = psycopg.connect(pg_dsn)
    waiter = psycopg.connect(pg_dsn, autocommit=True)
    outcome: list[Any] = []
    try:
        blocker.execute("UPDATE stock SET quantity = 9 WHERE sku = 1")  # holds the row lock
        thread = threading.Thread(
            target=lambda: outcome.append(
                waiter.execute("UPDATE stock SET quantity = 8 WHERE sku = 1").rowcount
            )
        )
        thread.start()
        with connect(pg_dsn) as probe:
            wait_for(lambda: probe.execute(
                "SELECT cardinality(pg_blocking_pids(%s)) > 0", (waiter.info.backend_pid,)
            ).fetchone()[0])  # type: ignore[index]  # fmt: skip
        time.sleep(0.2)

        assert check(pg_dsn, "blocked_queries", blocked_s=30).status == "ok"
        result = check(pg_dsn, "blocked_queries", blocked_s=0.1)

        assert result.status == "failed"
        assert objects(result) == [str(waiter.info.backend_pid)]
        (item,) = result.items
        assert item["blocking_pids"] == [blocker.info.backend_pid]
        assert item["query"] == "UPDATE stock SET quantity = $1 WHERE sku = $2"
        assert item["lock"]["type"] == "transactionid" and item["waiting_s"] >= 0.1
        (held_by,) = item["blockers"]
        assert held_by["pid"] == blocker.info.backend_pid
        assert held_by["state"] == "idle in transaction"
        assert held_by["query"] == "UPDATE stock SET quantity = $1 WHERE sku = $2"
        assert result.hint is not None
        assert result.hint.endswith(f"SELECT pg_terminate_backend({blocker.info.backend_pid});")
        assert "held by 1 session" in result.summary
    finally:
        blocker.rollback()  # printed, not run: the blocker is still there to roll back
        thread.join(10)
        blocker.close()
        waiter.close()
    assert outcome == [1]


def test_a_long_query_fails_with_a_low_threshold_from_the_command_line(pg_dsn: str) -> None:
    sleeper = psycopg.connect(pg_dsn, autocommit=True)
    errors: list[BaseException] = []

    def sleep() -> None:
        try:
            sleeper.execute("SELECT pg_sleep(60), 'x' || %s", (SECRET,))
        except psycopg.errors.QueryCanceled as exc:
            errors.append(exc)

    thread = threading.Thread(target=sleep)
    thread.start()
    try:
        time.sleep(1.3)
        result = CliRunner().invoke(
            cli, ["check", "--dsn", pg_dsn, "--json", "--long-query-s", "1"]
        )
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        long = next(c for c in report["checks"] if c["name"] == "long_running_queries")
        assert long["status"] == "failed"
        (item,) = long["items"]
        assert item["pid"] == sleeper.info.backend_pid and item["query_s"] >= 1
        assert item["query"] == "SELECT pg_sleep($1), $2 || $3"
        assert SECRET not in result.stdout
        assert f"pg_cancel_backend({sleeper.info.backend_pid})" in long["hint"]
        # the default (PgHero's 60 s) does not count it
        default = run(pg_dsn).result("long_running_queries")
        assert default.status == "ok"
    finally:
        sleeper.cancel()
        thread.join(10)
        sleeper.close()
    assert errors, "the query was cancelled by the test, not by the check"


def test_connections_by_state(pg_dsn: str) -> None:
    with connect(pg_dsn), connect(pg_dsn):
        result = check(pg_dsn, "connections")
        assert result.status == "ok"
        states = {i["state"]: i["connections"] for i in result.items}
        assert states.get("idle", 0) >= 2 and states.get("active", 0) >= 1
        failed = check(pg_dsn, "connections", total_connections=2)
        assert failed.status == "failed" and objects(failed) == ["total"]
        assert "at least 2" in failed.summary


@pytest.mark.parametrize("name", ["long_running_queries", "blocked_queries", "idle_in_transaction"])
def test_a_quiet_database_has_no_session_findings(pg_dsn: str, name: str) -> None:
    result = check(pg_dsn, name, long_query_s=0, blocked_s=0, idle_in_transaction_s=0)
    assert result.status == "ok", result
