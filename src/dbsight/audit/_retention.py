"""Retention: records older than ``audit_retention_days`` (a dbsight setting, 90 by default)
are deleted by `purge`, in batches of their own transactions so that a large purge neither
holds locks for long nor grows one huge transaction; an interrupted purge loses nothing that
was meant to stay and simply resumes on the next run."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from . import _statements as q
from ._table import audit_log, now_utc

DEFAULT_BATCH = 1000


def retention_days() -> int:
    """``audit_retention_days`` of the configured dbsight, else of the ``DBSIGHT_*``
    variables (without configuring dbsight)."""
    from .. import _runtime
    from ..core import load_settings

    runtime = _runtime._runtime
    settings = runtime.settings if runtime is not None else load_settings()
    return settings.audit_retention_days


def purge_cutoff(older_than_days: int | None = None) -> datetime:
    """The time before which records are purged."""
    days = retention_days() if older_than_days is None else older_than_days
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"older_than_days must be a whole number, at least 1; got {days!r}")
    return now_utc() - timedelta(days=days)


def _batch(batch_size: int) -> int:
    if not 1 <= batch_size <= 100_000:
        raise ValueError(f"batch_size must be between 1 and 100000, got {batch_size}")
    return batch_size


def count_purgeable(
    engine: sa.Engine, older_than_days: int | None = None, *, table: sa.Table | None = None
) -> int:
    """How many records `purge` would delete now."""
    table = audit_log if table is None else table
    with engine.connect() as connection:
        count = connection.execute(q.count_older(table, purge_cutoff(older_than_days)))
        return int(count.scalar_one())


def purge(
    engine: sa.Engine,
    older_than_days: int | None = None,
    *,
    batch_size: int = DEFAULT_BATCH,
    table: sa.Table | None = None,
) -> int:
    """Delete the records older than ``older_than_days`` (default: the
    ``audit_retention_days`` setting), ``batch_size`` per transaction, oldest first; return
    how many were deleted."""
    table = audit_log if table is None else table
    cutoff, size = purge_cutoff(older_than_days), _batch(batch_size)
    deleted = 0
    while True:
        with engine.begin() as connection:
            ids = list(connection.execute(q.older_ids(table, cutoff, size)).scalars())
            if ids:
                deleted += connection.execute(q.delete_ids(table, ids)).rowcount
        if len(ids) < size:
            return deleted


async def apurge(
    engine: Any,
    older_than_days: int | None = None,
    *,
    batch_size: int = DEFAULT_BATCH,
    table: sa.Table | None = None,
) -> int:
    """`purge` on an ``AsyncEngine``."""
    table = audit_log if table is None else table
    cutoff, size = purge_cutoff(older_than_days), _batch(batch_size)
    deleted = 0
    while True:
        async with engine.begin() as connection:
            ids = list((await connection.execute(q.older_ids(table, cutoff, size))).scalars())
            if ids:
                deleted += (await connection.execute(q.delete_ids(table, ids))).rowcount
        if len(ids) < size:
            return deleted
