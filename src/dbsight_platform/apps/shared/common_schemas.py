"""Pydantic types shared by the applications' request and response schemas.

Text fields refuse control characters and text that is not valid Unicode (a lone surrogate):
the database would refuse them with an error, so they are a 422 here instead. Identifiers
are bounded to what a 32-bit key holds; money to what ``Numeric(12, 2)`` holds.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

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


Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(lambda value: f"{value:.2f}", return_type=str, when_used="json"),
]
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="Identifier.")]
OptionalIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]


class ReadSchema(BaseModel):
    """Base of response schemas built from ORM objects."""

    model_config = ConfigDict(from_attributes=True)
