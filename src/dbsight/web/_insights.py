"""What the analysis found in this process, for the dashboard: index advice (with its
measured before/after when verified), plan findings, failing database checks and
regressions, as the `dbsight.advise` events that reported them.

`InsightLog` subscribes to those events (``dbsight.advise.subscribe``) and keeps the latest
event per key (a resolved one replaces the finding it resolves), at most `MAX_INSIGHTS`,
dropping resolved then oldest first. The events hold no literals (their producers build
them from normalized statements, names and numbers), so neither does the document. Events
of another process (a worker that did not answer, ``dbsight advise`` on the command line)
are not here: each process shows what it ran.
"""

from __future__ import annotations

import threading
from typing import Any

MAX_INSIGHTS = 500


class InsightLog:
    def __init__(self, capacity: int = MAX_INSIGHTS) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {}

    def __call__(self, event: Any) -> None:
        """The `dbsight.advise.subscribe` callback."""
        item = event.to_dict()
        with self._lock:
            self._items.pop(item["key"], None)  # re-inserted last: the newest
            self._items[item["key"]] = item
            while len(self._items) > self.capacity:
                resolved = next((k for k, v in self._items.items() if v["resolved"]), None)
                del self._items[resolved if resolved is not None else next(iter(self._items))]

    def items(self) -> list[dict[str, Any]]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._items.values()))

    def for_fingerprint(self, fingerprint: str) -> list[dict[str, Any]]:
        """The insights about one statement (index advice serving it, its plan findings)."""
        found = []
        for item in self.items():
            details = item.get("details") or {}
            if details.get("fingerprint") == fingerprint or fingerprint in (
                details.get("fingerprints") or ()
            ):
                found.append(item)
        return found


_log: InsightLog | None = None
_lock = threading.Lock()


def insight_log() -> InsightLog:
    """This process's log, subscribed to the analysis' events on first use (the dashboard
    and its endpoints are set up before the analysis runs)."""
    global _log
    if _log is None:
        with _lock:
            if _log is None:
                from ..advise._events import subscribe

                log = InsightLog()
                subscribe(log)
                _log = log
    return _log


def insights_document() -> dict[str, Any]:
    items = insight_log().items()
    return {
        "insights": items,
        "counts": {
            kind: sum(1 for i in items if i["kind"] == kind and not i["resolved"])
            for kind in ("index", "plan", "check", "regression")
        },
    }
