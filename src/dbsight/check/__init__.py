"""Database checks, PgHero's list with its thresholds: unused, duplicate and invalid indexes,
sequences near their limit, transaction-ID wraparound, tables read by sequential scans, cache
hit ratio, connections, sessions idle in transaction, long-running and blocked queries, dead
tuples and stale statistics.

    from dbsight.check import run_checks
    report = run_checks("postgresql://app@db/shop", replicas=["postgresql://app@replica/shop"])
    for check in report.failed("warning"):
        print(check.title, check.summary, check.hint, sep="\\n")

Checks only read (READ ONLY transactions under a statement timeout); their hints print the
statements that would fix what they found (DROP INDEX CONCURRENTLY, VACUUM ...) for a person
to run. `dbsight check` is the command line.
"""

from ._events import forget_events
from ._report import SEVERITIES, CheckError, CheckReport, CheckResult, Finding
from ._runner import CHECK_NAMES, CHECKS, run_checks
from ._thresholds import CheckThresholds

__all__ = [
    "CHECKS",
    "CHECK_NAMES",
    "SEVERITIES",
    "CheckError",
    "CheckReport",
    "CheckResult",
    "CheckThresholds",
    "Finding",
    "forget_events",
    "run_checks",
]
