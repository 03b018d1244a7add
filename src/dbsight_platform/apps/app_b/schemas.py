"""App B's request and response schemas."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..shared.common_schemas import CleanText, Money, ReadSchema, UtcDatetime

Sku = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Stock-keeping unit.",
    ),
    CleanText,
]
ProductName = Annotated[str, Field(min_length=1, max_length=200), CleanText]
Price = Annotated[Money, Field(gt=0, le=Decimal("999999.99"))]


class ProductCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"sku": "LAMP-01", "name": "Desk lamp", "price": "24.90", "stock": 40}]
        },
    )

    sku: Sku
    name: ProductName
    price: Price
    stock: int = Field(0, ge=0, le=1_000_000, description="Initial stock.")


class ProductUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"price": "19.90", "active": True}]}
    )

    name: ProductName | None = None
    price: Price | None = None
    active: bool | None = None


class ProductRead(ReadSchema):
    id: int
    sku: str
    name: str
    price: Money
    active: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime


class StockAdjust(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"delta": -3}]})

    delta: int = Field(ge=-1_000_000, le=1_000_000, description="Added to the stock (may be < 0).")


class InventoryRead(ReadSchema):
    product_id: int
    quantity: int
    updated_at: UtcDatetime
