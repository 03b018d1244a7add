"""Workloads for the analysis: statements with their calls, times and real samples, from
dbsight's statistics, a proxy capture or pg_stat_statements, joined by fingerprint."""

from ._model import WRITE_OPERATIONS, Sample, Workload, WorkloadStatement

__all__ = ["WRITE_OPERATIONS", "Sample", "Workload", "WorkloadStatement"]
