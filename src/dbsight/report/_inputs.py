"""What a report is made of (`ReportInputs`) and the two small readers it needs of its own:
a running dbsight's ``/metrics/summary`` document as it is (`fetch_summary`) and the
statement records of a proxy capture with their times (`read_capture`).

``dbsight.workload.from_summary`` and ``from_capture`` read the same sources into a
`Workload`, which has no per-record times and no slow queries; the report needs both (the
timeline, the real durations, the plans), hence these readers. They stay small on purpose.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..workload import Workload
    from ._timeline import Timeline

SUMMARY_PATH = "/metrics/summary"
SUMMARY_LIMIT = 500  # the most /metrics/summary lists (web._reports.MAX_SUMMARY_TOP)
_EXCERPT = 120


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
    summary itself), asking for up to `SUMMARY_LIMIT` statements."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ReportError(f"--from expects an http:// or https:// URL, got {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith(SUMMARY_PATH):
        path += SUMMARY_PATH
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["limit"] = str(SUMMARY_LIMIT)
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, path, urllib.parse.urlencode(query), "")
    )


def fetch_summary(url: str, *, token: str | None = None, timeout_s: float = 10.0) -> dict[str, Any]:
    """The ``/metrics/summary`` document of a running dbsight, as JSON; `ReportError`
    saying what to check when it cannot be had."""
    target = summary_url(url)
    headers = {"Accept": "application/json", "User-Agent": "dbsight-report"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(target, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as exc:
        hint = {
            401: ": a token is required or was refused (--token)",
            403: ": a token is required or was refused (--token)",
            404: ": is it a dbsight service or the proxy's admin port?",
        }.get(exc.code, "")
        raise ReportError(f"{target} answered {exc.code} {exc.reason}{hint}") from None
    except urllib.error.URLError as exc:
        raise ReportError(f"cannot read {target}: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise ReportError(f"cannot read {target}: {exc or type(exc).__name__}") from None
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        excerpt = " ".join(body[: _EXCERPT * 4].decode("utf-8", "replace").split())[:_EXCERPT]
        raise ReportError(f"{target} did not answer JSON: {excerpt!r}") from None
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
def capture_files(path: Path, rotated: bool = True) -> list[Path]:
    """The capture's files, oldest first: ``path.N`` ... ``path.1``, then ``path``."""
    files = [path]
    if rotated:
        n = 1
        while (backup := path.with_name(f"{path.name}.{n}")).exists():
            files.insert(0, backup)
            n += 1
    return files


def read_capture(path: str | Path, *, rotated: bool = True) -> list[CaptureStatement]:
    """The statement records of a capture written by ``dbsight proxy --capture`` (and of
    its rotated files), in file order; parameters, if any, are not read."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"no capture file at {path}")
    statements: list[CaptureStatement] = []
    for file in capture_files(path, rotated):
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ReportError(f"cannot read the capture {file}: {exc}") from None
        for number, line in enumerate(lines, 1):
            if '"statement"' not in line:
                continue
            try:
                record = json.loads(line)
                if record.get("type") != "statement":
                    continue
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
                if file is path and number == len(lines):
                    continue  # the last line of a capture still being written
                raise ReportError(
                    f"{file}:{number} is not a capture record of dbsight proxy --capture"
                ) from None
    return statements
