"""The statements of a report: several instances' ``/metrics/summary`` documents merged by
fingerprint, the statements of a capture, and those of another workload (such as
pg_stat_statements) that neither lists.

Several instances merge as the worker processes of one service do (`web._multiprocess`):
`StatsTable.merge` adds calls, errors, rows and times, combines min/max/first/last seen and
routes, and keeps the newest plan summary; `NPlusOneLog.merge` keeps each finding's worst
request. A summary's entries carry percentiles rather than a histogram, so each goes into
the table as durations placed along its percentiles (`_latency.synthetic_durations`; bucket
counts for very many calls): a statement that only one instance ran keeps that instance's
percentiles as they were; one that several ran gets those of the pooled estimate, marked
``estimated``.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..stats import NPlusOneLog, StatsTable, StatsTotals
from ..stats._histogram import GAMMA, encode
from ._inputs import CaptureStatement
from ._latency import bucket_counts, synthetic_durations

if TYPE_CHECKING:
    from ..workload import Workload

_MAX_STATEMENTS = 1_000_000  # nothing is evicted while merging
_PERCENTILES = ("p50_s", "p95_s", "p99_s")


@dataclass(slots=True)
class Merged:
    """The statements by total time (`FingerprintStats.to_dict` shapes plus ``sources``,
    ``instrumented`` and ``estimated``), the totals, slow queries and N+1 findings."""

    statements: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=lambda: StatsTotals().to_dict())
    slow: list[dict[str, Any]] = field(default_factory=list)
    n_plus_one: list[dict[str, Any]] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    workers: int = 0


def _service(doc: Mapping[str, Any], index: int) -> str:
    return str(doc.get("service") or f"instance {index + 1}")


def _with_buckets(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A summary entry as a `StatsTable.snapshot` entry (its histogram from its percentiles)."""
    if entry.get("histogram"):
        return dict(entry)
    durations = synthetic_durations(entry)
    if durations:
        return {**entry, "histogram": {"gamma": GAMMA, "counts": {}, "samples": durations}}
    return {**entry, "histogram": {"gamma": GAMMA, "counts": encode(bucket_counts(entry))}}


def merge_summaries(summaries: Iterable[Mapping[str, Any]]) -> Merged:
    """Several ``/metrics/summary`` documents as one (see the module docstring)."""
    docs = list(summaries)
    table = StatsTable(max_fingerprints=_MAX_STATEMENTS)
    seen: dict[str, list[tuple[str, Mapping[str, Any]]]] = defaultdict(list)
    findings = NPlusOneLog()
    totals = StatsTotals()
    slow: list[dict[str, Any]] = []
    workers = 0
    for index, doc in enumerate(docs):
        service = _service(doc, index)
        for entry in doc.get("top") or ():
            table.merge([_with_buckets(entry)])
            seen[entry["fingerprint"]].append((service, entry))
        findings.merge(list(doc.get("n_plus_one") or ()))
        totals += StatsTotals.from_dict(doc.get("totals") or {})
        slow.extend({**record, "service": service} for record in doc.get("slow") or ())
        workers += int(doc.get("workers") or 1)
    statements = []
    for stats in table.top(len(table)):
        merged = stats.to_dict()
        sides = seen[stats.fingerprint]
        if len(sides) == 1:  # one instance's own figures, exact where it computed them
            merged.update({key: sides[0][1].get(key) for key in _PERCENTILES})
        merged["estimated"] = len(sides) > 1
        merged["sources"] = list(dict.fromkeys(service for service, _ in sides))
        merged["instrumented"] = True
        statements.append(merged)
    totals += StatsTotals(fingerprints=len(table))
    slow.sort(key=lambda record: str(record.get("ts", "")), reverse=True)
    return Merged(
        statements=statements,
        totals=totals.to_dict(),
        slow=slow,
        n_plus_one=findings.snapshot(),
        services=list(dict.fromkeys(_service(doc, i) for i, doc in enumerate(docs))),
        workers=workers,
    )


def capture_statements(captured: Iterable[CaptureStatement]) -> list[dict[str, Any]]:
    """A capture's statements as summary entries (exact percentiles of the real durations,
    through `StatsTable.merge`), by total time."""
    from ..sql import analyze

    groups: dict[str, list[CaptureStatement]] = defaultdict(list)
    for record in captured:
        groups[record.fingerprint].append(record)
    table = StatsTable(max_fingerprints=_MAX_STATEMENTS)
    for fingerprint, records in groups.items():
        durations = [r.duration_s for r in records]
        known_rows = [r.rows for r in records if r.rows is not None and r.sqlstate is None]
        routes: dict[str, int] = defaultdict(int)
        for r in records:
            if r.route:
                routes[r.route] += 1
        info = analyze(records[0].normalized, "postgresql")
        table.merge([{
            "fingerprint": fingerprint,
            "normalized": records[0].normalized,
            "operation": info.operation,
            "system": "postgresql",
            "tables": list(info.tables),
            "calls": len(records),
            "errors": sum(1 for r in records if r.sqlstate is not None),
            "rows": sum(known_rows),
            "rows_calls": len(known_rows),
            "total_time_s": sum(durations),
            "min_time_s": min(durations),
            "max_time_s": max(durations),
            "first_seen": min(r.at for r in records),
            "last_seen": max(r.at + r.duration_s for r in records),
            "routes": dict(routes),
            "histogram": {"gamma": GAMMA, "counts": {}, "samples": durations},
        }])  # fmt: skip
    statements = []
    for stats in table.top(len(table)):
        entry = stats.to_dict()
        entry.update(estimated=False, sources=["capture"], instrumented=True)
        statements.append(entry)
    return statements


def _workload_entry(statement: Any) -> dict[str, Any]:
    entry: dict[str, Any] = statement.to_dict()
    entry.update(
        system="postgresql", min_time_s=None, max_time_s=None, p50_s=None, p99_s=None,
        first_seen=None, last_seen=None, plan_summary=None, estimated=False,
    )  # fmt: skip
    return entry


def combine(
    merged: Merged, captured: list[dict[str, Any]], workload: Workload | None
) -> list[dict[str, Any]]:
    """Every statement once, by total time: the summaries' figures first, a capture's for
    statements no summary lists, then the workload's (pg_stat_statements, say) for the rest;
    ``sources`` names every input that saw it."""
    by_fingerprint: dict[str, dict[str, Any]] = {}
    for entry in merged.statements:
        by_fingerprint[entry["fingerprint"]] = entry
    for entry in captured:
        have = by_fingerprint.get(entry["fingerprint"])
        if have is None:
            by_fingerprint[entry["fingerprint"]] = entry
        else:
            have["sources"] = list(dict.fromkeys([*have["sources"], "capture"]))
    for statement in workload or ():
        have = by_fingerprint.get(statement.fingerprint)
        if have is None:
            by_fingerprint[statement.fingerprint] = _workload_entry(statement)
        else:
            have["sources"] = list(dict.fromkeys([*have["sources"], *statement.sources]))
    return heapq.nlargest(
        len(by_fingerprint), by_fingerprint.values(), key=lambda e: e.get("total_time_s") or 0.0
    )
