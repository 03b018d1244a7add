"""Pydantic types shared by the applications' request and response schemas.

Text fields refuse control characters and text that is not valid Unicode (a lone surrogate):
the database would refuse them with an error, so they are a 422 here instead. Identifiers
are bounded to what a 32-bit key holds; money to what ``Numeric(12, 2)`` holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from .base_models import as_utc

MAX_ID = 2_147_483_647


def _clean_text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError("must not contain control characters")
    return value


# Use as ``Annotated[str, Field(...), CleanText]``.
CleanText = AfterValidator(_clean_text)


def _json_integer(value: Any) -> Any:
    """A JSON integer: an int, or a number with no fraction (JSON Schema's ``integer``);
    never a boolean or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")  # noqa: TRY004 (pydantic wants ValueError)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


# Use as ``Annotated[int, Field(...), JsonInteger]`` for integers in request bodies.
JsonInteger = BeforeValidator(_json_integer)


def _money_text(pattern: str) -> Callable[[Any], Any]:
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if not isinstance(value, str) or compiled.fullmatch(value) is None:
            raise ValueError('must be a decimal string such as "12.50" (at most 2 decimals)')
        return value

    return check


def _money_schema(pattern: str, example: str) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "string", "pattern": pattern, "examples": [example]}, mode="validation"
    )


_FRACTION = r"(\.[0-9]{1,2})?"
# Amounts in requests are decimal strings ("12.50"): exact, and what answers carry too.
PRICE_PATTERN = rf"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{{0,5}}{_FRACTION})$"  # 0.01-999999.99
AMOUNT_PATTERN = rf"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{{0,5}}{_FRACTION}|1000000(\.0{{1,2}})?)$"
BALANCE_PATTERN = rf"^(0{_FRACTION}|[1-9][0-9]{{0,5}}{_FRACTION}|1000000(\.0{{1,2}})?)$"
PRICE_FILTER_PATTERN = rf"^(0{_FRACTION}|[1-9][0-9]{{0,5}}{_FRACTION})$"  # 0-999999.99

_serialize_money = PlainSerializer(lambda value: f"{value:.2f}", return_type=str, when_used="json")

# In answers: a decimal string with two decimals.
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False),
    _serialize_money,
]
# In requests: a price (0.01-999999.99), an amount (0.01-1000000), a balance (0-1000000).
PriceInput = Annotated[
    Decimal,
    BeforeValidator(_money_text(PRICE_PATTERN)),
    _money_schema(PRICE_PATTERN, "24.90"),
    _serialize_money,
]
AmountInput = Annotated[
    Decimal,
    BeforeValidator(_money_text(AMOUNT_PATTERN)),
    _money_schema(AMOUNT_PATTERN, "50.00"),
    _serialize_money,
]
BalanceInput = Annotated[
    Decimal,
    BeforeValidator(_money_text(BALANCE_PATTERN)),
    _money_schema(BALANCE_PATTERN, "100.00"),
    _serialize_money,
]
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="Identifier.")]
OptionalIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]


class ReadSchema(BaseModel):
    """Base of response schemas built from ORM objects."""

    model_config = ConfigDict(from_attributes=True)
