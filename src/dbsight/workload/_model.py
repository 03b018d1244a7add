"""A workload: the statements a database ran, each with how often and how long, from
whichever source saw them (dbsight's statistics, a proxy capture, pg_stat_statements), joined
by dbsight's fingerprint. What the index advisor weighs and the report shows.

``samples`` are real statements as they ran (the text with its literals, or the text with
``$n`` and the parameter values), kept in memory only: they come from a capture written with
``capture_params`` or from this process's own statistics, never from a remote summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Sample", "Workload", "WorkloadStatement", "WRITE_OPERATIONS"]

WRITE_OPERATIONS = frozenset({"insert", "update", "delete", "merge", "copy"})


@dataclass(frozen=True, slots=True)
class Sample:
    """One real run of a statement: ``sql`` as sent (literals in it, or ``$n``
    placeholders) and, for ``$n``, the parameter values as text (None for NULL)."""

    sql: str
    params: tuple[str | None, ...] | None = None


@dataclass(slots=True)
class WorkloadStatement:
    """One fingerprint. Times in seconds; ``p95_s`` None where the source has no
    percentiles (pg_stat_statements). ``instrumented``: dbsight saw it (in-process or
    through the proxy); False for a statement only pg_stat_statements knows."""

    fingerprint: str
    normalized: str
    operation: str
    tables: tuple[str, ...]
    calls: int
    total_time_s: float
    p95_s: float | None = None
    rows: int | None = None
    errors: int = 0
    routes: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    sources: tuple[str, ...] = ()
    instrumented: bool = True

    @property
    def mean_time_s(self) -> float:
        return self.total_time_s / self.calls if self.calls else 0.0

    @property
    def writes(self) -> bool:
        return self.operation in WRITE_OPERATIONS

    def to_dict(self) -> dict[str, Any]:
        """The statement without its samples (they may hold literals)."""
        return {
            "fingerprint": self.fingerprint,
            "normalized": self.normalized,
            "operation": self.operation,
            "tables": list(self.tables),
            "calls": self.calls,
            "total_time_s": self.total_time_s,
            "mean_time_s": self.mean_time_s,
            "p95_s": self.p95_s,
            "rows": self.rows,
            "errors": self.errors,
            "routes": dict(self.routes),
            "sources": list(self.sources),
            "instrumented": self.instrumented,
        }


@dataclass(slots=True)
class Workload:
    """Statements by fingerprint over ``window_s`` seconds of traffic (None: unknown, then
    rates are per the whole workload rather than per minute)."""

    statements: dict[str, WorkloadStatement] = field(default_factory=dict)
    window_s: float | None = None

    @classmethod
    def of(cls, statements: Iterable[WorkloadStatement], window_s: float | None = None) -> Workload:
        workload = cls(window_s=window_s)
        for statement in statements:
            workload.add(statement)
        return workload

    def __iter__(self) -> Iterator[WorkloadStatement]:
        return iter(self.statements.values())

    def __len__(self) -> int:
        return len(self.statements)

    def add(self, statement: WorkloadStatement) -> None:
        """Add ``statement``, joining it with one of the same fingerprint already here."""
        have = self.statements.get(statement.fingerprint)
        self.statements[statement.fingerprint] = (
            statement if have is None else _join(have, statement)
        )

    def merge(self, other: Workload) -> Workload:
        """Both workloads joined by fingerprint (see `_join`); the longer window."""
        windows = [w for w in (self.window_s, other.window_s) if w is not None]
        merged = Workload(dict(self.statements), max(windows) if windows else None)
        for statement in other:
            merged.add(statement)
        return merged

    def by_total_time(self) -> list[WorkloadStatement]:
        return sorted(self, key=lambda s: s.total_time_s, reverse=True)

    def writes_per_minute(self, table: str) -> float:
        """Write statements (INSERT, UPDATE, DELETE, MERGE, COPY) on ``table`` per minute of
        the window; per the whole workload when the window is unknown."""
        writes = sum(s.calls for s in self if s.writes and table in s.tables)
        if not self.window_s:
            return float(writes)
        return writes * 60.0 / self.window_s

    def reads_per_minute(self, table: str) -> float:
        reads = sum(s.calls for s in self if not s.writes and table in s.tables)
        if not self.window_s:
            return float(reads)
        return reads * 60.0 / self.window_s


def _join(a: WorkloadStatement, b: WorkloadStatement) -> WorkloadStatement:
    """One fingerprint seen by two sources. The same statements counted twice (dbsight and
    pg_stat_statements both saw them) are not added up: the larger count wins, as the
    source that saw more of the traffic; samples and routes are pooled."""
    first, second = (a, b) if a.calls >= b.calls else (b, a)
    routes = dict(second.routes)
    for route, calls in first.routes.items():
        routes[route] = max(calls, routes.get(route, 0))
    samples: Sequence[Sample] = list(dict.fromkeys([*first.samples, *second.samples]))
    return replace(
        first,
        p95_s=first.p95_s if first.p95_s is not None else second.p95_s,
        routes=routes,
        samples=list(samples),
        sources=tuple(dict.fromkeys([*first.sources, *second.sources])),
        instrumented=first.instrumented or second.instrumented,
    )
