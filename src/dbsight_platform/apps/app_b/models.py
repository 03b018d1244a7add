"""App B's tables: ``app_b_products`` and ``app_b_inventory`` (one stock row per product)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel

from ..shared.base_models import TimestampedModel, utcnow

MAX_STOCK = 1_000_000_000


class Product(TimestampedModel, table=True):
    __tablename__ = "app_b_products"

    sku: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    price: Decimal = Field(max_digits=12, decimal_places=2)
    active: bool = Field(default=True)


class InventoryItem(SQLModel, table=True):
    __tablename__ = "app_b_inventory"

    product_id: int = Field(primary_key=True, foreign_key="app_b_products.id", ondelete="CASCADE")
    quantity: int = Field(default=0, ge=0)
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_type=DateTime(timezone=True),
        nullable=False,
        sa_column_kwargs={"onupdate": utcnow},
    )
