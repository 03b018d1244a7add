"""dbsight's audit log (``dbsight_audit_log``): one row per mutation of every application.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

The table is exactly what ``dbsight.audit.add_audit_table`` defines (the metadata module
adds it), on PostgreSQL and MariaDB/MySQL alike; downgrade drops it and its indexes.
"""

from __future__ import annotations

from alembic import op

from dbsight.audit import migration_downgrade, migration_upgrade

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    migration_upgrade(op)


def downgrade() -> None:
    migration_downgrade(op)
