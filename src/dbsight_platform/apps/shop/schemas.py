"""The shop's request bodies (its answers are the rows it reads, in the envelope)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OrderLineIn(BaseModel):
    product_id: int = Field(gt=0, le=2_147_483_647)
    quantity: int = Field(1, gt=0, le=100)


class OrderIn(BaseModel):
    customer_id: int = Field(gt=0, le=2_147_483_647)
    coupon_code: str | None = Field(None, max_length=40)
    items: list[OrderLineIn] = Field(min_length=1, max_length=50)
