"""App A's accounts and orders, App B's products and inventory.

Revision ID: 0001
Revises:
Create Date: 2026-12-06

Portable between PostgreSQL and MariaDB/MySQL: named constraints, bounded VARCHARs,
``Numeric(12, 2)`` money, UTC ``DateTime(timezone=True)``; InnoDB and utf8mb4 on MySQL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "app_a_accounts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(50), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("balance", sa.Numeric(12, 2), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("username", name="uq_app_a_accounts_username"),
        **MYSQL,
    )
    op.create_table(
        "app_b_products",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("price", sa.Numeric(12, 2), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("sku", name="uq_app_b_products_sku"),
        **MYSQL,
    )
    op.create_table(
        "app_b_inventory",
        sa.Column("product_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["app_b_products.id"],
            name="fk_app_b_inventory_product_id",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("quantity >= 0", name="ck_app_b_inventory_quantity"),
        **MYSQL,
    )
    op.create_table(
        "app_a_orders",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(12, 2), nullable=False),
        sa.Column("total", sa.Numeric(12, 2), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["account_id"], ["app_a_accounts.id"], name="fk_app_a_orders_account_id"
        ),
        **MYSQL,
    )
    op.create_index("ix_app_a_orders_account_id", "app_a_orders", ["account_id"])
    op.create_index("ix_app_a_orders_product_id", "app_a_orders", ["product_id"])


def downgrade() -> None:
    op.drop_table("app_a_orders")
    op.drop_table("app_b_inventory")
    op.drop_table("app_b_products")
    op.drop_table("app_a_accounts")
