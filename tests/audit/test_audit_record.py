"""record()/arecord(): the record shares the caller's transaction (commit keeps it, rollback
drops it), on PostgreSQL and MariaDB, through Session, Connection, AsyncSession and
AsyncConnection; what is stored, and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from dbsight import audit
from dbsight.core import request_scope


def test_session_commit_keeps_the_record(engine: sa.Engine, audit_rows: Any) -> None:
    before = datetime.now(UTC)
    with Session(engine) as session:
        audit.record(session, actor="alice", operation="create", entity_type="user",
                     entity_id=42, details={"email": "a@example.com", "password": "hunter22"})
        session.commit()
    [row] = audit_rows(engine)
    assert (row["actor"], row["operation"], row["entity_type"], row["entity_id"]) == (
        "alice", "create", "user", "42")
    assert row["result"] == "success" and row["error"] is None
    assert row["details"] == {"email": "a@example.com", "password": audit.REDACTED}
    assert row["occurred_at"].tzinfo is not None
    assert before - timedelta(seconds=1) <= row["occurred_at"] <= datetime.now(UTC)


def test_session_rollback_drops_the_record(engine: sa.Engine, audit_rows: Any) -> None:
    with Session(engine) as session:
        audit.record(session, actor="alice", operation="delete", entity_type="user", entity_id=1)
        session.rollback()
    assert audit_rows(engine) == []


def test_connection_in_a_transaction(engine: sa.Engine, audit_rows: Any) -> None:
    with pytest.raises(RuntimeError), engine.begin() as connection:
        audit.record(connection, actor="bob", operation="update", entity_type="order")
        raise RuntimeError("the change fails after the record was written")
    assert audit_rows(engine) == []
    with engine.begin() as connection:
        audit.record(connection, actor="bob", operation="update", entity_type="order")
    assert [row["actor"] for row in audit_rows(engine)] == ["bob"]


def test_the_record_commits_with_the_change_it_describes(engine: sa.Engine,
                                                         audit_rows: Any) -> None:  # fmt: skip
    items = sa.Table("items", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    items.create(engine)
    with Session(engine) as session:
        session.execute(sa.insert(items).values(id=7))
        audit.record(session, actor="carol", operation="create", entity_type="item", entity_id=7)
        session.rollback()
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(items)).scalar() == 0
    assert audit_rows(engine) == []
    items.drop(engine)


async def test_async_session_commit_and_rollback(async_engine: AsyncEngine) -> None:
    async with AsyncSession(async_engine) as session:
        await audit.arecord(session, actor="dora", operation="create", entity_type="tenant",
                            entity_id="t-1", details={"api_key": "k" * 20, "plan": "pro"})
        await session.commit()
    async with AsyncSession(async_engine) as session:
        await audit.arecord(session, actor="dora", operation="delete", entity_type="tenant",
                            entity_id="t-1")
        await session.rollback()
    records = await audit.AsyncAuditLogQueryBuilder(async_engine).recent_operations()
    assert [(r.operation, r.details) for r in records] == [
        ("create", {"api_key": audit.REDACTED, "plan": "pro"})
    ]


async def test_async_connection_and_record_now(async_engine: AsyncEngine) -> None:
    async with async_engine.connect() as connection:
        await audit.arecord(connection, actor="erin", operation="update", entity_type="user")
        await connection.rollback()
    await audit.arecord_now(async_engine, actor="erin", operation="login", entity_type="session",
                            result="failure", error="bad credentials")
    records = await audit.AsyncAuditLogQueryBuilder(async_engine).recent_operations()
    assert [(r.operation, r.result, r.error) for r in records] == [
        ("login", "failure", "bad credentials")
    ]


def test_the_request_context_is_stored(engine: sa.Engine, audit_rows: Any) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    with request_scope("req-1", route="/users/{id}", app="accounts", trace_id=trace_id):
        audit.record_now(engine, actor="fay", operation="update", entity_type="user")
    [row] = audit_rows(engine)
    assert (row["trace_id"], row["request_id"], row["route"], row["app"]) == (
        trace_id, "req-1", "/users/{id}", "accounts")


def test_outside_a_request_the_opentelemetry_span_gives_the_trace(
    engine: sa.Engine, audit_rows: Any
) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("job") as span:
        audit.record_now(engine, actor="cron", operation="purge", entity_type="session")
        expected = format(span.get_span_context().trace_id, "032x")
    audit.record_now(engine, actor="cron", operation="purge", entity_type="session")
    first, second = audit_rows(engine)
    assert first["trace_id"] == expected and second["trace_id"] is None
    assert first["request_id"] is None


def test_a_database_error_is_stored_without_its_values(engine: sa.Engine,
                                                       audit_rows: Any) -> None:  # fmt: skip
    users = sa.Table("users", sa.MetaData(), sa.Column("email", sa.String(100), unique=True))
    users.create(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(users).values(email="bob@example.com"))
    try:
        with engine.begin() as connection:
            connection.execute(sa.insert(users).values(email="bob@example.com"))
    except sa.exc.IntegrityError as exc:
        audit.record_now(engine, actor="admin", operation="create", entity_type="user",
                         result="failure", error=exc)
    [row] = audit_rows(engine)
    assert "IntegrityError" in row["error"] or "UniqueViolation" in row["error"]
    assert "bob@example.com" not in row["error"]
    users.drop(engine)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"actor": "", "operation": "create"}, "actor must not be empty"),
        ({"actor": "a", "operation": " "}, "operation must not be empty"),
        ({"actor": "a", "operation": "create", "result": "ok"}, "result must be one of"),
        ({"actor": "a" * 201, "operation": "create"}, "at most 200"),
        ({"actor": "a", "operation": "create", "details": ["x"]}, "must be a mapping"),
    ],
)
def test_bad_arguments_write_nothing(engine: sa.Engine, audit_rows: Any,
                                     fields: dict[str, Any], message: str) -> None:  # fmt: skip
    with pytest.raises((ValueError, TypeError), match=message), Session(engine) as session:
        audit.record(session, entity_type="user", **fields)
    assert audit_rows(engine) == []


def test_an_engine_is_refused_with_the_reason(engine: sa.Engine) -> None:
    with pytest.raises(TypeError, match="caller's transaction"):
        audit.record(engine, actor="a", operation="create",  # type: ignore[arg-type]
                     entity_type="user")
