"""``dbsight analyze``: the dialect is checked, and the routing verdict is the proxy router's,
with its reason; without a database, what needed one is listed as unchecked, with one (a
real PostgreSQL) it is asked as the proxy asks its primary."""

from __future__ import annotations

import json
import socket
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from dbsight.cli import app as cli
from dbsight.proxy._route_explain import explain_route, query_message
from dbsight.proxy._router import Router, Unit


def analyze(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["analyze", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def routing(*args: str) -> dict[str, Any]:
    document = analyze(*args)
    return document["routing"]


def test_an_unknown_dialect_is_a_usage_error_listing_the_dialects() -> None:
    result = CliRunner().invoke(cli, ["analyze", "--dialect", "foo", "SELECT 1"])
    assert result.exit_code == 2
    message = " ".join(result.output.replace("│", " ").split())
    assert "unknown dialect 'foo'" in message
    for name in ("postgresql", "mysql", "mariadb", "sqlite"):
        assert name in message


@pytest.mark.parametrize("dialect", ["MySQL", "mariadb", "sqlite3", "pg"])
def test_dialect_names_and_aliases_are_accepted(dialect: str) -> None:
    assert analyze("--dialect", dialect, "SELECT a FROM t")["read_only"] is True


def test_other_dialects_say_why_a_statement_is_not_read_only_and_are_not_routed() -> None:
    document = analyze("--dialect", "mysql", "SELECT * FROM t LOCK IN SHARE MODE")
    assert document["read_only"] is False
    assert document["not_read_only_because"] == "FOR SHARE (locks rows)"
    assert "routing" not in document


@pytest.mark.parametrize(
    ("sql", "target", "reason"),
    [
        ("SELECT id FROM orders FOR UPDATE", "primary", "FOR UPDATE (locks rows)"),
        ("SELECT id FROM orders FOR NO KEY UPDATE", "primary", "FOR NO KEY UPDATE (locks rows)"),
        ("INSERT INTO orders VALUES (1)", "primary", "INSERT (writes)"),
        (
            "WITH d AS (DELETE FROM orders RETURNING id) SELECT id FROM d",
            "primary",
            "DELETE (writes)",
        ),
        ("SELECT 1 INTO t", "primary", "SELECT INTO (creates a table)"),
        ("EXPLAIN ANALYZE SELECT 1", "primary", "EXPLAIN ANALYZE (runs the statement)"),
        ("CREATE TABLE t (a int)", "primary", "CREATE TABLE (DDL)"),
        ("SET search_path = a", "primary", "SET (changes the session)"),
        ("SHOW transaction_read_only", "primary", "it reads transaction_read_only"),
        ("/* dbsight:primary */ SELECT 1", "primary", "a /* dbsight:primary */ comment"),
        ("/* dbsight:replica */ SELECT 1 FOR UPDATE", "primary", "cannot move it: FOR UPDATE"),
        ("/* dbsight:replica */ SELECT f(1)", "replica", "a /* dbsight:replica */ comment"),
        ("BEGIN READ ONLY", "replica", "a READ ONLY transaction"),
        ("BEGIN", "primary", "a transaction start without READ ONLY"),
        ("SELECT nextval('ids')", "primary", "calls nextval(), a built-in that writes"),
        ("SELECT 1", "replica", "plain SELECT"),
    ],
)
def test_the_verdict_and_its_reason(sql: str, target: str, reason: str) -> None:
    verdict = routing(sql)
    assert verdict["target"] == target
    assert reason in verdict["reason"]
    assert verdict["unchecked"] == []


def test_without_a_database_relations_and_functions_are_unchecked() -> None:
    plain = routing("SELECT total FROM orders WHERE id = $1")
    assert (plain["target"], plain["reason"]) == (
        "replica",
        "plain SELECT: no locking clause, no writes, only read-only built-in functions",
    )
    assert any(item.startswith("what orders is") for item in plain["unchecked"])

    calling = routing("SELECT my_total(id) FROM orders")
    assert calling["target"] == "replica"
    assert any(item.startswith("the volatility of my_total()") for item in calling["unchecked"])


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "SELECT id FROM orders FOR UPDATE",
        "INSERT INTO orders VALUES (1)",
        "BEGIN READ ONLY",
        "BEGIN",
        "/* dbsight:replica */ SELECT f()",
        "/* dbsight:primary */ SELECT 1",
        "SHOW transaction_read_only",
    ],
)
def test_offline_verdicts_are_the_routers(sql: str) -> None:
    judged = Router().unit(query_message(sql), 0, lambda name: None, 0.0)
    assert isinstance(judged, Unit)
    assert explain_route(sql).target == ("replica" if judged.replica else "primary")


@pytest.fixture
def shop(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int, total numeric)")
        conn.execute("CREATE SEQUENCE ids")
        conn.execute(
            "CREATE FUNCTION net(numeric) RETURNS numeric STABLE LANGUAGE sql AS 'SELECT $1'"
        )
        conn.execute("CREATE FUNCTION bump(int) RETURNS int LANGUAGE sql AS 'SELECT $1'")
        conn.execute("CREATE VIEW next_ids AS SELECT nextval('ids') AS id")
        conn.execute("CREATE VIEW big_orders AS SELECT id FROM orders WHERE total > 100")
    return pg_dsn


@pytest.mark.parametrize(
    ("sql", "target", "reason"),
    [
        ("SELECT total FROM orders", "replica", "plain SELECT"),
        ("SELECT net(total) FROM orders", "replica", "calling only non-volatile functions"),
        ("SELECT bump(id) FROM orders", "primary", "calls bump(): VOLATILE"),
        ("SELECT nextval('ids')", "primary", "calls nextval(), a built-in that writes"),
        ("SELECT missing(1)", "primary", "calls missing(): VOLATILE (it may write), or no such"),
        ("SELECT id FROM big_orders", "replica", "big_orders: tables or read-only views"),
        ("SELECT id FROM next_ids", "primary", "reads next_ids: a view that is not read-only"),
        ("SELECT id FROM no_such_table", "primary", "reads no_such_table"),
    ],
)
def test_with_a_database_its_catalog_decides(
    shop: str, sql: str, target: str, reason: str
) -> None:
    verdict = routing("--database", shop, sql)
    assert verdict["target"] == target
    assert reason in verdict["reason"]
    assert verdict["unchecked"] == []


def test_an_unreachable_database_is_an_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(
        cli, ["analyze", "--database", f"postgresql://postgres@127.0.0.1:{port}/x", "SELECT 1"]
    )
    assert result.exit_code == 1
    assert f"127.0.0.1:{port} is unreachable" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--database", "mysql://root@127.0.0.1/x"], "expected a postgresql:// URL"),
        (["--database", "postgresql://127.0.0.1/x", "--dialect", "mysql"], "only a PostgreSQL"),
    ],
)
def test_a_bad_database_option_is_a_usage_error(args: list[str], complaint: str) -> None:
    result = CliRunner().invoke(cli, ["analyze", *args, "SELECT 1"])
    assert result.exit_code == 2
    assert complaint in " ".join(result.output.replace("│", " ").split())
