"""Workloads for the analysis: statements with their calls, times and real samples, from
dbsight's statistics, a proxy capture, a running dbsight's summary or pg_stat_statements,
joined by fingerprint.

    from dbsight.workload import from_capture, from_pg_stat_statements
    workload = from_capture("workload.jsonl").merge(from_pg_stat_statements(dsn))
"""

from ._capture import CaptureLine, capture_files, capture_lines, capture_records, from_capture
from ._errors import WorkloadError
from ._load import load_workload
from ._model import MAX_SAMPLES, WRITE_OPERATIONS, Sample, Workload, WorkloadStatement
from ._pgss import ANALYSIS_MARK, from_pg_stat_statements
from ._stats import from_stats
from ._summary import fetch_summary, from_summary, summary_url, workload_of_summary

__all__ = [
    "ANALYSIS_MARK",
    "MAX_SAMPLES",
    "WRITE_OPERATIONS",
    "CaptureLine",
    "Sample",
    "Workload",
    "WorkloadError",
    "WorkloadStatement",
    "capture_files",
    "capture_lines",
    "capture_records",
    "fetch_summary",
    "from_capture",
    "from_pg_stat_statements",
    "from_stats",
    "from_summary",
    "load_workload",
    "summary_url",
    "workload_of_summary",
]
