"""A workload: the statements a database ran, each with how often and how long, from
whichever source saw them (dbsight's statistics, a proxy capture, pg_stat_statements), joined
by dbsight's fingerprint. What the index advisor weighs and the report shows.

``samples`` are real statements as they ran (the text with its literals, or the text with
``$n`` and the parameter values), kept in memory only: they come from a capture written with
``capture_params`` or from this process's own statistics, never from a remote summary. They
are a reservoir sample of the traffic, so the same `Sample` may be there several times: its
share of the list estimates its share of the calls (a value that dominates the traffic
dominates the samples), which is what a partial index is decided on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["MAX_SAMPLES", "Sample", "Workload", "WorkloadStatement", "WRITE_OPERATIONS"]

WRITE_OPERATIONS = frozenset({"insert", "update", "delete", "merge", "copy"})

# Samples per statement: enough for the values that dominate its traffic to show, few
# enough to plan each of them.
MAX_SAMPLES = 20


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
    # not in repr(): a statement printed or logged must not show the values it ran with
    samples: list[Sample] = field(default_factory=list, repr=False)
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
    rates are per the whole workload rather than per minute).

    ``skipped`` counts what the loaders left out, by reason: ``"utility"`` (transaction
    control, SET, SHOW, EXPLAIN ...), ``"corrupt_lines"`` of a capture, ``"undecodable_params"``
    (samples whose binary parameters have no text form), ``"insufficient_privilege"``
    (pg_stat_statements rows of other users' statements), ``"other_systems"`` (statements
    sent to other databases than PostgreSQL)."""

    statements: dict[str, WorkloadStatement] = field(default_factory=dict)
    window_s: float | None = None
    skipped: dict[str, int] = field(default_factory=dict)

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
        """Both workloads joined by fingerprint (see `_join`): two views of the same traffic
        (dbsight's statistics and pg_stat_statements, a service and its proxy); the longer
        window."""
        merged = Workload(dict(self.statements), _longer(self, other), _added(self, other))
        for statement in other:
            merged.add(statement)
        return merged

    def combine(self, other: Workload) -> Workload:
        """Both workloads added up by fingerprint (see `_sum`): the traffic of separate
        processes (several instances of a service, each with its own statistics), where
        a statement seen by both ran twice as often; the longer window."""
        combined = Workload(dict(self.statements), _longer(self, other), _added(self, other))
        for statement in other:
            have = combined.statements.get(statement.fingerprint)
            combined.statements[statement.fingerprint] = (
                statement if have is None else _sum(have, statement)
            )
        return combined

    def to_dict(self) -> dict[str, Any]:
        """The workload without its samples, statements by total time."""
        return {
            "window_s": self.window_s,
            "statements": [statement.to_dict() for statement in self.by_total_time()],
            "skipped": dict(self.skipped),
        }

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


def _longer(a: Workload, b: Workload) -> float | None:
    windows = [w for w in (a.window_s, b.window_s) if w is not None]
    return max(windows) if windows else None


def _added(a: Workload, b: Workload) -> dict[str, int]:
    skipped = dict(a.skipped)
    for reason, count in b.skipped.items():
        skipped[reason] = skipped.get(reason, 0) + count
    return skipped


def _pooled(a: Sequence[Sample], b: Sequence[Sample]) -> list[Sample]:
    """Two reservoirs as one of at most `MAX_SAMPLES`, taken from each in turn so that both
    stay represented; repeats are kept (they say how common a value is)."""
    pooled: list[Sample] = []
    for i in range(max(len(a), len(b))):
        pooled.extend(side[i] for side in (a, b) if i < len(side))
    return pooled[:MAX_SAMPLES]


def _join(a: WorkloadStatement, b: WorkloadStatement) -> WorkloadStatement:
    """One fingerprint seen by two sources. The same statements counted twice (dbsight and
    pg_stat_statements both saw them) are not added up: the larger count wins, as the
    source that saw more of the traffic; samples and routes are pooled."""
    first, second = (a, b) if a.calls >= b.calls else (b, a)
    routes = dict(second.routes)
    for route, calls in first.routes.items():
        routes[route] = max(calls, routes.get(route, 0))
    return replace(
        first,
        p95_s=first.p95_s if first.p95_s is not None else second.p95_s,
        rows=first.rows if first.rows is not None else second.rows,
        routes=routes,
        samples=_pooled(first.samples, second.samples),
        sources=tuple(dict.fromkeys([*first.sources, *second.sources])),
        instrumented=first.instrumented or second.instrumented,
    )


def _sum(a: WorkloadStatement, b: WorkloadStatement) -> WorkloadStatement:
    """One fingerprint run by two processes: calls, time, rows, errors and routes add up.
    The p95 of the two together is not known from the two p95s (no histograms travel in a
    summary): the higher one, which is never below the true one by more than the gap."""
    routes = dict(a.routes)
    for route, calls in b.routes.items():
        routes[route] = routes.get(route, 0) + calls
    p95s = [p for p in (a.p95_s, b.p95_s) if p is not None]
    rows = None if a.rows is None and b.rows is None else (a.rows or 0) + (b.rows or 0)
    return replace(
        a,
        calls=a.calls + b.calls,
        total_time_s=a.total_time_s + b.total_time_s,
        p95_s=max(p95s) if p95s else None,
        rows=rows,
        errors=a.errors + b.errors,
        routes=routes,
        samples=_pooled(a.samples, b.samples),
        sources=tuple(dict.fromkeys([*a.sources, *b.sources])),
        instrumented=a.instrumented or b.instrumented,
    )
