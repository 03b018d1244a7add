"""The one error the workload loaders raise."""

from __future__ import annotations

__all__ = ["WorkloadError"]


class WorkloadError(Exception):
    """A workload could not be read: a capture file that is unreadable or not a capture, a
    summary URL that does not answer a dbsight summary, a database without
    pg_stat_statements. ``str()`` is one line for the user, saying what to check or do."""
