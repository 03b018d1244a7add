"""What a report is made of (`ReportInputs`) and the two views it needs of its sources: a
running dbsight's ``/metrics/summary`` document as it is (`fetch_summary`) and the statement
records of a proxy capture with their times (`read_capture`).

``dbsight.workload.from_summary`` and ``from_capture`` add the same sources up into a
`Workload`, which has no per-record times and no slow queries; the report needs both (the
timeline, the real durations, the plans). Both views are read by the workload package's
readers (one fetcher of the summary, one reader of the capture format); the report adds the
checks of what it shows and its own error type.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..workload import Workload
    from ._timeline import Timeline

SUMMARY_PATH = "/metrics/summary"
SUMMARY_LIMIT = 500  # the most /metrics/summary lists (web._reports.MAX_SUMMARY_TOP)


class ReportError(Exception):
    """An input of the report cannot be read; ``str()`` is the one-line message."""


@dataclass(frozen=True, slots=True)
class CaptureStatement:
    """One statement record of a capture (literal-free: the normalized text only)."""

    session: int
    at: float  # wall-clock start, seconds
    duration_s: float
    fingerprint: str
    normalized: str
    rows: int | None
    sqlstate: str | None
    route: str | None


@dataclass(slots=True)
class ReportInputs:
    """Everything one report shows. Each part is optional; `build_report` and `report_json`
    leave out the sections that have nothing.

    ``summaries``: ``/metrics/summary`` documents (several instances are merged by
    fingerprint). ``captured``: statement records of a capture (real durations, the
    timeline). ``workload``: statements from another source, such as pg_stat_statements;
    the ones no summary lists are shown, marked when dbsight did not instrument them.
    ``timeline``: statements/s and p95 per time bucket; computed from ``captured`` (else the
    slow queries) when None. ``slow`` and ``n_plus_one``: taken from the summaries when
    None. ``advice``: ``IndexAdvice.to_dict()``; ``checks``: ``CheckReport.to_dict()``.
    ``sources``: where the inputs came from (URLs, file names), for the header.
    ``include_query_bodies``: plans and advice keep their constants (never by default).
    """

    summaries: list[dict[str, Any]] = field(default_factory=list)
    captured: list[CaptureStatement] = field(default_factory=list)
    workload: Workload | None = None
    timeline: Timeline | None = None
    slow: list[dict[str, Any]] | None = None
    advice: dict[str, Any] | None = None
    checks: dict[str, Any] | None = None
    n_plus_one: list[dict[str, Any]] | None = None
    sources: list[str] = field(default_factory=list)
    generated_at: float = field(default_factory=time.time)
    include_query_bodies: bool = False


# -- /metrics/summary ----------------------------------------------------------------------
def summary_url(url: str) -> str:
    """The summary URL of ``url`` (a service's or proxy admin port's base URL, or the
    summary itself), asking for up to `SUMMARY_LIMIT` statements by total time."""
    from ..workload import WorkloadError
    from ..workload import summary_url as workload_summary_url

    try:
        return workload_summary_url(url, SUMMARY_LIMIT)
    except WorkloadError as exc:
        raise ReportError(f"--from {exc}") from None


def fetch_summary(url: str, *, token: str | None = None, timeout_s: float = 10.0) -> dict[str, Any]:
    """The ``/metrics/summary`` document of a running dbsight, as JSON (read by
    `dbsight.workload.fetch_summary`); `ReportError` saying what to check when it cannot be
    had, or when it lacks a figure the report shows."""
    from ..workload import WorkloadError
    from ..workload import fetch_summary as workload_fetch_summary

    target = summary_url(url)
    try:
        document = workload_fetch_summary(url, token=token, timeout_s=timeout_s)
    except WorkloadError as exc:
        raise ReportError(str(exc)) from None
    problem = summary_problem(document)
    if problem:
        raise ReportError(f"{target} did not answer a dbsight summary: {problem}")
    return document


_NUMBERS = ("calls", "total_time_s", "min_time_s", "max_time_s", "first_seen", "last_seen")


def summary_problem(document: Any) -> str | None:
    """What makes ``document`` not a ``/metrics/summary`` the report can read, or None."""
    if not isinstance(document, dict) or not isinstance(document.get("top"), list):
        return "no 'top' list"
    for index, entry in enumerate(document["top"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("fingerprint"), str):
            return f"top[{index}] has no fingerprint"
        for key in _NUMBERS:
            value = entry.get(key)
            if not isinstance(value, int | float) or isinstance(value, bool):
                return f"top[{index}] has no number {key!r}"
    for key in ("slow", "n_plus_one"):
        if not isinstance(document.get(key, []), list):
            return f"{key!r} is not a list"
    return None


# -- captures ------------------------------------------------------------------------------
def read_capture(path: str | Path, *, rotated: bool = True) -> list[CaptureStatement]:
    """The statement records of a capture written by ``dbsight proxy --capture`` (and of
    its rotated files), in file order, read by `dbsight.workload.capture_lines`; parameters,
    if any, are not read. A line that is not a record is refused, but for the last line of
    the file still being written (cut short)."""
    from ..workload import WorkloadError, capture_lines

    path = Path(path)
    if not path.is_file():
        raise ReportError(f"no capture file at {path}")
    statements: list[CaptureStatement] = []
    try:
        for line in capture_lines(path, rotated=rotated):
            record = line.record
            if record is not None and record["type"] != "statement":
                continue
            try:
                if record is None:
                    raise ValueError(line.problem)
                rows = record.get("rows")
                statements.append(
                    CaptureStatement(
                        session=int(record.get("session") or 0),
                        at=float(record["at"]),
                        duration_s=float(record["duration_s"]),
                        fingerprint=str(record["fingerprint"]),
                        normalized=str(record.get("normalized") or ""),
                        rows=int(rows) if rows is not None else None,
                        sqlstate=record.get("sqlstate"),
                        route=record.get("route"),
                    )
                )
            except (ValueError, KeyError, TypeError, AttributeError):
                if line.file == path and line.last:
                    continue  # the last line of a capture still being written
                raise ReportError(
                    f"{line.file}:{line.number} is not a capture record of dbsight proxy --capture"
                ) from None
    except WorkloadError as exc:
        raise ReportError(str(exc)) from None
    return statements
