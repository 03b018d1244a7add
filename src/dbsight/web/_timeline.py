"""The dashboard's last hour: a ring buffer of cumulative snapshots of the metrics registry,
taken every `INTERVAL_S` by a daemon thread, and the rates between them.

No database of its own: `CAPACITY` snapshots of a few dozen numbers each, in memory. The
thread starts on the first use of the dashboard or of ``{prefix}/metrics/timeline`` (not
with every instrumented app: a service nobody looks at pays nothing); after ``configure()``
replaced the runtime, the history starts again (its counters did) when the page next asks. With several workers it reads the registry summed over all of them
(`merged_registry`), so whichever worker answers has the whole service's history.

Each snapshot holds, summed over every label set: database statements and their errors
(``db_client_operations_total``), the statements' duration histogram and its sum
(``db_client_operation_duration_seconds``), and HTTP requests, their time and the time they
spent in the database (``http_server_*``). The document `timeline` builds has, per
interval, statements/s, their p95 (from the histogram's buckets), the error rate, requests/s
and the database's share of request time; the last interval ends now.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .. import _runtime
from ._multiprocess import merged_registry, multiprocess_dir

logger = logging.getLogger("dbsight")

INTERVAL_S = 5.0
CAPACITY = 720  # an hour of 5 s snapshots

_DB_OPS = "db_client_operations"
_DB_DURATION = "db_client_operation_duration_seconds"
_HTTP_DURATION = "http_server_request_duration_seconds"
_HTTP_DB = "http_server_request_db_seconds"


@dataclass(slots=True)
class Snapshot:
    """Cumulative figures at ``at`` (epoch seconds)."""

    at: float
    statements: float = 0.0
    errors: float = 0.0
    db_seconds: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    requests: float = 0.0
    request_seconds: float = 0.0
    request_db_seconds: float = 0.0
    http: bool = False  # whether the registry has HTTP server metrics (an app, not a proxy)


def take_snapshot(runtime: Any) -> Snapshot:
    """The registry's figures now (summed over the workers when there are several)."""
    directory = multiprocess_dir(runtime.settings)
    registry = runtime.registry if directory is None else merged_registry(runtime, directory)
    snap = Snapshot(at=time.time())
    for family in registry.collect():
        name = family.name
        if name == _DB_OPS:
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    snap.statements += sample.value
                    if sample.labels.get("outcome") == "error":
                        snap.errors += sample.value
        elif name == _DB_DURATION:
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    le = float(sample.labels["le"])
                    snap.buckets[le] = snap.buckets.get(le, 0.0) + sample.value
                elif sample.name.endswith("_sum"):
                    snap.db_seconds += sample.value
        elif name == _HTTP_DURATION:
            snap.http = True
            for sample in family.samples:
                if sample.name.endswith("_count"):
                    snap.requests += sample.value
                elif sample.name.endswith("_sum"):
                    snap.request_seconds += sample.value
        elif name == _HTTP_DB:
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    snap.request_db_seconds += sample.value
    return snap


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus's ``histogram_quantile`` over cumulative ``le -> count`` buckets: linear
    within the bucket the rank falls in (None without observations)."""
    bounds = sorted(buckets)
    if not bounds:
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bound: the best known is that bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def interval(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """Rates between two snapshots (a counter that went down, after a restart of a worker
    without a multiprocess directory, counts from zero)."""
    seconds = max(after.at - before.at, 1e-6)

    def delta(a: float, b: float) -> float:
        return b - a if b >= a else b

    statements = delta(before.statements, after.statements)
    errors = delta(before.errors, after.errors)
    buckets = {le: delta(before.buckets.get(le, 0.0), n) for le, n in after.buckets.items()}
    p95 = histogram_quantile(0.95, buckets) if statements > 0 else None
    point: dict[str, Any] = {
        "at": after.at,
        "seconds": round(seconds, 3),
        "statements_per_s": statements / seconds,
        "p95_s": p95,
        "error_rate": errors / statements if statements > 0 else None,
        "db_seconds_per_s": delta(before.db_seconds, after.db_seconds) / seconds,
    }
    if after.http:
        request_s = delta(before.request_seconds, after.request_seconds)
        point["requests_per_s"] = delta(before.requests, after.requests) / seconds
        point["db_share"] = (
            min(delta(before.request_db_seconds, after.request_db_seconds) / request_s, 1.0)
            if request_s > 0
            else None
        )
    return point


class Timeline:
    """The ring buffer and the thread that fills it (see the module docstring)."""

    def __init__(self, interval_s: float = INTERVAL_S, capacity: int = CAPACITY) -> None:
        self.interval_s = interval_s
        self.snapshots: deque[Snapshot] = deque(maxlen=capacity)
        self._runtime: Any = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failed = False

    def start(self) -> None:
        """Start sampling (idempotent; the first snapshot is taken now)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            self.tick(adopt=True)
            self._thread = threading.Thread(
                target=self._loop, name="dbsight-dashboard-timeline", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval_s)
            self.tick()

    def tick(self, *, adopt: bool = False) -> None:
        """One snapshot of the current runtime. The thread samples only the runtime the
        dashboard was last read with: after ``configure()`` it waits until the page (or
        ``/metrics/timeline``) asks again (``adopt``), which starts a new history."""
        runtime = _runtime._runtime  # never configure from here: only report what exists
        if runtime is None or (runtime is not self._runtime and not adopt):
            return
        try:
            snap = take_snapshot(runtime)
        except Exception:
            if not self._failed:  # once: a full disk must not fill the log as well
                self._failed = True
                logger.warning("dbsight: the dashboard's timeline cannot sample", exc_info=True)
            return
        if runtime is not self._runtime:
            self.snapshots.clear()
            self._runtime = runtime
        self.snapshots.append(snap)

    def document(self, runtime: Any) -> dict[str, Any]:
        """The intervals between the snapshots, the last one ending now."""
        self.start()
        if runtime is not self._runtime:  # configure() since the last tick: start again now
            self.tick(adopt=True)
        snapshots = list(self.snapshots) if runtime is self._runtime else []
        now = take_snapshot(runtime)
        if not snapshots:
            snapshots = [now]
        if now.at - snapshots[-1].at >= 0.5:
            snapshots.append(now)
        points = [interval(a, b) for a, b in itertools.pairwise(snapshots)]
        return {
            "interval_s": self.interval_s,
            "since": snapshots[0].at,
            "http": now.http,
            "totals": {
                "statements": now.statements,
                "errors": now.errors,
                "requests": now.requests if now.http else None,
            },
            "points": points,
        }


_timeline: Timeline | None = None
_timeline_lock = threading.Lock()


def timeline() -> Timeline:
    """This process's timeline, started on first use."""
    global _timeline
    if _timeline is None:
        with _timeline_lock:
            if _timeline is None:
                _timeline = Timeline()
    _timeline.start()
    return _timeline


def _forget_after_fork() -> None:
    # a forked worker has the parent's object but not its thread: start afresh
    global _timeline
    _timeline = None


os.register_at_fork(after_in_child=_forget_after_fork)
