"""A workload from this process's statistics table: what ``dbsight.stats.top()`` and
``/metrics/summary`` report, with the real statements the parameter sampler kept in memory
(`dbsight.stats.ParameterSamples`, sized by ``advice_samples``).

With a multiprocess directory the table is that of every worker together, as
``/metrics/summary`` reports it (each worker's top 100 statements); the samples are this
process's own (they never leave its memory).
"""

from __future__ import annotations

import math
from typing import Any

from ..stats import FingerprintStats
from ._filter import UTILITY, is_utility
from ._model import MAX_SAMPLES, Sample, Workload, WorkloadStatement

__all__ = ["from_stats"]


def from_stats(runtime: Any = None, *, system: str | None = "postgresql") -> Workload:
    """The statements of ``runtime`` (the current dbsight runtime by default) sent to
    ``system`` (None: every system), with their samples."""
    from .._runtime import get_runtime, parameter_samples
    from ..web._multiprocess import merged_summary, multiprocess_dir

    if runtime is None:
        runtime = get_runtime()
    directory = multiprocess_dir(runtime.settings)
    table = runtime.stats if directory is None else merged_summary(runtime, directory).stats
    sampler = parameter_samples(runtime)
    samples = sampler.snapshot() if sampler is not None else {}
    entries: list[FingerprintStats] = table.top(max(len(table), 1))
    skipped: dict[str, int] = {}
    first, last = math.inf, -math.inf
    statements: list[WorkloadStatement] = []
    for entry in entries:
        if system is not None and entry.system != system:
            skipped["other_systems"] = skipped.get("other_systems", 0) + 1
            continue
        if is_utility(entry.operation, entry.normalized):
            skipped[UTILITY] = skipped.get(UTILITY, 0) + entry.calls
            continue
        first, last = min(first, entry.first_seen), max(last, entry.last_seen)
        statements.append(
            WorkloadStatement(
                fingerprint=entry.fingerprint,
                normalized=entry.normalized,
                operation=entry.operation,
                tables=entry.tables,
                calls=entry.calls,
                total_time_s=entry.total_time_s,
                p95_s=entry.p95_s,
                rows=entry.rows,
                errors=entry.errors,
                routes=dict(entry.routes),
                samples=[
                    Sample(sql, params) for sql, params in samples.get(entry.fingerprint, ())
                ][:MAX_SAMPLES],
                sources=("stats",),
                instrumented=True,
            )
        )
    workload = Workload.of(statements, last - first if last > first else None)
    workload.skipped = skipped
    return workload
