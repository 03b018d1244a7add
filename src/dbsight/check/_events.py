"""Failing checks as advice events (issue item 8): one event per failing object, keyed
``check:<name>:<object>``, and ``resolved=True`` when an object that failed in an earlier run
of this process, against the same database, passes now. A check in error resolves nothing:
it did not look."""

from __future__ import annotations

import threading
from typing import Any

from ..advise._events import AdviceEvent, emit
from ._report import CheckReport

__all__ = ["forget_events", "report_events"]

_lock = threading.Lock()
# database -> check name -> {key: (severity, summary, details)} of what failed last time
_failing: dict[str, dict[str, dict[str, tuple[str, str, dict[str, Any]]]]] = {}


def report_events(report: CheckReport) -> None:
    events = []
    with _lock:
        known = _failing.setdefault(report.database, {})
        for result in report.checks:
            if result.status == "error":
                continue
            now: dict[str, tuple[str, str, dict[str, Any]]] = {}
            for finding in result.findings:
                key = f"check:{result.name}:{finding.object}"
                summary = f"{result.title}: {finding.object} ({result.summary})"
                details = {"check": result.name, "database": report.database, **finding.item}
                now[key] = (result.severity, summary, details)
                events.append(AdviceEvent("check", result.severity, key, summary, details))  # type: ignore[arg-type]
            for key, (severity, summary, details) in known.get(result.name, {}).items():
                if key not in now:
                    events.append(
                        AdviceEvent("check", severity, key, summary, details, resolved=True)  # type: ignore[arg-type]
                    )
            known[result.name] = now
    for event in events:  # outside the lock: subscribers may be slow
        emit(event)


def forget_events() -> None:
    """Forget what failed (tests; a process that checks another set of databases)."""
    with _lock:
        _failing.clear()
