"""audited()/aaudited(): success is recorded in the caller's transaction, failure in one of
its own (the caller's rolls back), and the block's exception is never replaced."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from dbsight import audit

_items = sa.Table(
    "audited_items", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)),
)  # fmt: skip


@pytest.fixture
def items(engine: sa.Engine) -> sa.Table:
    _items.create(engine)
    yield _items
    _items.drop(engine)


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_success_is_recorded_with_the_change(engine: sa.Engine, items: sa.Table,
                                             audit_rows: Any) -> None:  # fmt: skip
    with Session(engine) as session:
        with audit.audited(session, actor="alice", operation="create",
                           entity_type="item") as entry:  # fmt: skip
            session.execute(sa.insert(items).values(id=1, name="one"))
            entry.entity_id = 1
            entry.details["name"] = "one"
        assert audit_rows(engine) == []  # not committed yet: the caller commits
        session.commit()
    [row] = audit_rows(engine)
    assert (row["entity_id"], row["result"], row["details"]) == ("1", "success", {"name": "one"})
    assert _count(engine, items) == 1


def test_a_success_rolled_back_by_the_caller_leaves_nothing(engine: sa.Engine, items: sa.Table,
                                                            audit_rows: Any) -> None:  # fmt: skip
    with Session(engine) as session:
        with audit.audited(session, actor="alice", operation="create", entity_type="item"):
            session.execute(sa.insert(items).values(id=1, name="one"))
        session.rollback()
    assert audit_rows(engine) == [] and _count(engine, items) == 0


def test_failure_is_recorded_in_its_own_transaction(engine: sa.Engine, items: sa.Table,
                                                    audit_rows: Any) -> None:  # fmt: skip
    with Session(engine) as session:
        session.execute(sa.insert(items).values(id=1, name="one"))
        session.commit()
        with pytest.raises(sa.exc.IntegrityError):
            with audit.audited(session, actor="bob", operation="create", entity_type="item",
                               entity_id=1, details={"token": "abc"}):  # fmt: skip
                session.execute(sa.insert(items).values(id=1, name="secret literal"))
        session.rollback()  # the caller's change is gone; the failure record stays
    [row] = audit_rows(engine)
    assert (row["actor"], row["result"], row["entity_id"]) == ("bob", "failure", "1")
    assert row["details"] == {"token": audit.REDACTED}
    assert row["error"] in (
        '23505 UniqueViolation: duplicate key value violates unique constraint '
        '"audited_items_pkey"',
        "23000 IntegrityError: Duplicate entry '?' for key '?'",
    )
    assert "secret literal" not in row["error"] and "'1'" not in row["error"]
    assert _count(engine, items) == 1


def test_commit_true_owns_the_transaction(engine: sa.Engine, items: sa.Table,
                                          audit_rows: Any) -> None:  # fmt: skip
    with Session(engine) as session:
        with audit.audited(session, actor="carol", operation="rename", entity_type="item",
                           commit=True):  # fmt: skip
            session.execute(sa.insert(items).values(id=2, name="two"))
        with pytest.raises(ValueError, match="refused"):
            with audit.audited(session, actor="carol", operation="delete", entity_type="item",
                               entity_id=2, commit=True):  # fmt: skip
                session.execute(sa.delete(items).where(items.c.id == 2))
                raise ValueError("refused by a rule")
    assert [(r["operation"], r["result"]) for r in audit_rows(engine)] == [
        ("rename", "success"), ("delete", "failure")]
    assert _count(engine, items) == 1  # the delete was rolled back
    assert audit_rows(engine)[1]["error"] == "ValueError: refused by a rule"


def test_an_unwritable_failure_record_keeps_the_applications_error(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    missing = audit.add_audit_table(sa.MetaData(), "no_such_audit_table")
    with Session(engine) as session, caplog.at_level(logging.WARNING, "dbsight.audit"):
        with pytest.raises(KeyError, match="the application's"):
            with audit.audited(session, actor="dan", operation="update", entity_type="item",
                               table=missing):  # fmt: skip
                raise KeyError("the application's")
    assert "could not be recorded" in caplog.text


async def test_async_success_and_failure(async_engine: AsyncEngine) -> None:
    async with AsyncSession(async_engine) as session:
        async with audit.aaudited(session, actor="erin", operation="create",
                                  entity_type="tenant", entity_id="t1", commit=True):  # fmt: skip
            pass
        with pytest.raises(RuntimeError):
            async with audit.aaudited(session, actor="erin", operation="delete",
                                      entity_type="tenant", entity_id="t1"):  # fmt: skip
                raise RuntimeError("quota")
        await session.rollback()
    records = await audit.AsyncAuditLogQueryBuilder(async_engine).by_entity("tenant", "t1")
    assert [(r.operation, r.result, r.error) for r in records] == [
        ("delete", "failure", "RuntimeError: quota"), ("create", "success", None)]
