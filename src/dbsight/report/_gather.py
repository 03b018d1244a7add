"""`gather`: a report's inputs from where ``dbsight report`` is pointed: running instances
(``--from``), a proxy capture (``--workload``) and the database (``--dsn``: its checks,
pg_stat_statements and the index advice for the workload seen).

The analysis packages are imported when a DSN asks for them. A part that fails (HypoPG
missing, the database refusing pg_stat_statements) does not cost the report: its section
says why (``"error"`` in its document) and the caller is told through ``warn``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._progress import ProgressCallback as Progress
from ._inputs import ReportInputs, fetch_summary, read_capture
from ._merge import capture_statements, combine, merge_summaries



def _quiet(stage: str, done: int, total: int) -> None:
    pass


def gather(
    urls: Sequence[str] = (),
    workload: str | Path | None = None,
    dsn: str | None = None,
    *,
    token: str | None = None,
    timeout_s: float = 10.0,
    include_query_bodies: bool = False,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
) -> ReportInputs:
    """Read every input; `ReportError` when a summary or the capture cannot be read."""
    progress = progress or _quiet
    warn = warn or (lambda message: None)
    summaries = []
    for done, url in enumerate(urls):
        progress("reading summaries", done, len(urls))
        summaries.append(fetch_summary(url, token=token, timeout_s=timeout_s))
    if urls:
        progress("reading summaries", len(urls), len(urls))
    captured = read_capture(workload) if workload is not None else []
    inputs = ReportInputs(
        summaries=summaries,
        captured=captured,
        sources=[*urls, *([str(workload)] if workload is not None else [])],
        include_query_bodies=include_query_bodies,
    )
    if dsn is not None:
        inputs.checks = _checks(dsn, warn)
        inputs.workload = _pg_stat_statements(dsn, warn)
        inputs.advice = _advice(dsn, _advice_workload(inputs, workload), progress, warn)
    return inputs


def _failed(what: str, exc: Exception, warn: Callable[[str], None]) -> str:
    """Tell the caller that ``what`` failed; the reason, for the report's section."""
    warn(f"{what}: {exc}")
    return str(exc)


def _unavailable(exc: ImportError) -> Exception:
    # psycopg (the "analysis" extra) or a part of this dbsight missing: say which
    return RuntimeError(f"not available ({exc.name or exc}): pip install 'dbsight[analysis]'")


def _checks(dsn: str, warn: Callable[[str], None]) -> dict[str, Any]:
    try:
        from ..check import CheckError, run_checks
    except ImportError as exc:
        return {"database": None, "checked_at": None, "checks": [],
                "error": _failed("database checks", _unavailable(exc), warn)}  # fmt: skip
    try:
        return run_checks(dsn).to_dict()
    except CheckError as exc:
        return {"database": None, "checked_at": None, "checks": [],
                "error": _failed("database checks", exc, warn)}  # fmt: skip


def _pg_stat_statements(dsn: str, warn: Callable[[str], None]) -> Any:
    try:
        from ..workload import WorkloadError, from_pg_stat_statements
    except ImportError as exc:
        _failed("pg_stat_statements", _unavailable(exc), warn)
        return None
    try:
        return from_pg_stat_statements(dsn)
    except WorkloadError as exc:
        _failed("pg_stat_statements", exc, warn)
        return None


def _advice_workload(inputs: ReportInputs, capture: str | Path | None) -> Any:
    """The statements the report shows as a `Workload` (samples from the capture when it
    has parameters), joined with pg_stat_statements'."""
    from ..workload import Workload, WorkloadStatement

    entries = combine(merge_summaries(inputs.summaries), capture_statements(inputs.captured), None)
    workload = Workload.of(
        WorkloadStatement(
            fingerprint=e["fingerprint"],
            normalized=e["normalized"],
            operation=e.get("operation") or "other",
            tables=tuple(e.get("tables") or ()),
            calls=int(e.get("calls") or 0),
            total_time_s=float(e.get("total_time_s") or 0.0),
            p95_s=e.get("p95_s"),
            rows=e.get("rows"),
            errors=int(e.get("errors") or 0),
            routes=dict(e.get("routes") or {}),
            sources=tuple(e.get("sources") or ()),
        )
        for e in entries
    )
    if capture is not None:
        from ..workload import from_capture

        workload = workload.merge(from_capture(capture))  # the real parameters, if captured
    if inputs.workload is not None:
        workload = workload.merge(inputs.workload)
    return workload


def _advice(dsn: str, workload: Any, progress: Progress, warn: Callable[[str], None]) -> Any:
    try:
        from ..advise import AdvisorError, advise_indexes
    except ImportError as exc:
        return {"indexes": [], "rejected": [], "findings": [],
                "error": _failed("index advice", _unavailable(exc), warn)}  # fmt: skip
    try:
        return advise_indexes(dsn, workload, progress=progress).to_dict()
    except AdvisorError as exc:
        return {"indexes": [], "rejected": [], "findings": [],
                "error": _failed("index advice", exc, warn)}  # fmt: skip
