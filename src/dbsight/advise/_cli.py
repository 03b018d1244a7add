"""``dbsight advise``: the workload from where the user points (a capture, a running dbsight's
summary, pg_stat_statements), the advice, printed for people or as JSON.

Exit codes: 0 advice given (also when there is nothing to advise), 1 the advisor could not
run (HypoPG missing, database or source unreachable), 2 bad usage.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ..core._dsn import invalid_dsn

__all__ = ["AdviseRequest", "run_advise"]


@dataclass(frozen=True, slots=True)
class AdviseRequest:
    dsn: str
    workload: Path | None = None
    from_url: str | None = None
    pg_stat_statements: bool = False
    token: str | None = None
    verify: bool = False
    keep: bool = False
    json: bool = False
    create_extension: bool = False
    min_savings: float = 0.5


class UsageError(Exception):
    """Bad options: exit 2."""


def check(request: AdviseRequest) -> None:
    if not (request.workload or request.from_url or request.pg_stat_statements):
        raise UsageError("a workload is needed: --workload FILE (a capture of "
                         "dbsight proxy --capture), --from URL (a running dbsight) or "
                         "--pg-stat-statements")  # fmt: skip
    if request.keep and not request.verify:
        raise UsageError("--keep keeps the indexes --verify builds: give --verify too")
    if request.workload is not None and not request.workload.exists():
        raise UsageError(f"--workload: no such file: {request.workload}")
    problem = invalid_dsn(request.dsn)
    if problem:
        raise UsageError(f"--dsn: {problem} (postgresql://user@host:port/dbname)")


def _load(request: AdviseRequest):  # type: ignore[no-untyped-def]
    """The workload, merged by fingerprint from every source given."""
    from dbsight.workload import Workload

    parts: list[Workload] = []
    if request.workload is not None:
        from dbsight.workload import from_capture

        parts.append(from_capture(request.workload))
    if request.from_url is not None:
        from dbsight.workload import from_summary

        parts.append(from_summary(request.from_url, token=request.token))
    if request.pg_stat_statements:
        from dbsight.workload import from_pg_stat_statements

        parts.append(from_pg_stat_statements(request.dsn))
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    return merged


def run_advise(request: AdviseRequest) -> int:
    from ._advisor import AdvisorOptions, advise_indexes
    from ._hypo import AdvisorError, check_hypopg
    from ._render import describe_verify, progress_on, render_advice

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    out = Console(highlight=False)
    try:
        check(request)
    except UsageError as exc:
        err.print(f"dbsight advise: {exc}", markup=False)
        return 2
    if request.create_extension:
        err.print("dbsight advise: --create-extension: CREATE EXTENSION hypopg in the database "
                  "if it is not there (this changes the database)", markup=False)  # fmt: skip
    try:  # before reading a workload that may be large
        check_hypopg(request.dsn, create_extension=request.create_extension)
    except AdvisorError as exc:
        err.print(f"dbsight advise: {exc}", markup=False)
        return 1
    failures: tuple[type[BaseException], ...] = (OSError,)
    try:
        from dbsight.workload import WorkloadError

        failures = (WorkloadError, OSError)
    except ImportError:
        pass
    try:
        workload = _load(request)
    except ImportError as exc:
        err.print(f"dbsight advise: this dbsight cannot read that workload source ({exc})",
                  markup=False)  # fmt: skip
        return 1
    except failures as exc:  # unreadable file, unreachable URL, missing extension
        err.print(f"dbsight advise: {exc}", markup=False)
        return 1

    def before_verify(indexes, where):  # type: ignore[no-untyped-def]
        err.print(describe_verify(indexes, where, request.keep), markup=False)

    options = AdvisorOptions(create_extension=request.create_extension,
                             min_savings=request.min_savings)  # fmt: skip
    try:
        with progress_on(err) as progress:
            advice = advise_indexes(
                request.dsn, workload, verify=request.verify, keep=request.keep,
                options=options, progress=progress, before_verify=before_verify,
            )  # fmt: skip
    except AdvisorError as exc:
        err.print(f"dbsight advise: {exc}", markup=False)
        return 1
    if request.json:
        sys.stdout.write(json.dumps(advice.to_dict(), indent=2) + "\n")
    else:
        render_advice(advice, out)
    return 0
