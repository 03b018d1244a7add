"""Base SQLModel classes: an integer primary key and UTC creation/update times.

Column types are chosen to mean the same on PostgreSQL and MariaDB/MySQL: ``DateTime(timezone
=True)`` (``timestamptz`` / ``DATETIME``, always written in UTC), ``Numeric(12, 2)`` for money.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """MySQL's DATETIME comes back naive: it was written in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class TimestampedModel(SQLModel):
    """``id``, ``created_at`` and ``updated_at`` (set by the database session on change)."""

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=DateTime(timezone=True), nullable=False
    )
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_type=DateTime(timezone=True),
        nullable=False,
        sa_column_kwargs={"onupdate": utcnow},
    )
