"""Per-fingerprint statistics, like ``pg_stat_statements`` but across databases and with
the routes that ran each statement.

`StatsTable.record` is on every query's path: it does a dictionary lookup and a handful of
additions, without a lock unless it adds a key (see `dbsight.stats._table_fold` for why that
is safe with a GIL; free-threaded builds hold the lock throughout). Everything derived (mean,
percentiles, ordering) is computed when somebody reads the table. Memory is bounded by
``max_fingerprints``: when a new fingerprint would exceed it, the least significant tenth
of the table (lowest total time, oldest first among equals) is evicted in one go, so
eviction is amortised. Each fingerprint's latencies take bounded memory too: up to
`EXACT_SAMPLES` durations (8 bytes each), then a histogram instead (see `_histogram`).
"""

from __future__ import annotations

import heapq
import operator
import sys
import threading
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from . import _histogram
from ._histogram import EXACT_SAMPLES, GAMMA
from ._table_fold import MAX_DATABASES, MAX_ROUTES, EntryCounters, count_batch, fold_durations

# Whether the interpreter runs without a GIL, where `record` must hold the lock throughout.
_FREE_THREADED = not getattr(sys, "_is_gil_enabled", lambda: True)()

if TYPE_CHECKING:
    from ..core import QueryEvent


# What `StatsTable.top` orders by (largest first), each the FingerprintStats field it is: one
# list for dbsight.stats.top, /metrics/summary?order_by= and dbsight top --sort.
ORDER_FIELDS: Final = {
    "total_time": "total_time_s",
    "mean_time": "mean_time_s",
    "calls": "calls",
    "rows": "rows",
    "errors": "errors",
    "max_time": "max_time_s",
    "p95": "p95_s",
}
ORDER_BY: Final = tuple(ORDER_FIELDS)


def check_order_by(order_by: str) -> str:
    """``order_by`` when it is one of `ORDER_BY`; a ValueError listing them otherwise."""
    if order_by not in ORDER_FIELDS:
        raise ValueError(f"order_by must be one of {', '.join(ORDER_BY)} (got {order_by!r})")
    return order_by


def stats_order_key(order_by: str) -> Callable[[FingerprintStats], float]:
    """The sort key of `FingerprintStats` for ``order_by`` (one of `ORDER_BY`); unknown rows
    sort below 0 rows, as in `StatsTable.top`."""
    if check_order_by(order_by) == "rows":
        return _known_rows
    return operator.attrgetter(ORDER_FIELDS[order_by])


def _known_rows(stats: FingerprintStats) -> float:
    return -1 if stats.rows is None else stats.rows


@dataclass(frozen=True, slots=True)
class FingerprintStats:
    """A read-only copy of one fingerprint's statistics (times in seconds, wall times epoch).

    ``p50_s``, ``p95_s`` and ``p99_s`` follow numpy's default ``linear`` method: exact for up
    to `EXACT_SAMPLES` calls, within 1.96 % beyond (`_histogram.RELATIVE_ERROR`).

    ``rows`` adds up the row counts of the successful calls that had one (``rows_calls`` of
    them; a statement whose client does not say its rows, such as a SELECT through sqlite3,
    has none): None when no call had one, never 0 for "unknown". ``mean_rows`` is per call
    with a count.
    """

    fingerprint: str
    normalized: str
    operation: str
    system: str
    tables: tuple[str, ...]
    calls: int
    rows: int | None
    errors: int
    total_time_s: float
    mean_time_s: float
    min_time_s: float
    max_time_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    first_seen: float
    last_seen: float
    routes: dict[str, int] = field(default_factory=dict)
    databases: tuple[str, ...] = ()
    plan_summary: dict[str, Any] | None = None
    rows_calls: int = 0

    @property
    def mean_rows(self) -> float | None:
        """Rows per call, over the calls whose rows are known (None: none are)."""
        if self.rows is None or not self.rows_calls:
            return None
        return self.rows / self.rows_calls

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tables"] = list(self.tables)
        data["databases"] = list(self.databases)
        data["mean_rows"] = self.mean_rows
        return data


@dataclass(frozen=True, slots=True)
class StatsTotals:
    """Every statement the table counted: ``fingerprints`` it holds now; calls, errors, rows
    and time (seconds) since it started or was reset, evicted fingerprints' included."""

    fingerprints: int = 0
    calls: int = 0
    errors: int = 0
    rows: int = 0
    total_time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatsTotals:
        return cls(
            fingerprints=int(data.get("fingerprints") or 0),
            calls=int(data.get("calls") or 0),
            errors=int(data.get("errors") or 0),
            rows=int(data.get("rows") or 0),
            total_time_s=float(data.get("total_time_s") or 0.0),
        )

    def __add__(self, other: StatsTotals) -> StatsTotals:
        """Two tables' totals (of two worker processes, say); the fingerprints of the two
        may be the same statements, so the larger count is the one known to be distinct."""
        return StatsTotals(
            fingerprints=max(self.fingerprints, other.fingerprints),
            calls=self.calls + other.calls,
            errors=self.errors + other.errors,
            rows=self.rows + other.rows,
            total_time_s=self.total_time_s + other.total_time_s,
        )


class _Entry(EntryCounters):
    """One fingerprint's counters (`EntryCounters`, which the hot loop updates) and their
    reading."""

    __slots__ = ()

    def quantiles(self, *qs: float) -> tuple[float, ...]:
        # (called with the lock held, so the samples are not turned into buckets meanwhile)
        if not self.calls:
            return tuple(0.0 for _ in qs)
        samples = self.samples
        if samples is not None:
            return _histogram.exact_quantiles(samples, qs)
        self.fold_pending()
        return _histogram.quantiles(self.hist, qs, self.min, self.max)  # (only written locked)

    def fold_pending(self) -> None:
        """Count the durations not in the buckets yet into them (`fold_durations`); called
        with the table's lock held."""
        pending = self.pending
        if pending:
            self.pending = array("d")  # (a duration appended from here goes there)
            fold_durations(self.hist, pending)

    def freeze(self) -> FingerprintStats:
        p50, p95, p99 = self.quantiles(0.5, 0.95, 0.99)
        calls = self.calls
        return FingerprintStats(
            fingerprint=self.fingerprint,
            normalized=self.normalized,
            operation=self.operation,
            system=self.system,
            tables=self.tables,
            calls=calls,
            rows=self.rows if self.rows_calls else None,
            rows_calls=self.rows_calls,
            errors=self.errors,
            total_time_s=self.total,
            mean_time_s=self.total / calls if calls else 0.0,
            min_time_s=self.min if calls else 0.0,
            max_time_s=self.max,
            p50_s=p50,
            p95_s=p95,
            p99_s=p99,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            routes=dict(self.routes),
            databases=tuple(self.databases),
            plan_summary=self.plan_summary,
        )

    def snapshot(self) -> dict[str, Any]:
        data = self.freeze().to_dict()
        histogram: dict[str, Any] = {"gamma": GAMMA, "counts": _histogram.encode(dict(self.hist))}
        samples = self.samples
        if samples is not None:
            histogram["samples"] = samples.tolist()
        data["histogram"] = histogram
        return data


def _order_key(order_by: str) -> Callable[[_Entry], float]:
    return _ORDER_KEYS[check_order_by(order_by)]


_ORDER_KEYS: dict[str, Callable[[_Entry], float]] = {
    "total_time": lambda e: e.total,
    "mean_time": lambda e: e.total / e.calls if e.calls else 0.0,
    "calls": lambda e: e.calls,
    "rows": lambda e: e.rows if e.rows_calls else -1,  # unknown sorts below 0 rows
    "errors": lambda e: e.errors,
    "max_time": lambda e: e.max,
    "p95": lambda e: e.quantiles(0.95)[0],
}
assert _ORDER_KEYS.keys() == ORDER_FIELDS.keys()  # the same orders for entries and copies


def _no_sync() -> None:
    pass


def _eviction_key(entry: _Entry) -> tuple[float, float]:
    return (entry.total, entry.last_seen)


def _sum_entries(entries: Iterable[_Entry], start: StatsTotals) -> StatsTotals:
    calls, errors, rows, total = start.calls, start.errors, start.rows, start.total_time_s
    for entry in entries:
        calls += entry.calls
        errors += entry.errors
        rows += entry.rows
        total += entry.total
    return StatsTotals(start.fingerprints, calls, errors, rows, total)


class StatsTable:
    """Statistics per statement fingerprint, bounded to ``max_fingerprints`` entries."""

    def __init__(self, max_fingerprints: int = 5_000) -> None:
        self._bound(max_fingerprints)
        self._entries: dict[str, _Entry] = {}
        # Reentrant: `_observe_all_locked` holds it around `observe_all`, which takes it to add
        # keys.
        self._lock = threading.RLock()
        self.evictions = 0
        self._evicted = StatsTotals()  # what the evicted fingerprints had counted
        # Called before every read: hands the table the statements a recorder still holds
        # for it (`StatsSink` is batched; see `dbsight.core.Recorder.flush`).
        self.sync: Callable[[], None] = _no_sync
        if _FREE_THREADED:
            self.observe_all = self._observe_all_locked  # type: ignore[method-assign]

    def _bound(self, max_fingerprints: int) -> None:
        if max_fingerprints < 1:
            raise ValueError(f"max_fingerprints must be at least 1 (got {max_fingerprints})")
        self.max_fingerprints = max_fingerprints
        # Evicting a tenth at a time makes one eviction pay for many insertions.
        self._evict_batch = max(1, max_fingerprints // 10)

    def resize(self, max_fingerprints: int) -> None:
        """Bound the table to ``max_fingerprints``; a smaller bound evicts the least
        significant entries (as an insertion would) down to it, the others are kept."""
        self.sync()
        with self._lock:
            self._bound(max_fingerprints)
            excess = len(self._entries) - max_fingerprints
            if excess > 0:
                self._evict(excess)

    def __len__(self) -> int:
        self.sync()
        return len(self._entries)

    def __contains__(self, fingerprint: object) -> bool:
        self.sync()
        return fingerprint in self._entries

    # -- the hot path ----------------------------------------------------------------
    def record(self, event: QueryEvent) -> None:
        """Count one statement, successful or failed."""
        self.observe(None, event)

    def observe(self, ctx: object, event: QueryEvent) -> None:
        """`record` with an observer hook's signature (``ctx`` is unused): the hook for a
        statement the recorder hands over on its own (a slow or failed one)."""
        self.observe_all((event,))

    def observe_all(self, events: Iterable[QueryEvent]) -> None:
        """Count each of ``events`` in turn: the batch hook (`StatsSink.after_batch`), one
        call for all the statements the recorder held. The loop is `count_batch` (compiled
        when the extension is built), which takes the lock only to create a key: see
        `dbsight.stats._table_fold` for why no update is lost with a GIL. Free-threaded
        builds use `_observe_all_locked` instead (see `_FREE_THREADED`).
        """
        count_batch(self, events)

    def _observe_all_locked(self, events: Iterable[QueryEvent]) -> None:
        # `observe_all` for free-threaded builds: the same under the (reentrant) lock
        with self._lock:
            StatsTable.observe_all(self, events)

    def _to_histogram(self, entry: _Entry) -> None:
        """Move an entry's samples into its histogram (it has had too many calls to keep
        them); `observe` adds to the histogram from then on."""
        with self._lock:
            samples = entry.samples
            if samples is None:
                return  # another thread moved them
            entry.pending = array("d")  # (first: a duration goes there once samples is None)
            entry.samples = None  # no call between: `observe` appends before this or not at all
            fold_durations(entry.hist, samples)

    def _fold_pending(self, entry: _Entry) -> None:
        """`_Entry.fold_pending`, with the lock (the fold's call, every `PENDING` calls)."""
        with self._lock:
            entry.fold_pending()

    def _add_counts(self, entry: _Entry, counts: Mapping[int, int]) -> None:
        # called with the lock held: the histogram is only written under it
        hist = entry.hist
        for index, count in counts.items():
            if index in hist:
                hist[index] += count
            else:
                hist[index] = count

    def _insert(self, event: QueryEvent) -> _Entry:
        # called with the lock held
        if len(self._entries) >= self.max_fingerprints:
            self._evict(len(self._entries) - self.max_fingerprints + self._evict_batch)
        entry = _Entry(
            event.fingerprint,
            event.normalized,
            event.operation,
            event.system,
            event.tables,
            event.started_at,
        )
        self._entries[event.fingerprint] = entry
        return entry

    def _evict(self, count: int) -> None:
        evicted = heapq.nsmallest(count, self._entries.values(), key=_eviction_key)
        for entry in evicted:
            del self._entries[entry.fingerprint]
        self._evicted = _sum_entries(evicted, self._evicted)
        self.evictions += count

    # -- reading -----------------------------------------------------------------------
    def top(self, n: int = 20, order_by: str = "total_time") -> list[FingerprintStats]:
        """The ``n`` fingerprints with the highest ``order_by``, highest first."""
        key = _order_key(order_by)
        self.sync()
        with self._lock:
            chosen = heapq.nlargest(n, self._entries.values(), key=key)
            return [entry.freeze() for entry in chosen]

    def totals(self) -> StatsTotals:
        """Every statement counted, not only the top ones: what a summary's header shows."""
        self.sync()
        with self._lock:
            counted = _sum_entries(self._entries.values(), self._evicted)
            return StatsTotals(
                len(self._entries),
                counted.calls,
                counted.errors,
                counted.rows,
                counted.total_time_s,
            )

    def get(self, fingerprint: str) -> FingerprintStats | None:
        self.sync()
        with self._lock:
            entry = self._entries.get(fingerprint)
            return entry.freeze() if entry is not None else None

    def entry_snapshot(self, fingerprint: str) -> dict[str, Any] | None:
        """One fingerprint as `snapshot` gives it (with its latency histogram), or None."""
        with self._lock:
            entry = self._entries.get(fingerprint)
            return entry.snapshot() if entry is not None else None

    def set_plan(self, fingerprint: str, summary: dict[str, Any]) -> bool:
        """Attach the latest EXPLAIN summary to a fingerprint; False if it is not in the table."""
        self.sync()
        with self._lock:
            entry = self._entries.get(fingerprint)
            if entry is None:
                return False
            entry.plan_summary = summary
            return True

    def reset(self) -> None:
        """Forget every fingerprint (the eviction count too)."""
        self.sync()  # what was held before the reset is forgotten with the rest
        with self._lock:
            self._entries = {}
            self.evictions = 0
            self._evicted = StatsTotals()

    # -- combining tables (one per worker process) -------------------------------------
    def snapshot(self, n: int | None = None, order_by: str = "total_time") -> list[dict[str, Any]]:
        """Entries as JSON-serialisable dicts, including their latency histograms: every
        entry, or with ``n`` only the ``n`` highest by ``order_by`` (cheaper to copy)."""
        self.sync()
        if n is None:
            with self._lock:
                return [entry.snapshot() for entry in self._entries.values()]
        key = _order_key(order_by)
        with self._lock:
            return [
                entry.snapshot() for entry in heapq.nlargest(n, self._entries.values(), key=key)
            ]

    def merge(self, snapshots: Iterable[Mapping[str, Any] | Iterable[Mapping[str, Any]]]) -> None:
        """Add snapshots (from `snapshot`, possibly of other processes) into this table.

        ``snapshots`` is a list of snapshots, or of their entries, or a mix. Counters and
        histograms add up (the durations of sides that kept them are pooled, and stay exact
        while there are at most `EXACT_SAMPLES` of them; with more, or with a side that has
        a histogram, they go into the histogram), min/max/first/last seen combine, routes
        add up (bounded), and the plan summary of the most recently seen side wins. The
        merged percentiles are those of all the sides' calls together, within the same
        bounds as one table's.
        """
        for item in snapshots:
            if isinstance(item, Mapping):
                self._merge_entry(item)
            else:
                for entry in item:
                    self._merge_entry(entry)

    def _merge_entry(self, data: Mapping[str, Any]) -> None:
        histogram = data.get("histogram") or {}
        gamma = histogram.get("gamma", GAMMA)
        if abs(gamma - GAMMA) > 1e-12:
            raise ValueError(
                f"cannot merge a histogram with gamma {gamma} into one with gamma {GAMMA}"
            )
        counts = _histogram.decode(histogram.get("counts", {}))
        samples = array("d", histogram.get("samples") or ())
        fingerprint = data["fingerprint"]
        calls = int(data["calls"])
        with self._lock:
            entry = self._entries.get(fingerprint)
            if entry is None:
                if len(self._entries) >= self.max_fingerprints:
                    self._evict(len(self._entries) - self.max_fingerprints + self._evict_batch)
                entry = _Entry(
                    fingerprint,
                    data.get("normalized", ""),
                    data.get("operation", "other"),
                    data.get("system", ""),
                    tuple(data.get("tables", ())),
                    float(data["first_seen"]),
                )
                self._entries[fingerprint] = entry
            # Every value is computed before its read-modify-write: `record` updates the
            # entry without the lock, so no call may run between a load and its store.
            first_seen, last_seen = float(data["first_seen"]), float(data["last_seen"])
            rows, errors = int(data.get("rows") or 0), int(data.get("errors", 0))
            rows_calls = data.get("rows_calls")
            # a snapshot without rows_calls counted the rows of every successful call
            rows_calls = (
                int(rows_calls) if rows_calls is not None else (calls - errors if rows else 0)
            )
            total = float(data["total_time_s"])
            newer = last_seen >= entry.last_seen
            entry.calls += calls
            entry.rows += rows
            entry.rows_calls += rows_calls
            entry.errors += errors
            entry.total += total
            if calls:
                low, high = float(data["min_time_s"]), float(data["max_time_s"])
                if low < entry.min:
                    entry.min = low
                if high > entry.max:
                    entry.max = high
            if samples:
                own = entry.samples
                if own is not None:
                    own.extend(samples)  # one call: atomic for `observe`'s appends
                    if len(own) > EXACT_SAMPLES:
                        self._to_histogram(entry)
                else:
                    fold_durations(entry.hist, samples)
            if any(counts.values()):
                # counts cannot become durations again: the merged entry has a histogram
                self._to_histogram(entry)
                self._add_counts(entry, counts)
            if first_seen < entry.first_seen:
                entry.first_seen = first_seen
            if last_seen > entry.last_seen:
                entry.last_seen = last_seen
            for route, route_calls in (data.get("routes") or {}).items():
                route_calls = int(route_calls)
                if route in entry.routes:
                    entry.routes[route] += route_calls
                elif len(entry.routes) < MAX_ROUTES:
                    entry.routes[route] = route_calls
            for database in data.get("databases") or ():
                if len(entry.databases) < MAX_DATABASES:
                    entry.databases[database] = None
            summary = data.get("plan_summary")
            if summary is not None and (newer or entry.plan_summary is None):
                entry.plan_summary = summary
