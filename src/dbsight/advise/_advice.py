"""The advisor's result: advised indexes with the statements they serve, rejected candidates
with the reason, findings, and the ``--json`` document (`IndexAdvice.to_dict`).

Statements appear by fingerprint and normalized text only. A partial index's predicate holds
the value the traffic asked for most (it is the advice: the index cannot be created without
it); that value is always among the column's most common values in PostgreSQL's own
statistics, never one user's value, and advice events leave it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._candidates import Candidate

__all__ = ["AdvisedIndex", "IndexAdvice", "Rejected", "ServedStatement"]


@dataclass(slots=True)
class ServedStatement:
    fingerprint: str
    normalized: str
    calls: int
    total_time_ms: float
    cost_before: float
    cost_after: float
    generic_plan: bool
    measured_before_ms: float | None = None
    measured_after_ms: float | None = None
    measure_note: str | None = None

    @property
    def speedup(self) -> float | None:
        if not self.measured_before_ms or not self.measured_after_ms:
            return None
        return self.measured_before_ms / self.measured_after_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "normalized": self.normalized,
            "calls": self.calls,
            "total_time_ms": round(self.total_time_ms, 3),
            "cost_before": round(self.cost_before, 2),
            "cost_after": round(self.cost_after, 2),
            "plan": "generic" if self.generic_plan else "samples",
            "measured_before_ms": _ms(self.measured_before_ms),
            "measured_after_ms": _ms(self.measured_after_ms),
            "measure_note": self.measure_note,
        }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass(slots=True)
class AdvisedIndex:
    index: Candidate
    statements: list[ServedStatement]
    write_overhead: dict[str, Any]
    reason: str
    saved_ms: float  # estimated read time saved over the workload's window
    verified: bool = False
    created_name: str | None = None
    kept: bool = False
    verify_error: str | None = None

    @property
    def create(self) -> str:
        index = self.index
        return f"CREATE INDEX CONCURRENTLY {index.name()} {index.definition(index.table)}"

    def to_dict(self) -> dict[str, Any]:
        c = self.index
        return {
            **_index_fields(c),
            "create": self.create,
            "key": c.key,
            "statements": [s.to_dict() for s in self.statements],
            "write_overhead": self.write_overhead,
            "estimated_saved_ms": round(self.saved_ms, 3),
            "reason": self.reason,
            "verified": self.verified,
            "kept": self.kept,
            "verify_error": self.verify_error,
        }


def _index_fields(index: Candidate) -> dict[str, Any]:
    """The fields that say which index, the same in an advised and a rejected one."""
    return {
        "table": index.table,
        "columns": list(index.columns),
        "directions": ["desc" if d else "asc" for d in index.descending],
        "include": list(index.include),
        "where": index.predicate(),
    }


@dataclass(slots=True)
class Rejected:
    index: Candidate
    reason: str
    fingerprints: list[str] = field(default_factory=list)
    write_overhead: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **_index_fields(self.index),
            "reason": self.reason,
            "fingerprints": list(self.fingerprints),
            "write_overhead": self.write_overhead,
        }


@dataclass(slots=True)
class IndexAdvice:
    """What `advise_indexes` found. ``findings``: one dict per statement or table the
    advisor could not weigh, or weighed with less than it wanted (``kind``, ``message`` and
    the ``fingerprint``/``normalized`` or ``table`` it is about)."""

    indexes: list[AdvisedIndex] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    statements: int = 0  # statements in the workload
    analyzed: int = 0  # statements planned
    explains: int = 0
    round_trips: int = 0
    elapsed_s: float = 0.0
    verified: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "indexes": [i.to_dict() for i in self.indexes],
            "rejected": [r.to_dict() for r in self.rejected],
            "findings": list(self.findings),
            "summary": {
                "statements": self.statements,
                "analyzed": self.analyzed,
                "explains": self.explains,
                "round_trips": self.round_trips,
                "elapsed_s": round(self.elapsed_s, 3),
                "verified": self.verified,
            },
        }
