"""App A's request and response schemas."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..shared.common_schemas import (
    MAX_ID,
    AmountInput,
    BalanceInput,
    CleanText,
    JsonInteger,
    Money,
    ReadSchema,
    UtcDatetime,
)

# No space, no control character (C0 or C1) in any part; the same in ECMA and Rust regexes.
_EMAIL = r"^[^@ \x00-\x1f\x7f-\x9f]+@[^@ \x00-\x1f\x7f-\x9f]+\.[^@ \x00-\x1f\x7f-\x9f]+$"
Username = Annotated[
    str, Field(min_length=3, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$"), CleanText
]
Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        pattern=_EMAIL,
    ),
    CleanText,
]
OrderStatus = Literal["placed", "cancelled"]


class AccountCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"username": "ada", "email": "ada@example.com", "balance": "100.00"}]
        },
    )

    username: Username
    email: Email
    balance: BalanceInput = Decimal("0.00")


class AccountUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "ada@example.org"}]}
    )

    email: Email | None = None


class Deposit(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"amount": "50.00"}]})

    amount: AmountInput


class AccountRead(ReadSchema):
    id: int
    username: str
    email: str
    balance: Money
    created_at: UtcDatetime
    updated_at: UtcDatetime


class OrderCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"account_id": 1, "product_id": 1, "quantity": 2}]},
    )

    account_id: Annotated[int, JsonInteger] = Field(ge=1, le=MAX_ID)
    product_id: Annotated[int, JsonInteger] = Field(ge=1, le=MAX_ID)
    quantity: Annotated[int, JsonInteger] = Field(ge=1, le=1000)


class OrderRead(ReadSchema):
    id: int
    account_id: int
    product_id: int
    quantity: int
    unit_price: Money
    total: Money
    status: OrderStatus
    created_at: UtcDatetime
    updated_at: UtcDatetime
