"""`Snapshot`: one answer of ``/metrics/summary``, checked and typed.

The view reads what another process serves (an instrumented service, later the proxy's
admin port, perhaps of another dbsight version), so the document is validated once here and
everything downstream works on typed values: a malformed answer is one clear error, not a
``KeyError`` in the middle of drawing a table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..stats import FingerprintStats, StatsTotals


class SummaryError(ValueError):
    """The document is not a dbsight summary (what is wrong with it, in words)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the service reported at one poll.

    ``generated_wall`` is ``generated_at`` as epoch seconds on the service's clock (None
    when it cannot be read); ``polled_at`` is the poller's monotonic clock at arrival. Rates
    prefer the service's clock: it is when the counters were read. ``totals`` covers every
    statement, listed or not (None from a dbsight that does not send them). Of a merged
    view, ``instances`` is how many answered and ``unavailable`` says why the others did not.
    """

    service: str
    generated_at: str
    generated_wall: float | None
    workers: int
    statements: tuple[FingerprintStats, ...]
    slow: tuple[Mapping[str, Any], ...]
    n_plus_one: tuple[Mapping[str, Any], ...]
    polled_at: float
    totals: StatsTotals | None = None
    instances: int = 1
    unavailable: tuple[str, ...] = ()


def parse_summary(document: Any, polled_at: float) -> Snapshot:
    """A `Snapshot` of a decoded ``/metrics/summary`` document; `SummaryError` otherwise."""
    if not isinstance(document, Mapping):
        raise SummaryError(f"expected a JSON object, got {type(document).__name__}")
    top = document.get("top")
    if not isinstance(top, list):
        raise SummaryError("no 'top' list of statements")
    statements = tuple(_statement(index, row) for index, row in enumerate(top))
    generated_at = str(document.get("generated_at") or "")
    try:
        workers = int(document.get("workers") or 1)
    except (TypeError, ValueError):
        raise SummaryError(f"'workers' is not a number: {document.get('workers')!r}") from None
    return Snapshot(
        service=str(document.get("service") or "?"),
        generated_at=generated_at,
        generated_wall=_epoch(generated_at),
        workers=workers,
        statements=statements,
        slow=_records(document, "slow"),
        n_plus_one=_records(document, "n_plus_one"),
        polled_at=polled_at,
        totals=_totals(document.get("totals")),
    )


def _statement(index: int, row: Any) -> FingerprintStats:
    if not isinstance(row, Mapping) or not row.get("fingerprint"):
        raise SummaryError(f"top[{index}] is not a statement with a fingerprint")
    try:
        routes = row.get("routes") or {}
        plan = row.get("plan_summary")
        return FingerprintStats(
            fingerprint=str(row["fingerprint"]),
            normalized=str(row.get("normalized") or ""),
            operation=str(row.get("operation") or ""),
            system=str(row.get("system") or ""),
            tables=tuple(str(table) for table in row.get("tables") or ()),
            calls=int(row.get("calls") or 0),
            rows=int(row["rows"]) if row.get("rows") is not None else None,
            rows_calls=int(row.get("rows_calls") or 0),
            errors=int(row.get("errors") or 0),
            total_time_s=_seconds(row, "total_time_s"),
            mean_time_s=_seconds(row, "mean_time_s"),
            min_time_s=_seconds(row, "min_time_s"),
            max_time_s=_seconds(row, "max_time_s"),
            p50_s=_seconds(row, "p50_s"),
            p95_s=_seconds(row, "p95_s"),
            p99_s=_seconds(row, "p99_s"),
            first_seen=_seconds(row, "first_seen"),
            last_seen=_seconds(row, "last_seen"),
            routes={str(route): int(count) for route, count in dict(routes).items()},
            databases=tuple(str(database) for database in row.get("databases") or ()),
            plan_summary=dict(plan) if isinstance(plan, Mapping) else None,
        )
    except (TypeError, ValueError) as exc:
        raise SummaryError(f"top[{index}] has a malformed field: {exc}") from None


def _totals(totals: Any) -> StatsTotals | None:
    if totals is None:
        return None
    if not isinstance(totals, Mapping):
        raise SummaryError("'totals' is not an object")
    try:
        parsed = StatsTotals.from_dict(totals)
    except (TypeError, ValueError) as exc:
        raise SummaryError(f"'totals' has a malformed field: {exc}") from None
    if not math.isfinite(parsed.total_time_s):
        raise SummaryError(f"'totals' has total_time_s {parsed.total_time_s}")
    return parsed


def _seconds(row: Mapping[str, Any], key: str) -> float:
    value = float(row.get(key) or 0.0)
    if not math.isfinite(value):
        raise ValueError(f"{key} is {value}")
    return value


def _records(document: Mapping[str, Any], key: str) -> tuple[Mapping[str, Any], ...]:
    records = document.get(key)
    if records is None:
        return ()
    if not isinstance(records, list):
        raise SummaryError(f"'{key}' is not a list")
    return tuple(record for record in records if isinstance(record, Mapping))


def _epoch(timestamp: str) -> float | None:
    """``2024-05-01T12:00:00.123Z`` (as ``/metrics/summary`` writes it) in epoch seconds."""
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return None
