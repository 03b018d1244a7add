"""purge(): records older than the retention are deleted in batches, newer ones kept; the
default comes from the audit_retention_days setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dbsight import audit
from dbsight.core import ConfigError, Settings


def _aged(days: list[float]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        audit.audit_row(actor=f"a{i}", operation="update", entity_type="user",
                        occurred_at=now - timedelta(days=age))
        for i, age in enumerate(days)
    ]  # fmt: skip


def test_purge_in_batches(engine: sa.Engine, audit_rows: Any) -> None:
    ages = [200, 120, 100, 91, 91, 89, 10, 0]
    with engine.begin() as connection:
        connection.execute(sa.insert(audit.audit_log), _aged(ages))
    assert audit.count_purgeable(engine, 90) == 5
    assert audit.purge(engine, 90, batch_size=2) == 5
    assert sorted(row["actor"] for row in audit_rows(engine)) == ["a5", "a6", "a7"]
    assert audit.purge(engine, 90, batch_size=2) == 0
    assert audit.purge(engine, 5) == 2
    assert [row["actor"] for row in audit_rows(engine)] == ["a7"]


def test_the_default_is_the_setting(engine: sa.Engine, fresh_runtime: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.insert(audit.audit_log), _aged([100, 40, 1]))
    monkeypatch.setenv("DBSIGHT_AUDIT_RETENTION_DAYS", "30")  # read without configure()
    assert audit.retention_days() == 30 and audit.count_purgeable(engine) == 2
    fresh_runtime.configure(Settings(audit_retention_days=60))  # the configured one wins
    assert audit.retention_days() == 60
    assert audit.purge(engine) == 1
    fresh_runtime.reset()
    monkeypatch.delenv("DBSIGHT_AUDIT_RETENTION_DAYS")
    assert audit.retention_days() == 90


def test_the_setting_is_validated() -> None:
    assert Settings().audit_retention_days == 90
    with pytest.raises(ConfigError, match="audit_retention_days"):
        Settings(audit_retention_days=0)


def test_bad_arguments(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        audit.purge(engine, 0)
    with pytest.raises(ValueError, match="batch_size"):
        audit.purge(engine, 1, batch_size=0)


async def test_async_purge(async_engine: AsyncEngine) -> None:
    async with async_engine.begin() as connection:
        await connection.execute(sa.insert(audit.audit_log), _aged([3, 2, 0.5, 0]))
    assert await audit.apurge(async_engine, 1, batch_size=1) == 2
    assert len(await audit.AsyncAuditLogQueryBuilder(async_engine).recent_operations()) == 2
