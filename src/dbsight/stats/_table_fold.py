"""The statistics table's hot loop: a batch of statements counted into the entries of their
fingerprints (`StatsTable.observe_all` hands each batch here).

The loop is its own module so that it can be compiled (see `dbsight._compiled`; typed by the
``.pxd`` next to it): `EntryCounters` is then an extension type whose counters are C integers
and doubles, and a `dbsight.core._lean.LeanEvent` (what the lean path hands dbsight's sinks)
is read through its C fields, so counting a statement runs no bytecode at all. Without the
extension this same source runs as Python, with the same results.

Thread safety, with a GIL: the loop takes no lock for a known fingerprint (a `with lock:`
would cost about 0.3 µs, half of the rest of a statement's work as Python). Every update is a
single read-modify-write statement such as ``entry.calls += 1``, ``routes[r] += 1`` or a
compare-and-store with no call in between; CPython only switches threads at calls, backward
jumps and function entry, and compiled code only where it calls into Python code (it calls
none here between a load and its store: dictionary reads and stores of str and int keys,
float and int arithmetic and C fields run none), so no update is lost. Creating a key (a
fingerprint, a route, a database) takes the table's lock, and the unlocked increments only
touch keys that already exist. A duration goes into the entry's samples, or once it has a
histogram into its ``pending``, with the load of the array and the ``append`` in a row (no
switch between them), so it lands before the array is swapped for a new one
(`StatsTable._to_histogram`, `StatsTable._fold_pending`) or in the new one. The histogram
itself is only written with the lock held: past the exact samples a duration is one C double
appended, and the durations go into their buckets `PENDING` at a time (`fold_durations`:
counted in an array of C integers, then one dictionary update per bucket touched rather than
one per statement), or when the entry is read (`_Entry.quantiles`). Free-threaded builds
hold the lock around the whole loop (`StatsTable._observe_all_locked`).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from typing import Any

from .. import _hot
from ..core._lean import LeanEvent
from ._histogram import _INV_LOG_GAMMA, _MIN_INDEX, EXACT_SAMPLES, MIN_DURATION_S

# (typed as C numbers by the ``.pxd``: compared and multiplied with no Python object)
_INV_GAMMA: float = _INV_LOG_GAMMA
_MIN_S: float = MIN_DURATION_S
_MIN_I: int = _MIN_INDEX
_EXACT: int = EXACT_SAMPLES

# A few routes and databases per fingerprint show where a statement comes from; more would
# turn the table into a cardinality problem of its own.
MAX_ROUTES = 16
MAX_DATABASES = 8

# Durations an entry with a histogram holds before they go into its buckets (8 bytes each).
PENDING = 1024
_PENDING: int = PENDING
# The buckets `fold_durations` counts in its array: indexes _MIN_I to _MIN_I + _SPAN - 1
# (1 ns to about eight years); a duration beyond goes to its bucket directly.
_SPAN: int = 1024


class EntryCounters:
    """One fingerprint's counters in a `StatsTable` (its ``_Entry`` adds the reading)."""

    __slots__ = (
        "fingerprint",
        "normalized",
        "operation",
        "system",
        "tables",
        "calls",
        "rows",
        "rows_calls",
        "errors",
        "total",
        "min",
        "max",
        "samples",
        "hist",
        "pending",
        "first_seen",
        "last_seen",
        "routes",
        "databases",
        "plan_summary",
    )

    def __init__(
        self,
        fingerprint: str,
        normalized: str,
        operation: str,
        system: str,
        tables: tuple[str, ...],
        first_seen: float,
    ) -> None:
        self.fingerprint = fingerprint
        self.normalized = normalized
        self.operation = operation
        self.system = system
        self.tables = tables
        self.calls = 0
        self.rows = 0  # over the rows_calls calls whose rows are known
        self.rows_calls = 0
        self.errors = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0
        # The durations themselves while there are few (exact quantiles), then None: from
        # then on ``hist`` counts them by bucket.
        self.samples: array[float] | None = array("d")
        self.hist: dict[int, int] = {}
        # with a histogram: the durations not in its buckets yet (`fold_durations`)
        self.pending: array[float] | None = None
        self.first_seen = first_seen
        self.last_seen = first_seen
        self.routes: dict[str, int] = {}
        self.databases: dict[str, None] = {}
        self.plan_summary: dict[str, Any] | None = None


def count_batch(table: Any, events: Iterable[Any]) -> None:
    """Count each of ``events`` (statements, successful or failed) into ``table`` (a
    `StatsTable`: its ``_entries``, its ``_lock``, and its ``_insert`` and
    ``_to_histogram`` for a new fingerprint and for samples that have become too many)."""
    entries = table._entries
    lock = table._lock
    # A run of statements of one fingerprint (a loop, a busy endpoint) finds its entry once:
    # no other entry is made between two of them, and the entry is checked for the run's
    # database once
    last_fingerprint: Any = None
    last_database: Any = None
    entry = None
    for event in events:
        if type(event) is LeanEvent:  # (compiled: read through its C fields)
            lean = event
            fingerprint = lean.fingerprint
            duration = lean.duration_s
            failed = False
            rows = lean.rows
            seen = lean.started_at
            route = lean.route
            database = lean.database
        else:
            fingerprint = event.fingerprint
            duration = event.duration_s
            failed = event.error is not None
            rows = event.rows
            seen = event.started_at
            route = event.route
            database = event.database
        if fingerprint is not last_fingerprint or entry is None:
            entry = entries.get(fingerprint)
            if entry is None:
                with lock:
                    entry = entries.get(fingerprint)
                    if entry is None:
                        entry = table._insert(event)
            last_fingerprint = fingerprint
            last_database = None
        entry.calls += 1
        entry.total += duration
        if duration < entry.min:
            entry.min = duration
        if duration > entry.max:
            entry.max = duration
        samples = entry.samples
        if samples is not None:  # few calls so far: the duration itself
            samples.append(duration)
            if len(samples) > _EXACT:
                table._to_histogram(entry)
        else:  # into its buckets with the next `PENDING` (see the module docstring)
            pending = entry.pending
            _hot.append_double(pending, duration)  # (compiled: no method call)
            if len(pending) >= _PENDING:
                table._fold_pending(entry)
        if failed:
            entry.errors += 1
        elif rows is not None:  # None is "unknown": not counted as 0
            counted = rows  # (compiled: a C integer, added with no int object made)
            entry.rows += counted
            entry.rows_calls += 1
        if seen > entry.last_seen:
            entry.last_seen = seen
        if route is not None:
            routes = entry.routes
            if route in routes:
                routes[route] += 1
            else:
                with lock:
                    if route in routes:
                        routes[route] += 1
                    elif len(routes) < MAX_ROUTES:
                        routes[route] = 1
        if database is not None and database is not last_database:
            last_database = database
            if database not in entry.databases:
                with lock:
                    databases = entry.databases
                    if database not in databases and len(databases) < MAX_DATABASES:
                        databases[database] = None


def fold_durations(hist: dict[int, int], durations: Any) -> None:
    """Count ``durations`` (an array of doubles) into the buckets of ``hist``; called with
    the table's lock held."""
    counts = array("q", bytes(8 * _SPAN))  # (a C array of them, compiled)
    values = durations
    low = _SPAN
    high = -1
    for i in range(len(values)):
        duration = values[i]
        # _histogram.bucket_index, inlined (compiled, ``math`` is C's: no Python call)
        index = int(math.ceil(math.log(duration) * _INV_GAMMA)) if duration > _MIN_S else _MIN_I
        slot = index - _MIN_I
        if slot < _SPAN:
            counts[slot] += 1
            if slot < low:
                low = slot
            if slot > high:
                high = slot
        else:
            key = index
            hist[key] = hist.get(key, 0) + 1
    for slot in range(low, high + 1):
        count = counts[slot]
        if count:
            key = slot + _MIN_I
            hist[key] = hist.get(key, 0) + count
