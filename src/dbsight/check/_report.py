"""What a run of the database checks found: one `CheckResult` per check, in a `CheckReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "SEVERITIES",
    "CheckError",
    "CheckReport",
    "CheckResult",
    "Finding",
    "Severity",
    "Status",
]

Severity = Literal["critical", "warning", "info"]
Status = Literal["ok", "failed", "error"]

# Most severe first; `CheckReport.failed(level)` keeps what ranks at or above ``level``.
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")
_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}


class CheckError(Exception):
    """The database cannot be checked at all (unreachable, authentication refused). A single
    check whose query fails is not this: it is a result with status ``"error"``."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One failing object: its name (``public.orders_status_idx``, a pid: the event key is
    built from it) and its item."""

    object: str
    item: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's verdict. ``items`` are the objects it is about (failing ones, or for the
    connection and cache checks the figures it judged), with names and numbers only: never a
    literal of a statement. ``findings`` are the failing objects, from which the advice events
    are built."""

    name: str
    title: str
    severity: Severity
    status: Status
    summary: str
    items: tuple[dict[str, Any], ...] = ()
    hint: str | None = None
    findings: tuple[Finding, ...] = field(default=(), compare=False)

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "summary": self.summary,
            "items": [dict(item) for item in self.items],
            "hint": self.hint,
        }


def at_or_above(severity: str, level: str) -> bool:
    """Whether ``severity`` ranks at or above ``level`` (critical > warning > info)."""
    if level not in _RANK:
        raise ValueError(f"unknown severity {level!r}; expected one of {', '.join(SEVERITIES)}")
    return _RANK[severity] <= _RANK[level]


@dataclass(frozen=True, slots=True)
class CheckReport:
    """All results of one run against ``database`` (a DSN without its password)."""

    database: str
    checked_at: str  # ISO 8601, UTC
    checks: tuple[CheckResult, ...]

    def failed(self, level: str = "warning") -> list[CheckResult]:
        """The failed checks whose severity is ``level`` or more severe."""
        return [c for c in self.checks if c.failed and at_or_above(c.severity, level)]

    def errors(self) -> list[CheckResult]:
        """The checks that could not run (their query failed)."""
        return [c for c in self.checks if c.status == "error"]

    def result(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "checked_at": self.checked_at,
            "checks": [check.to_dict() for check in self.checks],
        }
