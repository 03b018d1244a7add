"""N+1 detection: one request running the same statement shape again and again (a query per
row of an earlier result, the classic ORM lazy-load) instead of one query for all rows.

At the end of a request, every fingerprint in ``RequestContext.fingerprints`` (the recorder
tallies every statement but transaction control) that ran at least ``n_plus_one_threshold``
times for at least ``n_plus_one_min_total_ms`` in total is a finding: many cheap repeats of
a 0.1 ms lookup are left alone, the time threshold keeps the warnings about cost.
`report_n_plus_one` logs each finding to ``dbsight.n_plus_one`` (once a minute at most per
route and statement), counts it in
``db_client_n_plus_one_total{route}`` and keeps it in the runtime's `NPlusOneLog`, which
``/metrics/summary`` shows.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..export.logging import FallbackJsonLog

if TYPE_CHECKING:
    from .._runtime import Runtime
    from ..core import RequestContext

N_PLUS_ONE_LOGGER = "dbsight.n_plus_one"
# (route, fingerprint) pairs kept; the least recently seen goes first.
MAX_FINDINGS = 500
# A finding is logged at most once per this many seconds per (route, fingerprint): an
# endpoint with an N+1 pattern has it on every request, and one warning says it; the counter
# and /metrics/summary still count every occurrence.
LOG_INTERVAL_S = 60.0

log = FallbackJsonLog(N_PLUS_ONE_LOGGER, logging.WARNING)


@dataclass(frozen=True, slots=True)
class NPlusOneFinding:
    """One statement shape repeated within one request."""

    route: str | None
    fingerprint: str
    normalized: str
    count: int
    total_s: float

    @property
    def total_ms(self) -> float:
        return self.total_s * 1000.0


def find_n_plus_one(
    request: RequestContext, threshold: int, min_total_ms: float
) -> list[NPlusOneFinding]:
    """The findings of ``request``, most executions first."""
    min_total_s = min_total_ms / 1000.0
    findings = [
        NPlusOneFinding(request.route, fingerprint, tally.normalized, tally.count, tally.total_s)
        for fingerprint, tally in list(request.fingerprints.items())
        if tally.count >= threshold and tally.total_s >= min_total_s
    ]
    findings.sort(key=lambda finding: (-finding.count, -finding.total_s))
    return findings


class _Entry:
    """What the log keeps per (route, fingerprint)."""

    __slots__ = ("route", "fingerprint", "normalized", "count", "total_ms", "requests",
                 "last_seen", "last_request_id", "last_logged")

    def __init__(self, route: str | None, fingerprint: str, normalized: str) -> None:
        self.route = route
        self.fingerprint = fingerprint
        self.normalized = normalized
        self.count = 0  # executions in the worst request
        self.total_ms = 0.0  # that request's time for them
        self.requests = 0  # requests it was found in
        self.last_seen = 0.0
        self.last_request_id: str | None = None
        self.last_logged = float("-inf")  # monotonic time of its last warning

    def add(
        self, count: int, total_ms: float, requests: int, seen: float, request_id: str | None
    ) -> None:
        if (count, total_ms) > (self.count, self.total_ms):
            self.count, self.total_ms = count, total_ms
        self.requests += requests
        if seen >= self.last_seen:
            self.last_seen = seen
            self.last_request_id = request_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "fingerprint": self.fingerprint,
            "normalized": self.normalized,
            "count": self.count,
            "total_ms": round(self.total_ms, 3),
            "requests": self.requests,
            "last_seen": self.last_seen,
            "last_request_id": self.last_request_id,
        }


class NPlusOneLog:
    """The N+1 findings of this process (or, after ``merge()``, of several workers), one
    entry per (route, fingerprint), at most ``max_entries`` of them.

    ``NPlusOneLog`` is its own ``runtime.component("n_plus_one", NPlusOneLog)`` factory, hence
    the ``runtime`` argument it does not need.
    """

    def __init__(self, runtime: Runtime | None = None, *, max_entries: int = MAX_FINDINGS) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple[str | None, str], _Entry] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def record(
        self, finding: NPlusOneFinding, request_id: str | None, seen: float | None = None
    ) -> bool:
        """Add one request's finding; True when it is due a warning (its first in
        `LOG_INTERVAL_S` for its route and fingerprint)."""
        entry = self._add(
            finding.route,
            finding.fingerprint,
            finding.normalized,
            finding.count,
            finding.total_ms,
            1,
            time.time() if seen is None else seen,
            request_id,
        )
        now = time.monotonic()
        with self._lock:
            if now - entry.last_logged < LOG_INTERVAL_S:
                return False
            entry.last_logged = now
            return True

    def snapshot(self) -> list[dict[str, Any]]:
        """Every entry as the ``n_plus_one`` items of ``/metrics/summary``, newest first."""
        with self._lock:
            entries = [entry.to_dict() for entry in self._entries.values()]
        entries.sort(key=lambda entry: entry["last_seen"], reverse=True)
        return entries

    def merge(self, entries: list[dict[str, Any]]) -> None:
        """Add another log's ``snapshot()`` (another worker's): counts and times keep the
        worst request, ``requests`` add up, the newest sighting wins ``last_seen``."""
        for item in entries:
            try:
                route, fingerprint = item.get("route"), str(item["fingerprint"])
                normalized = str(item.get("normalized", ""))
                count, total_ms = int(item["count"]), float(item["total_ms"])
                requests, seen = int(item.get("requests", 1)), float(item.get("last_seen", 0.0))
            except (KeyError, TypeError, ValueError):
                continue  # not an entry of ours: skip it rather than fail the whole merge
            self._add(
                route, fingerprint, normalized, count, total_ms, requests, seen,
                item.get("last_request_id"),
            )

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()

    def _add(
        self,
        route: str | None,
        fingerprint: str,
        normalized: str,
        count: int,
        total_ms: float,
        requests: int,
        seen: float,
        request_id: str | None,
    ) -> _Entry:
        key = (route, fingerprint)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                if len(self._entries) >= self.max_entries:
                    oldest = min(self._entries.values(), key=lambda e: e.last_seen)
                    del self._entries[(oldest.route, oldest.fingerprint)]
                entry = self._entries[key] = _Entry(route, fingerprint, normalized)
            entry.add(count, total_ms, requests, seen, request_id)
            return entry


def report_n_plus_one(runtime: Runtime, request: RequestContext) -> list[NPlusOneFinding]:
    """Detect ``request``'s findings with the runtime's thresholds; log, count and keep each
    (call it at the end of the request)."""
    settings = runtime.settings
    findings = find_n_plus_one(
        request, settings.n_plus_one_threshold, settings.n_plus_one_min_total_ms
    )
    if not findings:
        return findings
    store = runtime.component("n_plus_one", NPlusOneLog)
    counters = [
        count for sink in runtime.sinks if (count := getattr(sink, "count_n_plus_one", None))
    ]
    # the alert notifier (dbsight.notify) is handed every finding; it deduplicates them
    notifiers = [
        hook for sink in runtime.sinks if (hook := getattr(sink, "on_n_plus_one", None))
    ]
    for finding in findings:
        for count in counters:
            count(finding.route)
        for notify in notifiers:
            try:
                notify(finding)
            except Exception:  # the notifier's failure never reaches the request
                logging.getLogger("dbsight").debug("dbsight: N+1 alert failed", exc_info=True)
        if not store.record(finding, request.request_id):
            continue
        log.log(
            logging.WARNING,
            "N+1 queries on %s: %d x %s (%.1f ms)",
            finding.route,
            finding.count,
            finding.fingerprint,
            finding.total_ms,
            extra={
                "route": finding.route,
                "fingerprint": finding.fingerprint,
                "count": finding.count,
                "total_ms": round(finding.total_ms, 3),
                "normalized": finding.normalized,
                # explicit, not only from the context: a QueueHandler formats elsewhere
                "request_id": request.request_id,
                "trace_id": request.trace_id,
                "span_id": request.span_id,
            },
        )
    return findings
