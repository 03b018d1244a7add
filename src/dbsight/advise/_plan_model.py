"""What the plan analyzer reports (`PlanFinding`) and what it may know about the tables a
plan reads (`TableStats`, one row of ``pg_stat_user_tables`` plus ``pg_class.reltuples``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = ["FindingKind", "PlanFinding", "Severity", "TableStats", "SEVERITY_RANK"]

Severity = Literal["critical", "warning", "info"]
FindingKind = Literal[
    "misestimate",
    "seq_scan",
    "disk_spill",
    "nested_loop",
    "lossy_bitmap",
    "heap_fetches",
    "dominant_node",
    "stale_statistics",
]
SEVERITY_RANK: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class PlanFinding:
    """One thing worth fixing in a plan. ``message`` is one line naming the node, the
    relation and the numbers; it never quotes the plan's conditions (they hold the
    statement's constants), only relation and column names and numbers. ``node_index`` is
    the node's position in a depth-first walk of the plan (the root is 0)."""

    kind: FindingKind
    severity: Severity
    node: str
    relation: str | None
    message: str
    numbers: Mapping[str, Any] = field(default_factory=dict)
    suggestion: str | None = None
    node_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "node": self.node,
            "relation": self.relation,
            "message": self.message,
            "numbers": dict(self.numbers),
            "suggestion": self.suggestion,
            "node_index": self.node_index,
        }


@dataclass(frozen=True, slots=True)
class TableStats:
    """What the statistics views say about one table: its size (``reltuples``, the
    planner's own figure, and ``n_live_tup``) and how much changed since it was last
    analyzed. Timestamps are None when the table was never analyzed that way."""

    relation: str
    n_live_tup: int | None = None
    n_mod_since_analyze: int | None = None
    last_analyze: datetime | str | None = None
    last_autoanalyze: datetime | str | None = None
    reltuples: float | None = None

    @property
    def rows(self) -> float | None:
        """The table's size as the planner sees it (``reltuples`` is -1 before the first
        VACUUM or ANALYZE on PostgreSQL 14+), else the live-tuple count."""
        if self.reltuples is not None and self.reltuples >= 0:
            return self.reltuples
        return float(self.n_live_tup) if self.n_live_tup is not None else None

    @property
    def never_analyzed(self) -> bool:
        return self.last_analyze is None and self.last_autoanalyze is None

    @property
    def stale(self) -> bool:
        """Never analyzed, or more than 10 % of its rows changed since (autovacuum's own
        default ``autovacuum_analyze_scale_factor``)."""
        if self.never_analyzed:
            return True
        if self.n_mod_since_analyze is None:
            return False
        live = max(self.n_live_tup or 0, 1)
        return self.n_mod_since_analyze > 0.1 * live

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TableStats:
        def integer(name: str) -> int | None:
            value = row.get(name)
            return int(value) if value is not None else None

        reltuples = row.get("reltuples")
        return cls(
            relation=str(row["relation"]),
            n_live_tup=integer("n_live_tup"),
            n_mod_since_analyze=integer("n_mod_since_analyze"),
            last_analyze=row.get("last_analyze"),
            last_autoanalyze=row.get("last_autoanalyze"),
            reltuples=float(reltuples) if reltuples is not None else None,
        )
