"""AuditLogQueryBuilder and its async twin on PostgreSQL and MariaDB: the lists, their
order and filters, and a compliance report's numbers over known records (day boundaries,
a day without records, a session time zone that is not UTC)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dbsight import audit


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (time, actor, operation, entity type, entity id, error or None for success)
RECORDS = [
    ("2026-02-28T23:59:59.999999", "alice", "create", "user", "u0", None),  # before the period
    ("2026-03-01T00:00:00", "alice", "create", "user", "u1", None),
    ("2026-03-01T10:00:00", "alice", "update", "user", "u1", None),
    ("2026-03-01T23:59:59.999999", "bob", "delete", "order", "o1", "E1"),
    ("2026-03-03T12:00:00", "bob", "create", "order", "o2", None),
    ("2026-03-03T12:00:00", "carol", "update", "user", "u1", "E1"),
    ("2026-03-03T13:00:00", "carol", "update", "user", "u2", "E2"),
    ("2026-03-04T00:00:00", "bob", "update", "order", "o2", None),  # after the period
]


def _rows(records: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [
        audit.audit_row(actor=actor, operation=operation, entity_type=kind, entity_id=ident,
                        result="failure" if error else "success", error=error,
                        occurred_at=when if isinstance(when, datetime) else _at(when))
        for when, actor, operation, kind, ident, error in records
    ]  # fmt: skip


@pytest.fixture
def filled(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as connection:
        connection.execute(sa.insert(audit.audit_log), _rows(RECORDS))
    return engine


def _keys(records: list[audit.AuditRecord]) -> list[tuple[str, str, str | None]]:
    return [(r.actor, r.operation, r.entity_id) for r in records]


def test_lists(filled: sa.Engine) -> None:
    builder = audit.AuditLogQueryBuilder(filled)
    assert _keys(builder.recent_operations(limit=2)) == [
        ("bob", "update", "o2"), ("carol", "update", "u2")]
    assert _keys(builder.by_user("carol")) == [("carol", "update", "u2"), ("carol", "update", "u1")]
    assert _keys(builder.by_user("alice", since=_at("2026-03-01T05:00:00"))) == [
        ("alice", "update", "u1")]
    assert _keys(builder.by_entity("user", "u1")) == [
        ("carol", "update", "u1"), ("alice", "update", "u1"), ("alice", "create", "u1")]
    assert [r.entity_id for r in builder.by_entity("order")] == ["o2", "o2", "o1"]
    assert builder.by_user("nobody") == []
    first = builder.recent_operations(limit=1)[0]
    assert first.occurred_at == _at("2026-03-04T00:00:00")
    assert json.loads(json.dumps(first.to_dict()))["occurred_at"] == "2026-03-04T00:00:00+00:00"


def test_failed_operations_of_the_last_hours(engine: sa.Engine) -> None:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(sa.insert(audit.audit_log), _rows([
            (now - timedelta(hours=2), "a", "update", "user", "1", "old failure"),
            (now - timedelta(minutes=30), "b", "update", "user", "2", "recent failure"),
            (now - timedelta(minutes=10), "c", "update", "user", "3", None),
        ]))  # fmt: skip
    builder = audit.AuditLogQueryBuilder(engine)
    assert [r.error for r in builder.failed_operations(hours=1)] == ["recent failure"]
    assert [r.error for r in builder.failed_operations(hours=3)] == [
        "recent failure", "old failure"]
    with pytest.raises(ValueError, match="hours"):
        builder.failed_operations(hours=0)


def _check_report(report: audit.ComplianceReport) -> None:
    assert (report.start, report.end) == (date(2026, 3, 1), date(2026, 3, 3))
    assert (report.total, report.successes, report.failures, report.actors) == (6, 3, 3, 3)
    assert report.failure_rate == 0.5
    counts = lambda cs: [(c.key, c.total, c.failures) for c in cs]  # noqa: E731
    assert counts(report.by_operation) == [("update", 3, 2), ("create", 2, 0), ("delete", 1, 1)]
    assert counts(report.by_entity_type) == [("user", 4, 2), ("order", 2, 1)]
    assert counts(report.top_actors) == [("alice", 2, 0), ("bob", 2, 1)]
    assert counts(report.per_day) == [
        ("2026-03-01", 3, 1), ("2026-03-02", 0, 0), ("2026-03-03", 3, 2)]
    assert [(e.error, e.count) for e in report.top_errors] == [("E1", 2), ("E2", 1)]
    document = json.loads(report.to_json())
    assert document["period"] == {"start": "2026-03-01", "end": "2026-03-03"}
    assert document["failure_rate"] == 0.5
    assert document["by_operation"][0] == {
        "key": "update", "total": 3, "failures": 2, "failure_rate": 0.666667}


def test_compliance_report(filled: sa.Engine) -> None:
    builder = audit.AuditLogQueryBuilder(filled)
    _check_report(builder.compliance_report(date(2026, 3, 1), date(2026, 3, 3), top=2))
    empty = builder.compliance_report(date(2020, 1, 1), date(2020, 1, 1))
    assert (empty.total, empty.failure_rate, empty.actors) == (0, 0.0, 0)
    assert [(c.key, c.total) for c in empty.per_day] == [("2020-01-01", 0)]
    with pytest.raises(ValueError, match="before its start"):
        builder.compliance_report(date(2026, 3, 3), date(2026, 3, 1))


def test_days_are_utc_days_whatever_the_session_time_zone(pg_dsn: str) -> None:
    url = "postgresql+psycopg://" + pg_dsn.split("://", 1)[1]
    engine = sa.create_engine(url, connect_args={"options": "-c timezone=Pacific/Kiritimati"})
    try:
        audit.create_audit_table(engine)
        with engine.begin() as connection:
            connection.execute(sa.insert(audit.audit_log), _rows(RECORDS))
        builder = audit.AuditLogQueryBuilder(engine)
        _check_report(builder.compliance_report(date(2026, 3, 1), date(2026, 3, 3), top=2))
        assert builder.by_user("alice")[-1].occurred_at == _at("2026-02-28T23:59:59.999999")
    finally:
        engine.dispose()


def test_on_an_open_connection(filled: sa.Engine) -> None:
    with filled.connect() as connection:
        builder = audit.AuditLogQueryBuilder(connection)
        assert len(builder.recent_operations()) == len(RECORDS)
        _check_report(builder.compliance_report(date(2026, 3, 1), date(2026, 3, 3), top=2))


async def test_async_builder(async_engine: AsyncEngine) -> None:
    async with async_engine.begin() as connection:
        await connection.execute(sa.insert(audit.audit_log), _rows(RECORDS))
    builder = audit.AsyncAuditLogQueryBuilder(async_engine)
    assert _keys(await builder.recent_operations(limit=1)) == [("bob", "update", "o2")]
    assert len(await builder.by_user("bob")) == 3
    assert len(await builder.by_entity("user", "u1")) == 3
    assert await builder.failed_operations(hours=1) == []
    _check_report(await builder.compliance_report(date(2026, 3, 1), date(2026, 3, 3), top=2))
    async with async_engine.connect() as connection:
        on_connection = audit.AsyncAuditLogQueryBuilder(connection)
        assert len(await on_connection.recent_operations()) == len(RECORDS)


def test_bad_limits(engine: sa.Engine) -> None:
    builder = audit.AuditLogQueryBuilder(engine)
    with pytest.raises(ValueError, match="limit"):
        builder.recent_operations(limit=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        builder.by_user("a", since=datetime(2026, 1, 1))
