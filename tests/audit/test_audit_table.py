"""The audit table: created with its indexes on PostgreSQL and MariaDB, JSON typed, part of
an application's MetaData (SQLModel's), and created by an Alembic migration exactly as
autogenerate would see the definition."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.orm import Session

from dbsight import audit


def _indexes(engine: sa.Engine, name: str) -> dict[str, list[str]]:
    with engine.connect() as connection:
        return {ix["name"]: ix["column_names"] for ix in sa.inspect(connection).get_indexes(name)}


def test_created_with_the_query_builders_indexes(engine: sa.Engine) -> None:
    audit.create_audit_table(engine)  # a second time: nothing happens
    assert _indexes(engine, "dbsight_audit_log") == {
        "ix_dbsight_audit_log_occurred_at": ["occurred_at"],
        "ix_dbsight_audit_log_actor": ["actor", "occurred_at"],
        "ix_dbsight_audit_log_entity": ["entity_type", "entity_id", "occurred_at"],
        "ix_dbsight_audit_log_result": ["result", "occurred_at"],
    }


def test_details_is_json(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            kind = connection.execute(sa.text(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'dbsight_audit_log' AND column_name = 'details'"
            )).scalar_one()  # fmt: skip
            assert kind == "jsonb"
        with pytest.raises(sa.exc.DBAPIError):  # the server checks it is JSON
            connection.execute(sa.text(
                "INSERT INTO dbsight_audit_log (occurred_at, actor, operation, entity_type, "
                "result, details) VALUES (CURRENT_TIMESTAMP, 'a', 'b', 'c', 'success', '{no')"
            ))  # fmt: skip


def test_part_of_an_applications_metadata(database_dsn: str, engine: sa.Engine) -> None:
    from sqlalchemy.orm import registry
    from sqlmodel import Field, SQLModel

    metadata = sa.MetaData()  # a SQLModel app's own (SQLModel.metadata is process-wide)

    class Base(SQLModel, registry=registry(metadata=metadata)):  # type: ignore[call-arg]
        pass

    class Widget(Base, table=True):  # type: ignore[call-arg]
        __tablename__ = "audit_test_widgets"
        id: int | None = Field(default=None, primary_key=True)

    table = audit.add_audit_table(metadata, "app_audit_log")
    assert audit.add_audit_table(metadata, "app_audit_log") is table
    metadata.create_all(engine)
    try:
        with Session(engine) as session:
            session.add(Widget(id=1))
            session.flush()
            audit.record(session, actor="alice", operation="create", entity_type="widget",
                         entity_id=1, table=table)  # fmt: skip
            session.commit()
        records = audit.AuditLogQueryBuilder(engine, table).by_entity("widget", 1)
        assert [(r.actor, r.entity_id) for r in records] == [("alice", "1")]
        assert "ix_app_audit_log_entity" in _indexes(engine, "app_audit_log")
    finally:
        metadata.drop_all(engine)


def _diffs(connection: sa.Connection, metadata: sa.MetaData) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, metadata)


def test_alembic_migration_matches_the_definition(engine: sa.Engine) -> None:
    audit.drop_audit_table(engine)  # the database then holds the migrated table alone
    metadata = sa.MetaData()
    audit.add_audit_table(metadata, "migrated_audit_log")
    with engine.begin() as connection:
        op = Operations(MigrationContext.configure(connection))
        audit.migration_upgrade(op, "migrated_audit_log")
    with engine.connect() as connection:
        assert _diffs(connection, metadata) == []
    assert len(_indexes(engine, "migrated_audit_log")) == 4
    with engine.begin() as connection:
        audit.migration_downgrade(Operations(MigrationContext.configure(connection)),
                                  "migrated_audit_log")  # fmt: skip
    with engine.connect() as connection:
        assert not sa.inspect(connection).has_table("migrated_audit_log")


def test_drop(engine: sa.Engine) -> None:
    audit.drop_audit_table(engine)
    with engine.connect() as connection:
        assert not sa.inspect(connection).has_table("dbsight_audit_log")
    audit.drop_audit_table(engine)  # gone already: nothing happens
