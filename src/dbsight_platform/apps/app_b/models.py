"""App B's tables: ``app_b_products`` and ``app_b_inventory`` (one stock row per product)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, ForeignKeyConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..shared.base_models import TimestampedModel, utcnow

MAX_STOCK = 1_000_000_000


class Product(TimestampedModel, table=True):
    __tablename__ = "app_b_products"
    __table_args__ = (UniqueConstraint("sku", name="uq_app_b_products_sku"),)

    sku: str = Field(max_length=64)
    name: str = Field(max_length=200)
    price: Decimal = Field(max_digits=12, decimal_places=2)
    active: bool = Field(default=True)


class InventoryItem(SQLModel, table=True):
    __tablename__ = "app_b_inventory"
    __table_args__ = (
        ForeignKeyConstraint(
            ["product_id"],
            ["app_b_products.id"],
            name="fk_app_b_inventory_product_id",
            ondelete="CASCADE",
        ),
        CheckConstraint("quantity >= 0", name="ck_app_b_inventory_quantity"),
    )

    product_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    quantity: int = Field(default=0)
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_type=DateTime(timezone=True),
        nullable=False,
        sa_column_kwargs={"onupdate": utcnow},
    )
