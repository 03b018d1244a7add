"""What ``/metrics`` and ``/metrics/summary`` report, for one process or summed over the
workers of a multi-process service (see ``_multiprocess``)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client.exposition import choose_encoder

from ..export.slowlog import _timestamp
from ._multiprocess import merged_registry, merged_summary, multiprocess_dir, slow_records

SUMMARY_TOP = 20
SUMMARY_ORDER = "total_time"
MAX_SUMMARY_TOP = 500


def metrics_exposition(runtime: Any, accept: str) -> tuple[bytes, str]:
    """The runtime's registry in the format ``accept`` asks for (Prometheus text, or
    OpenMetrics for ``application/openmetrics-text``): body and content type."""
    encoder, content_type = choose_encoder(accept)
    directory = multiprocess_dir(runtime.settings)
    registry = runtime.registry if directory is None else merged_registry(runtime, directory)
    return encoder(registry), content_type


def summary(
    runtime: Any, *, limit: int = SUMMARY_TOP, order_by: str = SUMMARY_ORDER
) -> dict[str, Any]:
    """The ``/metrics/summary`` document: top fingerprints, recent slow queries, N+1
    findings; read by ``dbsight demo`` and ``dbsight top``, so its keys are an interface.

    ``totals`` counts every statement, however few ``top`` lists (``limit``): fingerprints,
    calls, errors, rows and time in seconds.
    """
    directory = multiprocess_dir(runtime.settings)
    if directory is None:
        findings = runtime.components.get("n_plus_one")
        top = runtime.stats.top(limit, order_by)
        totals = runtime.stats.totals()
        slow = slow_records(runtime)
        n_plus_one = findings.snapshot() if findings is not None else []
        workers = 1
    else:
        merged = merged_summary(runtime, directory)
        top = merged.stats.top(limit, order_by)
        totals = merged.totals
        slow, n_plus_one, workers = merged.slow, merged.n_plus_one, merged.workers
    return {
        "service": runtime.settings.service_name,
        "generated_at": _timestamp(time.time()),
        "workers": workers,
        "totals": totals.to_dict(),
        "top": [stats.to_dict() for stats in top],
        "slow": slow,
        "n_plus_one": n_plus_one,
    }
