"""What the query builder returns: `AuditRecord` rows and the `ComplianceReport`, typed,
and serializable to JSON (``to_dict()``: times as ISO 8601 UTC, dates as YYYY-MM-DD)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One row of the audit log."""

    id: int
    occurred_at: datetime
    actor: str
    operation: str
    entity_type: str
    entity_id: str | None
    result: str
    error: str | None
    details: dict[str, Any] | None
    trace_id: str | None
    request_id: str | None
    route: str | None
    app: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AuditRecord:
        details = row["details"]
        if isinstance(details, str):  # a MariaDB JSON column read without its type
            details = json.loads(details)
        return cls(**{name: row[name] for name in cls.__slots__ if name != "details"},
                   details=details)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["occurred_at"] = self.occurred_at.astimezone(UTC).isoformat()
        return out


@dataclass(frozen=True, slots=True)
class Count:
    """How many records one key (an operation, entity type, actor or day) has, and how
    many of them are failures."""

    key: str
    total: int
    failures: int

    @property
    def failure_rate(self) -> float:
        return self.failures / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "total": self.total, "failures": self.failures,
                "failure_rate": round(self.failure_rate, 6)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ErrorCount:
    error: str | None
    count: int


@dataclass(frozen=True)
class ComplianceReport:
    """The audit log over a period: totals, failure rate, counts by operation, entity type
    and day (every day of the period, zero days included), the most active actors and the
    most frequent errors."""

    start: date
    end: date  # inclusive
    generated_at: datetime
    total: int
    failures: int
    actors: int
    by_operation: list[Count] = field(default_factory=list)
    by_entity_type: list[Count] = field(default_factory=list)
    top_actors: list[Count] = field(default_factory=list)
    per_day: list[Count] = field(default_factory=list)
    top_errors: list[ErrorCount] = field(default_factory=list)

    @property
    def successes(self) -> int:
        return self.total - self.failures

    @property
    def failure_rate(self) -> float:
        return self.failures / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "generated_at": self.generated_at.astimezone(UTC).isoformat(),
            "total": self.total,
            "successes": self.successes,
            "failures": self.failures,
            "failure_rate": round(self.failure_rate, 6),
            "actors": self.actors,
            "by_operation": [c.to_dict() for c in self.by_operation],
            "by_entity_type": [c.to_dict() for c in self.by_entity_type],
            "top_actors": [c.to_dict() for c in self.top_actors],
            "per_day": [c.to_dict() for c in self.per_day],
            "top_errors": [{"error": e.error, "count": e.count} for e in self.top_errors],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _counts(rows: Iterable[Any]) -> list[Count]:
    counts = [Count(str(key), int(total), int(failures or 0)) for key, total, failures in rows]
    return sorted(counts, key=lambda c: (-c.total, c.key))


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))  # SQLite's date() is text


def assemble_report(
    start: date, end: date, rows: Mapping[str, list[Any]], generated_at: datetime
) -> ComplianceReport:
    """The report from the results of `report_statements` (name -> rows)."""
    operations = _counts(rows["operation"])
    found = {_day(key): (int(total), int(failures or 0)) for key, total, failures in rows["day"]}
    days = []
    day = start
    while day <= end:
        total, failures = found.get(day, (0, 0))
        days.append(Count(day.isoformat(), total, failures))
        day += timedelta(days=1)
    return ComplianceReport(
        start=start,
        end=end,
        generated_at=generated_at,
        total=sum(c.total for c in operations),
        failures=sum(c.failures for c in operations),
        actors=int(rows["actors"][0][0]),
        by_operation=operations,
        by_entity_type=_counts(rows["entity_type"]),
        top_actors=_counts(rows["actor"]),
        per_day=days,
        top_errors=[ErrorCount(error, int(n)) for error, n in rows["errors"]],
    )
