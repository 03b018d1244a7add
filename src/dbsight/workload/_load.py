"""`load_workload`: the workload the analysis commands are given, from any of the sources
at once (``--workload FILE``, ``--from URL`` ..., ``--pg-stat-statements``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .._progress import ProgressCallback
from ._capture import from_capture
from ._errors import WorkloadError
from ._model import Workload
from ._pgss import from_pg_stat_statements
from ._summary import from_summary

__all__ = ["load_workload"]


def load_workload(
    *,
    captures: Sequence[Path | str] = (),
    urls: Sequence[str] = (),
    pg_stat_statements: str | None = None,
    token: str | None = None,
    timeout_s: float = 10.0,
    progress: ProgressCallback | None = None,
) -> Workload:
    """Read every source given and join them by fingerprint.

    ``captures``: capture files (with their rotated backups); ``urls``: running dbsight
    services or proxy admin ports (their ``/metrics/summary``), ``token`` for each;
    ``pg_stat_statements``: the DSN of the database whose pg_stat_statements to read.

    Several summaries are instances of a service, each counting its own traffic: they add
    up (`Workload.combine`). Captures are appended to one another likewise. Those, and
    pg_stat_statements, are then views of the same traffic and are joined without counting
    a statement twice (`Workload.merge`); so do not give both a service and the proxy in
    front of it as ``urls``. ``progress(stage, done, total)`` is told how far the reading
    is: bytes of a capture, then one step per summary and for pg_stat_statements.
    `WorkloadError` when no source is given or one cannot be read.
    """
    if not captures and not urls and pg_stat_statements is None:
        raise WorkloadError(
            "no workload given: name a capture file, a running dbsight's URL or "
            "pg_stat_statements"
        )
    say = progress or (lambda stage, done, total: None)
    views: list[Workload] = []
    combined: Workload | None = None
    for path in captures:
        one = from_capture(path, progress=progress)
        combined = one if combined is None else combined.combine(one)
    if combined is not None:
        views.append(combined)
    combined = None
    for done, url in enumerate(urls):
        say("reading summaries", done, len(urls))
        one = from_summary(url, token=token, timeout_s=timeout_s)
        combined = one if combined is None else combined.combine(one)
    if combined is not None:
        say("reading summaries", len(urls), len(urls))
        views.append(combined)
    if pg_stat_statements is not None:
        say("reading pg_stat_statements", 0, 1)
        views.append(from_pg_stat_statements(pg_stat_statements))
        say("reading pg_stat_statements", 1, 1)
    workload = views[0]
    for view in views[1:]:
        workload = workload.merge(view)
    return workload
