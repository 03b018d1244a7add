"""The Prometheus sink's hot loop: a batch of successful statements counted into the series
of their label sets (`PrometheusSink.after_batch` hands each batch here).

The loop is its own module so that it can be compiled (see `dbsight._compiled`; typed by the
``.pxd`` next to it): `OperationSeries` is then an extension type whose counters are C
integers and a C double, and a `dbsight.core._lean.LeanEvent` (what the lean path hands
dbsight's sinks) is read through its C fields. Without the extension this same source runs
as Python, with the same results.

With a GIL no update here can be lost without a lock: ``series.ok += 1`` (and
``buckets[i] += 1``) is one read-modify-write with no call between the load and the store,
and neither CPython (which switches threads only at calls, backward jumps and function
entry) nor the compiled loop (which calls no Python code in between: C fields, list slots,
int and float arithmetic) lets another thread run there. A free-threaded build has no such
guarantee and uses the sink's locked variants instead (`PrometheusSink._after_batch_locked`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core._lean import LeanEvent

# Database latency: 0.5 ms (a cached point lookup on loopback) to 10 s (a statement timeout).
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
# Statements that end within the first bucket (a proxy's point lookups on a local network,
# mostly) need one comparison to find their bucket; the others a few more, from the second
# bound up (compiled: C doubles read from the tuple, no call).
_FIRST_BOUND = DURATION_BUCKETS[0]
_BOUNDS = len(DURATION_BUCKETS)
_UPPER: tuple[float, ...] = DURATION_BUCKETS


class OperationSeries:
    """The counters of one ``(system, operation, table)`` label set.

    ``buckets[i]`` counts durations in ``(DURATION_BUCKETS[i-1], DURATION_BUCKETS[i]]``
    (the last slot is ``+Inf``): not cumulative, so an observation adds to one slot.
    ``by_sqlstate`` counts the failed ones by their ``(sqlstate, error_class)`` labels.
    """

    __slots__ = ("labels", "ok", "error", "sum", "buckets", "slow", "by_sqlstate")

    def __init__(self, labels: tuple[str, str, str]) -> None:
        self.labels = labels
        self.ok = 0
        self.error = 0
        self.sum = 0.0
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.slow = 0
        self.by_sqlstate: dict[tuple[str, str], int] = {}


def count_ok(sink: Any, events: Iterable[Any]) -> None:
    """Count each of ``events`` (successful statements) into the series of ``sink`` (a
    `PrometheusSink`: its ``_bound`` series by system then fingerprint, its ``_slow_s``,
    and its ``_bind`` for a fingerprint it has not bound yet)."""
    bound_of = sink._bound
    slow_s = sink._slow_s
    # a run of statements of one system and fingerprint finds its series once, and of one
    # system (statements of several fingerprints taking turns) that system's series once
    last_system: Any = None
    last_fingerprint: Any = None
    series = None
    bound = None
    for event in events:
        if type(event) is LeanEvent:  # (compiled: read through its C fields)
            lean = event
            system = lean.system
            fingerprint = lean.fingerprint
            duration = lean.duration_s
        else:
            system = event.system
            fingerprint = event.fingerprint
            duration = event.duration_s
        if fingerprint is not last_fingerprint or system is not last_system or series is None:
            if system is not last_system or bound is None:
                bound = bound_of.get(system)
            series = bound.get(fingerprint) if bound is not None else None
            if series is None:
                series = sink._bind(event)
                bound = None  # (maybe made by that bind: looked up again)
            last_system = system
            last_fingerprint = fingerprint
        series.ok += 1
        series.sum += duration
        index = 0
        if duration > _FIRST_BOUND:  # (bisect_left's answer, from the second bound up)
            index = 1
            while index < _BOUNDS:
                upper = _UPPER[index]
                if upper >= duration:
                    break
                index += 1
        series.buckets[index] += 1
        if duration >= slow_s:
            series.slow += 1
