"""Helpers for the database-check tests: each test builds the problem it checks for in the
fresh database ``pg_dsn`` gives it, makes the server's statistics current, and runs the
checks against it."""

from __future__ import annotations

from typing import Any

import psycopg

from dbsight.check import CheckReport, CheckResult, CheckThresholds, run_checks


def connect(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


def flush_stats(conn: psycopg.Connection[Any]) -> None:
    """Publish this session's pending statistics now (a backend otherwise flushes them at
    most once a second, and an idle one only after ten)."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT 1")


def check(dsn: str, name: str, **thresholds: Any) -> CheckResult:
    report = run_checks(dsn, thresholds=CheckThresholds(**thresholds), only=[name])
    return report.result(name)


def run(dsn: str, **thresholds: Any) -> CheckReport:
    return run_checks(dsn, thresholds=CheckThresholds(**thresholds))


def objects(result: CheckResult) -> list[str]:
    return [finding.object for finding in result.findings]
