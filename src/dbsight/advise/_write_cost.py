"""What an index costs the writes: every INSERT, UPDATE and DELETE on its table maintains it.

The estimate, in the same unit as the read time an index saves (milliseconds over the
workload's window): index entries written (each write statement's calls times the rows it
touches per call, at least one) times the time per entry. That time grows with the btree's
depth, which grows with its size (``hypopg_relation_size``), and gains a random read when the
index is larger than ``shared_buffers`` (its pages are then not all in memory). The constants
are estimates (`AdvisorOptions.index_write_ms`, ``random_read_ms``); ``--verify`` measures the
read side for real.

A table written `AdvisorOptions.max_writes_per_read` times or more for each read gets no index
whatever the estimate says: its reads are too rare to pay for the maintenance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..workload import Workload

__all__ = ["WriteCost", "table_rates", "write_cost"]

_PAGE = 8192
_FANOUT = 256  # btree entries per inner page, roughly: depth = log_256(pages)


@dataclass(frozen=True, slots=True)
class TableRates:
    writes: float  # write statements over the window (calls)
    reads: float
    entries: float  # index entries those writes touch
    writes_per_minute: float
    reads_per_minute: float

    @property
    def writes_per_read(self) -> float | None:
        if self.reads <= 0:
            return None if self.writes <= 0 else math.inf
        return self.writes / self.reads


def table_rates(workload: Workload, names: list[str]) -> TableRates:
    """Rates of the table written as any of ``names`` in the workload's statements."""
    writes = reads = entries = 0.0
    for statement in workload:
        if not any(name in statement.tables for name in names):
            continue
        if statement.writes:
            writes += statement.calls
            rows = statement.rows if statement.rows is not None else statement.calls
            entries += max(float(rows), float(statement.calls))
        elif statement.operation == "select":
            reads += statement.calls
    per_minute = 60.0 / workload.window_s if workload.window_s else 1.0
    return TableRates(
        writes=writes, reads=reads, entries=entries,
        writes_per_minute=sum(workload.writes_per_minute(n) for n in names) if names else 0.0,
        reads_per_minute=reads * per_minute,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class WriteCost:
    rates: TableRates
    index_bytes: int
    ms_per_entry: float
    overhead_ms: float  # over the workload's window
    per_minute: float  # 1 / minutes of the window (1.0 when the window is unknown)
    window_s: float | None = None

    @property
    def unit(self) -> str:
        """How the rates read: per minute, or over the whole workload without a window."""
        return "/min" if self.window_s else " in the workload"

    def to_dict(self, saved_ms: float) -> dict[str, Any]:
        """Rates per minute of the workload's window; over the whole workload when its window
        is unknown (``window_s`` None)."""
        ratio = self.rates.writes_per_read
        return {
            "window_s": self.window_s,
            "writes_per_minute": round(self.rates.writes_per_minute, 3),
            "reads_per_minute": round(self.rates.reads_per_minute, 3),
            "writes_per_read": None if ratio is None or math.isinf(ratio) else round(ratio, 3),
            "index_size_bytes": self.index_bytes,
            "estimated_write_ms_per_minute": round(self.overhead_ms * self.per_minute, 3),
            "estimated_read_ms_saved_per_minute": round(saved_ms * self.per_minute, 3),
        }


def write_cost(
    rates: TableRates, index_bytes: int, *, shared_buffers: int, index_write_ms: float,
    random_read_ms: float, window_s: float | None,
) -> WriteCost:  # fmt: skip
    pages = max(1.0, index_bytes / _PAGE)
    depth = 1.0 + math.log(pages, _FANOUT)
    per_entry = index_write_ms * depth + (random_read_ms if index_bytes > shared_buffers else 0.0)
    return WriteCost(
        rates=rates, index_bytes=index_bytes, ms_per_entry=per_entry,
        overhead_ms=rates.entries * per_entry,
        per_minute=60.0 / window_s if window_s else 1.0, window_s=window_s,
    )  # fmt: skip
