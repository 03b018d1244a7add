"""``dbsight check``: the report for a person and as JSON (the contract's shape), the exit
status --fail-on gives, a clean database passing, and the errors."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from check_helpers import connect, flush_stats, run
from typer.testing import CliRunner

from dbsight.check import CHECK_NAMES, run_checks
from dbsight.check._session import connect as check_connect

INT4_MAX = 2_147_483_647


def invoke(*args: str) -> Any:
    return CliRunner().invoke(__import__("dbsight.cli", fromlist=["app"]).app, ["check", *args])


def clean_schema(dsn: str) -> None:
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE customers (id bigserial PRIMARY KEY, email text UNIQUE)")
        conn.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, "
                     "customer bigint REFERENCES customers, total numeric)")  # fmt: skip
        conn.execute("CREATE INDEX orders_customer ON orders (customer)")
        conn.execute("INSERT INTO customers (email) SELECT 'c' || n FROM generate_series(1, 50) n")
        conn.execute(
            "INSERT INTO orders (customer, total) "
            "SELECT 1 + n % 50, n FROM generate_series(1, 200) n"
        )
        conn.execute("ANALYZE")


def with_duplicate(dsn: str) -> None:  # a warning
    with connect(dsn) as conn:
        conn.execute("CREATE INDEX orders_customer_total ON orders (customer, total)")


def with_sequence_near_its_end(dsn: str) -> None:  # a critical
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE tickets (id serial)")
        conn.execute("SELECT setval('tickets_id_seq', %s)", (int(INT4_MAX * 0.95),))


def with_stale_statistics(dsn: str) -> None:  # an info
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE ledger (id int) WITH (autovacuum_enabled = off)")
        conn.execute("INSERT INTO ledger SELECT generate_series(1, 10000)")
        flush_stats(conn)


def test_a_clean_database_passes_every_check(pg_dsn: str) -> None:
    clean_schema(pg_dsn)
    report = run_checks(pg_dsn)
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    assert [(c.name, c.status) for c in report.checks if c.status != "ok"] == []
    assert report.failed("info") == []
    result = invoke("--dsn", pg_dsn, "--fail-on", "warning")
    assert result.exit_code == 0, result.output
    assert "FAILED" not in result.stdout


def test_json_is_the_contract_shape(pg_dsn: str) -> None:
    clean_schema(pg_dsn)
    with_duplicate(pg_dsn)
    dsn = re.sub(r"^postgresql://([^@/]*)@", r"postgresql://\1:topsecret@", pg_dsn)
    result = invoke("--dsn", dsn, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"database", "checked_at", "checks"}
    assert "topsecret" not in result.stdout
    assert document["database"].startswith("postgresql://") and document["database"].endswith(
        "/" + psycopg.conninfo.conninfo_to_dict(pg_dsn)["dbname"]
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["checked_at"])
    assert [c["name"] for c in document["checks"]] == list(CHECK_NAMES)
    for check in document["checks"]:
        assert set(check) == {"name", "title", "severity", "status", "summary", "items", "hint"}
        assert check["severity"] in ("critical", "warning", "info")
        assert check["status"] in ("ok", "failed", "error")
        assert isinstance(check["summary"], str) and "\n" not in check["summary"]
        assert isinstance(check["items"], list)
        assert (check["hint"] is not None) == (check["status"] == "failed")
    (duplicate,) = [c for c in document["checks"] if c["status"] == "failed"]
    assert duplicate["name"] == "duplicate_indexes"
    assert duplicate["items"][0]["index"] == "orders_customer"
    assert duplicate["items"][0]["covered_by"] == "orders_customer_total"


@pytest.mark.parametrize(
    ("problems", "fail_on", "status"),
    [
        ([], "warning", 0),
        ([with_duplicate], None, 0),  # no --fail-on: findings never fail the run
        ([with_duplicate], "none", 0),
        ([with_duplicate], "critical", 0),
        ([with_duplicate], "warning", 1),
        ([with_sequence_near_its_end], "critical", 1),
        ([with_sequence_near_its_end], "warning", 1),
        ([with_stale_statistics], "warning", 0),
        ([with_stale_statistics], "info", 1),
    ],
    ids=[
        "clean",
        "warning-default",
        "warning-none",
        "warning-critical",
        "warning-warning",
        "critical-critical",
        "critical-warning",
        "info-warning",
        "info-info",
    ],
)
def test_fail_on_sets_the_exit_status(
    pg_dsn: str, problems: list[Any], fail_on: str | None, status: int
) -> None:
    clean_schema(pg_dsn)
    for problem in problems:
        problem(pg_dsn)
    args = ["--dsn", pg_dsn] + (["--fail-on", fail_on] if fail_on else [])
    result = invoke(*args)
    assert result.exit_code == status, result.output
    if status:
        assert "check(s) at or above" in result.stderr


def test_the_table_for_a_person_shows_findings_and_printed_statements(pg_dsn: str) -> None:
    clean_schema(pg_dsn)
    with_duplicate(pg_dsn)
    with_sequence_near_its_end(pg_dsn)
    result = CliRunner().invoke(
        __import__("dbsight.cli", fromlist=["app"]).app,
        ["check", "--dsn", pg_dsn],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Duplicate indexes" in out and "Sequences near their limit" in out
    assert out.count("FAILED") == 2
    assert "DROP INDEX CONCURRENTLY public.orders_customer;" in out
    assert "ALTER TABLE public.tickets ALTER COLUMN id TYPE bigint;" in out
    assert "public.tickets.id" in out and "covered by: orders_customer_total" in out


def test_the_table_shows_a_blocker_by_its_pid(pg_dsn: str) -> None:
    clean_schema(pg_dsn)
    blocker = psycopg.connect(pg_dsn)
    waiter = psycopg.connect(pg_dsn, autocommit=True)
    try:
        blocker.execute("UPDATE orders SET total = 0 WHERE id = 1")
        waiter.execute("SET lock_timeout = '3s'")
        thread = threading.Thread(
            target=lambda: waiter.execute("UPDATE orders SET total = 1 WHERE id = 1"), daemon=True
        )
        thread.start()
        time.sleep(0.5)
        result = CliRunner().invoke(
            __import__("dbsight.cli", fromlist=["app"]).app,
            ["check", "--dsn", pg_dsn, "--blocked-s", "0.2", "--fail-on", "warning"],
            env={"COLUMNS": "200"},
        )
        assert result.exit_code == 1, result.output
        assert f"blocked by pid {blocker.info.backend_pid}: " in result.stdout
        assert f"SELECT pg_terminate_backend({blocker.info.backend_pid});" in result.stdout
    finally:
        blocker.rollback()
        thread.join(5)
        blocker.close()
        waiter.close()


def test_an_unreachable_database_is_one_line_and_status_1() -> None:
    result = invoke("--dsn", "postgresql://nobody:pw@127.0.0.1:1/shop")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "dbsight check: cannot connect to postgresql://nobody@127.0.0.1:1/shop:"
    )
    assert "pw" not in result.stderr.replace("postgresql", "")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--dsn", "not a dsn"],
        ["--dsn", "postgresql://x@127.0.0.1/db", "--fail-on", "loud"],
        ["--dsn", "postgresql://x@127.0.0.1/db", "--replica", "nope nope"],
        ["--dsn", "postgresql://x@127.0.0.1/db", "--long-query-s", "-1"],
        [],
    ],
)
def test_bad_usage_is_status_2(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_a_check_whose_query_is_refused_is_an_error_and_the_others_run(
    pg_dsn: str, pg_admin_dsn: str
) -> None:
    role = f"dbsight_checker_{uuid.uuid4().hex[:8]}"
    clean_schema(pg_dsn)
    with connect(pg_admin_dsn) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        with connect(pg_dsn) as conn:  # in this database only
            conn.execute("REVOKE SELECT ON pg_catalog.pg_statio_user_tables FROM PUBLIC")
        dsn = psycopg.conninfo.make_conninfo(pg_dsn, user=role, password=None)
        report = run_checks(dsn)
        refused = report.result("cache_hit_ratio")
        assert refused.status == "error"
        assert refused.summary == "permission denied for view pg_statio_user_tables"
        assert [c.name for c in report.errors()] == ["cache_hit_ratio"]
        assert all(c.status == "ok" for c in report.checks if c.name != "cache_hit_ratio")
        # an error is not a finding: --fail-on does not count it
        result = invoke("--dsn", dsn, "--fail-on", "warning")
        assert result.exit_code == 0, result.output
    finally:
        with connect(pg_admin_dsn) as admin:
            admin.execute(f"DROP ROLE {role}")


def test_the_checks_only_read(pg_dsn: str) -> None:
    session = check_connect(pg_dsn, timeout_s=5)
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), session.transaction():
            session.rows("CREATE TABLE written_by_a_check (id int)")
        with session.transaction():
            assert session.value("SHOW transaction_read_only") == "on"
            assert session.value("SHOW statement_timeout") == "5s"
    finally:
        session.close()


def test_a_lock_held_elsewhere_makes_an_error_after_the_timeout_not_a_hang(pg_dsn: str) -> None:
    clean_schema(pg_dsn)
    with psycopg.connect(pg_dsn) as ddl:  # a migration half done: the index is locked
        ddl.execute("DROP INDEX orders_customer")
        started = time.monotonic()
        report = run_checks(pg_dsn, timeout_s=0.5, only=["duplicate_indexes", "sequences"])
        elapsed = time.monotonic() - started
        ddl.rollback()
    locked = report.result("duplicate_indexes")
    assert locked.status == "error" and "timeout" in locked.summary  # lock or statement
    assert report.result("sequences").status == "ok"
    assert elapsed < 5
    assert run(pg_dsn).failed("info") == []
