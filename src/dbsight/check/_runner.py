"""`run_checks`: every check against one database, each in its own read-only transaction, so
that one failing query (permission denied, a timeout) leaves the others running."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import psycopg

from .._progress import ProgressCallback as Progress
from ..core._dsn import describe_dsn, first_line
from ._activity import BLOCKED_QUERIES, CONNECTIONS, IDLE_IN_TRANSACTION, LONG_RUNNING_QUERIES
from ._base import Check, Context, Outcome
from ._cache import CACHE_HIT_RATIO, SEQUENTIAL_SCANS
from ._events import report_events
from ._indexes import DUPLICATE_INDEXES, INVALID_INDEXES, UNUSED_INDEXES
from ._maintenance import DEAD_TUPLES, TRANSACTION_ID_WRAPAROUND, VACUUM_ANALYZE
from ._report import CheckError, CheckReport, CheckResult
from ._sequences import SEQUENCES
from ._session import connect
from ._thresholds import CheckThresholds

__all__ = ["CHECKS", "CHECK_NAMES", "run_checks"]

# In the order they are shown: what can stop the database first, then waste, then activity.
CHECKS: tuple[Check, ...] = (
    TRANSACTION_ID_WRAPAROUND,
    SEQUENCES,
    INVALID_INDEXES,
    DUPLICATE_INDEXES,
    UNUSED_INDEXES,
    SEQUENTIAL_SCANS,
    CACHE_HIT_RATIO,
    DEAD_TUPLES,
    VACUUM_ANALYZE,
    CONNECTIONS,
    IDLE_IN_TRANSACTION,
    LONG_RUNNING_QUERIES,
    BLOCKED_QUERIES,
)
CHECK_NAMES: tuple[str, ...] = tuple(check.name for check in CHECKS)
DEFAULT_TIMEOUT_S = 10.0



def run_checks(
    dsn: str,
    *,
    replicas: Sequence[str] = (),
    thresholds: CheckThresholds | None = None,
    only: Iterable[str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: Progress | None = None,
    emit_events: bool = True,
) -> CheckReport:
    """Run the database checks (PgHero's list and thresholds) against ``dsn``.

    Only reads: each check is a READ ONLY transaction under ``statement_timeout`` =
    ``timeout_s``; the statements in the hints are printed, never run. ``replicas`` are the
    DSNs of streaming replicas: an index scanned on one of them is not unused. ``only`` names
    the checks to run (`CHECK_NAMES`, all by default). ``progress(check, done, total)`` is
    called before each check. Failing checks are emitted as advice events (kind "check"), and
    a finding that failed in an earlier run of this process and passes now as resolved.

    Raises `CheckError` when ``dsn`` cannot be reached (a replica that cannot be makes only
    the unused-index check an error) and `ValueError` for an unknown check name.
    """
    thresholds = thresholds or CheckThresholds()
    checks = _select(only)
    session = connect(dsn, timeout_s=timeout_s)
    context = Context(session, thresholds, tuple(replicas), timeout_s)
    results = []
    try:
        for done, check in enumerate(checks):
            if progress is not None:
                progress(check.name, done, len(checks))
            results.append(_run_one(check, context))
    finally:
        session.close()
    if progress is not None:
        progress("", len(checks), len(checks))
    report = CheckReport(
        database=describe_dsn(dsn),
        checked_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        checks=tuple(results),
    )
    if emit_events:
        report_events(report)
    return report


def _select(only: Iterable[str] | None) -> tuple[Check, ...]:
    if only is None:
        return CHECKS
    wanted = list(only)
    unknown = [name for name in wanted if name not in CHECK_NAMES]
    if unknown:
        raise ValueError(
            f"unknown check {', '.join(map(repr, unknown))}; "
            f"the checks are {', '.join(CHECK_NAMES)}"
        )
    return tuple(check for check in CHECKS if check.name in wanted)


def _run_one(check: Check, context: Context) -> CheckResult:
    started = time.monotonic()
    try:
        with context.session.transaction():
            outcome = check.run(context)
    except (psycopg.Error, CheckError) as exc:
        message = first_line(exc)
        if isinstance(exc, psycopg.errors.QueryCanceled):
            message = f"{message} (after {time.monotonic() - started:.1f} s)"
        return CheckResult(check.name, check.title, check.severity, "error", message)
    return _result(check, outcome)


def _result(check: Check, outcome: Outcome) -> CheckResult:
    failed = bool(outcome.findings)
    items = outcome.items if outcome.items is not None else [f.item for f in outcome.findings]
    return CheckResult(
        name=check.name,
        title=check.title,
        severity=outcome.severity or check.severity,
        status="failed" if failed else "ok",
        summary=outcome.summary,
        items=tuple(items),
        hint=outcome.hint if failed else None,
        findings=tuple(outcome.findings),
    )
