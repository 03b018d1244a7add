"""``dbsight audit``: init, the lists and the report as tables and --json, purge's count,
question and --yes, and the errors a user meets (no server, no table, a bad URL), on
PostgreSQL and MariaDB with plain postgresql:// and mysql:// URLs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from dbsight import audit
from dbsight.cli import app

runner = CliRunner()


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["audit", *args], input=input,
                         env={"COLUMNS": "250", **(env or {})})  # fmt: skip


def _row(when: datetime, actor: str, operation: str, kind: str, ident: str,
         error: str | None = None) -> dict[str, Any]:  # fmt: skip
    return audit.audit_row(actor=actor, operation=operation, entity_type=kind, entity_id=ident,
                           result="failure" if error else "success", error=error,
                           occurred_at=when)  # fmt: skip


@pytest.fixture
def filled(engine: sa.Engine) -> sa.Engine:
    now = datetime.now(UTC)
    day = datetime(2026, 3, 1, 12, tzinfo=UTC)
    rows = [
        _row(day, "alice", "create", "user", "u1"),
        _row(day + timedelta(days=2), "bob", "delete", "order", "o1", "23503 ForeignKeyViolation"),
        _row(now - timedelta(days=200), "old", "update", "user", "u0"),
        _row(now - timedelta(minutes=5), "carol", "update", "user", "u1", "quota [exceeded]"),
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(audit.audit_log), rows)
    return engine


def test_init_creates_the_table_once(database_dsn: str) -> None:
    first = run("init", "--dsn", database_dsn)
    assert first.exit_code == 0, first.output
    assert "dbsight_audit_log created in" in first.output
    second = run("init", "--dsn", database_dsn)
    assert "exists already" in second.output
    assert run("recent", "--dsn", database_dsn).output.strip() == "no audit records"


def test_lists_as_json_and_tables(database_dsn: str, filled: sa.Engine) -> None:
    result = run("recent", "--dsn", database_dsn, "--json", "--limit", "2")
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [r["actor"] for r in records] == ["carol", "old"]
    assert records[0]["result"] == "failure" and records[0]["occurred_at"].endswith("+00:00")

    table = run("recent", "--dsn", database_dsn).output
    assert "time (UTC)" in table and "user:u1" in table and "quota [exceeded]" in table

    by_user = json.loads(run("user", "alice", "--dsn", database_dsn, "--json").output)
    assert [(r["operation"], r["entity_id"]) for r in by_user] == [("create", "u1")]
    since = run("user", "alice", "--since", "2026-03-02", "--dsn", database_dsn, "--json")
    assert json.loads(since.output) == []

    entity = json.loads(run("entity", "user", "u1", "--dsn", database_dsn, "--json").output)
    assert [r["actor"] for r in entity] == ["carol", "alice"]
    every_user = json.loads(run("entity", "user", "--dsn", database_dsn, "--json").output)
    assert len(every_user) == 3

    failed = json.loads(run("failed", "--dsn", database_dsn, "--hours", "1", "--json").output)
    assert [r["actor"] for r in failed] == ["carol"]


def test_report(database_dsn: str, filled: sa.Engine) -> None:
    args = ("report", "--dsn", database_dsn, "--start", "2026-03-01", "--end", "2026-03-03")
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["total"], report["failures"], report["failure_rate"]) == (2, 1, 0.5)
    assert [(d["key"], d["total"]) for d in report["per_day"]] == [
        ("2026-03-01", 1), ("2026-03-02", 0), ("2026-03-03", 1)]
    assert report["top_errors"] == [{"error": "23503 ForeignKeyViolation", "count": 1}]

    text = run(*args).output
    assert ("Audit log 2026-03-01 to 2026-03-03 (UTC): 2 operations, 1 failed (50.0%), "
            "2 actors") in text
    assert "2026-03-03" in text and "2026-03-02" not in text and "1 day without records" in text
    assert "23503 ForeignKeyViolation" in text

    default = json.loads(run("report", "--dsn", database_dsn, "--json").output)
    assert len(default["per_day"]) == 30 and default["total"] == 1  # carol, 5 minutes ago

    backwards = run("report", "--dsn", database_dsn, "--start", "2026-03-03", "--end", "2026-03-01")
    assert backwards.exit_code == 2 and "before --start" in backwards.output


def test_purge(database_dsn: str, filled: sa.Engine) -> None:
    dry = run("purge", "--dsn", database_dsn, "--dry-run")
    assert dry.exit_code == 0
    assert "3 audit records older than 90 days would be deleted" in dry.output
    refused = run("purge", "--dsn", database_dsn, input="n\n")
    assert refused.exit_code == 1 and "nothing deleted" in refused.output
    assert len(audit.AuditLogQueryBuilder(filled).recent_operations()) == 4
    asked = run("purge", "--dsn", database_dsn, "--older-than-days", "300", input="y\n")
    assert "0 audit records older than 300 days to delete" in asked.output
    done = run("purge", "--dsn", database_dsn, "--yes", "--json", "--batch-size", "2")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["deleted"] == 3
    assert [r.actor for r in audit.AuditLogQueryBuilder(filled).recent_operations()] == ["carol"]
    by_setting = run("purge", "--dsn", database_dsn, "--dry-run", "--json",
                     env={"DBSIGHT_AUDIT_RETENTION_DAYS": "1"})  # fmt: skip
    assert json.loads(by_setting.output)["older_than_days"] == 1


def test_dsn_from_the_environment_and_async_urls(pg_dsn: str) -> None:
    async_url = "postgresql+asyncpg://" + pg_dsn.split("://", 1)[1]
    assert run("init", env={"DBSIGHT_AUDIT_DSN": async_url}).exit_code == 0
    assert run("recent", env={"DBSIGHT_AUDIT_DSN": pg_dsn}).exit_code == 0


def test_a_missing_table_says_how_to_create_it(database_dsn: str) -> None:
    result = run("failed", "--dsn", database_dsn)
    assert result.exit_code == 1
    assert "no audit table 'dbsight_audit_log'" in result.output
    assert "dbsight audit init --dsn URL" in result.output


def test_unreachable_database_and_bad_urls() -> None:
    down = run("recent", "--dsn", "postgresql://app:pw@127.0.0.1:1/app")
    assert down.exit_code == 1
    assert "cannot connect to postgresql+psycopg://app:***@127.0.0.1:1/app" in down.output
    assert "pw@" not in down.output
    mysql_down = run("recent", "--dsn", "mysql://root@127.0.0.1:1/app")
    assert mysql_down.exit_code == 1
    assert "cannot connect to mysql+pymysql://root@127.0.0.1:1/app: Can't connect" in (
        mysql_down.output)
    assert run("recent", "--dsn", "not a url").exit_code == 2
    assert run("recent", "--dsn", "nosuchdb://h/x").exit_code == 2


def test_the_dsn_variable_is_not_taken_for_a_misspelt_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from dbsight.core import Settings

    monkeypatch.setenv("DBSIGHT_AUDIT_DSN", "postgresql://app@127.0.0.1/app")
    with caplog.at_level(logging.WARNING, logger="dbsight"):
        Settings()
    assert "DBSIGHT_AUDIT_DSN" not in caplog.text


def test_another_table_name(pg_dsn: str) -> None:
    assert run("init", "--dsn", pg_dsn, "--table", "billing_audit").exit_code == 0
    engine = sa.create_engine("postgresql+psycopg://" + pg_dsn.split("://", 1)[1])
    table = audit.add_audit_table(sa.MetaData(), "billing_audit")
    try:
        audit.record_now(engine, actor="alice", operation="refund", entity_type="invoice",
                         table=table)  # fmt: skip
    finally:
        engine.dispose()
    listed = run("recent", "--dsn", pg_dsn, "--table", "billing_audit", "--json")
    assert [r["operation"] for r in json.loads(listed.output)] == ["refund"]
    assert run("recent", "--dsn", pg_dsn).exit_code == 1  # dbsight_audit_log: not created
