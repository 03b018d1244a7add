"""The same statements on SQLite (no server): record, lists, a report and a purge, so the
definitions stay portable beyond PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dbsight import audit


def test_sqlite_round_trip() -> None:
    engine = sa.create_engine("sqlite://")
    audit.create_audit_table(engine)
    old = datetime.now(UTC) - timedelta(days=100)
    with Session(engine) as session:
        audit.record(session, actor="a", operation="create", entity_type="x", entity_id=1,
                     details={"secret": "s"})  # fmt: skip
        session.connection().execute(sa.insert(audit.audit_log).values(**audit.audit_row(
            actor="b", operation="delete", entity_type="x", result="failure", error="E",
            occurred_at=old)))  # fmt: skip
        session.commit()
    builder = audit.AuditLogQueryBuilder(engine)
    [newest, oldest] = builder.recent_operations()
    assert (newest.actor, newest.details) == ("a", {"secret": audit.REDACTED})
    assert oldest.occurred_at == old
    assert builder.failed_operations(hours=24) == []
    today = datetime.now(UTC).date()
    report = builder.compliance_report(old.date(), today)
    assert (report.total, report.failures, len(report.per_day)) == (2, 1, 101)
    assert report.per_day[0].failures == 1 and report.per_day[-1].total == 1
    assert audit.purge(engine, 90) == 1
    engine.dispose()
