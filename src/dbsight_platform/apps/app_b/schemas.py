"""App B's request and response schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..shared.common_schemas import (
    CleanText,
    JsonInteger,
    Money,
    PriceInput,
    ReadSchema,
    UtcDatetime,
)

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
ProductName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"), CleanText
]


class ProductCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"sku": "LAMP-01", "name": "Desk lamp", "price": "24.90", "stock": 40}]
        },
    )

    sku: Sku
    name: ProductName
    price: PriceInput
    stock: Annotated[int, JsonInteger] = Field(0, ge=0, le=1_000_000, description="Initial stock.")


class ProductUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"price": "19.90", "active": True}]}
    )

    name: ProductName | None = None
    price: PriceInput | None = None
    active: bool | None = Field(None, strict=True)


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

    delta: Annotated[int, JsonInteger] = Field(
        ge=-1_000_000, le=1_000_000, description="Added to the stock (may be < 0)."
    )


class InventoryRead(ReadSchema):
    product_id: int
    quantity: int
    updated_at: UtcDatetime
