"""``{prefix}/metrics/statement?fingerprint=...``: one statement for the dashboard's page of
it — its statistics, its latency histogram, its recent slow runs with their plans and the
plan analyzer's findings, its N+1 findings and what the analysis advised about it.

Everything comes from what ``/metrics/summary`` reads (summed over the workers when there
are several), so it holds literals exactly when the summary does: only with
``include_query_bodies`` (slow runs' plans are redacted otherwise, see the slow-query log).
"""

from __future__ import annotations

from typing import Any

from ..stats import StatsTable
from ..stats._histogram import GAMMA, decode
from ._insights import insight_log
from ._multiprocess import merged_summary, multiprocess_dir, planned_records, slow_records

# Display bins of the latency histogram: 1-2-5 steps from 10 µs to 1000 s.
_EDGES_S = tuple(
    mantissa * 10.0**exponent for exponent in range(-5, 4) for mantissa in (1.0, 2.0, 5.0)
)


def latency_bins(histogram: dict[str, Any]) -> list[dict[str, Any]]:
    """A `StatsTable` entry's latencies (its durations while it keeps them, else its
    log buckets, each counted at its point of least error) in 1-2-5 bins, from the first
    bin with a call to the last: ``[{"le_s": upper edge, "count": n}, ...]`` (the last
    edge None: beyond the largest)."""
    counts = [0] * (len(_EDGES_S) + 1)

    def add(duration: float, n: int) -> None:
        index = next((i for i, edge in enumerate(_EDGES_S) if duration <= edge), len(_EDGES_S))
        counts[index] += n

    samples = histogram.get("samples")
    if samples:
        for duration in samples:
            add(float(duration), 1)
    else:
        gamma = float(histogram.get("gamma") or GAMMA)
        for index, n in decode(histogram.get("counts") or {}).items():
            high = gamma**index
            low = high / gamma
            add(2 * low * high / (low + high), n)
    used = [i for i, n in enumerate(counts) if n]
    if not used:
        return []
    return [
        {"le_s": _EDGES_S[i] if i < len(_EDGES_S) else None, "count": counts[i]}
        for i in range(used[0], used[-1] + 1)
    ]


def statement_slow_runs(
    recent: list[dict[str, Any]], planned: list[dict[str, Any]], fingerprint: str
) -> list[dict[str, Any]]:
    """The statement's recent slow runs, newest first, followed by its newest run with a
    plan when that one is no longer among them."""
    runs = [record for record in recent if record.get("fingerprint") == fingerprint]
    kept = next((record for record in planned if record.get("fingerprint") == fingerprint), None)
    if kept is not None and not any(
        record.get("plan") is not None and record.get("ts") == kept.get("ts") for record in runs
    ):
        runs.append(kept)
    return runs


def statement_document(runtime: Any, fingerprint: str) -> dict[str, Any] | None:
    """The statement's page, or None when no statistics hold ``fingerprint``."""
    directory = multiprocess_dir(runtime.settings)
    n_plus_one: list[dict[str, Any]]
    if directory is None:
        table: StatsTable = runtime.stats
        slow, planned = slow_records(runtime), planned_records(runtime)
        findings = runtime.components.get("n_plus_one")
        n_plus_one = findings.snapshot() if findings is not None else []
        workers = 1
    else:
        merged = merged_summary(runtime, directory)
        table, slow, planned, n_plus_one, workers = (
            merged.stats, merged.slow, merged.planned, merged.n_plus_one, merged.workers
        )
    entry = table.entry_snapshot(fingerprint)
    if entry is None:
        return None
    histogram = entry.pop("histogram", {}) or {}
    return {
        "service": runtime.settings.service_name,
        "workers": workers,
        "statement": entry,
        "latency": latency_bins(histogram),
        "slow": statement_slow_runs(slow, planned, fingerprint),
        "n_plus_one": [item for item in n_plus_one if item.get("fingerprint") == fingerprint],
        "insights": insight_log().for_fingerprint(fingerprint),
    }
