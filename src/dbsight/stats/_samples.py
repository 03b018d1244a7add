"""Real statements for the index advisor: per PostgreSQL fingerprint, a few of the texts and
parameter values it ran with, so that hypothetical indexes are planned with real values
rather than NULLs or one guess.

The samples stay in this process's memory: no sink exports them, nothing logs them, no
endpoint serves them (``/metrics/summary`` does not list them); `dbsight.workload.from_stats`
hands them to an analysis running in the same process. They take bounded memory: at most
``per_fingerprint`` samples of at most `MAX_SAMPLE_BYTES` each, for at most
``max_fingerprints`` fingerprints, `MAX_BYTES` in all.

Each fingerprint keeps a uniform reservoir sample of its calls (Li's algorithm L), so a value
that dominates the traffic dominates the samples. The reservoir takes the first
``per_fingerprint`` calls, then skips ahead a random number of calls that grows with the
count: after ``n`` calls it has taken about ``k (1 + ln(n / k))`` of them, so a statement run
a million times is sampled some 80 times in all (for k = 8), and every other call costs a
dictionary lookup, an addition and a comparison (see `ParameterSamples.after_query`).

The parameters come from the statement's context: ``explain_params``, which the instruments
keep for EXPLAIN of a single statement whatever ``include_query_bodies`` says (and which,
like this sampler's samples, never leave the process); no sink's output changes. A
statement with placeholders whose values are not kept this way (an ``executemany`` batch,
whose ``params`` are every row's; a connection instrumented with ``explain=False``; the
proxy's extended-protocol statements) is not sampled; one without placeholders is, as its
text holds its values.
"""

from __future__ import annotations

import heapq
import math
import random
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

from ._paramtext import CannotConvert, dollar_placeholders, has_placeholders
from ._samples_fold import Reservoir, StatementSample, count_calls

if TYPE_CHECKING:
    from ..core import QueryContext, QueryEvent

__all__ = ["MAX_BYTES", "MAX_SAMPLE_BYTES", "ParameterSamples", "StatementSample"]

# A statement longer than this (a bulk INSERT, a large document) is not sampled.
MAX_SAMPLE_BYTES: Final = 16 * 1024
MAX_BYTES: Final = 8 * 2**20

_log = math.log
_exp = math.exp
_floor = math.floor


class ParameterSamples:
    """The sampler, a `QueryObserver` fed by the recorder (see the module docstring);
    batched (see `dbsight.core.Recorder`): its readers flush the recorder first."""

    name = "dbsight.samples"
    batched = True
    # Reads events and keeps none of them: may be handed `dbsight.core._lean.LeanEvent`s.
    lean_events = True

    def __init__(
        self,
        per_fingerprint: int = 8,
        *,
        max_fingerprints: int = 5_000,
        max_bytes: int = MAX_BYTES,
        seed: int | None = None,
    ) -> None:
        if per_fingerprint < 1 or max_fingerprints < 1:
            raise ValueError("per_fingerprint and max_fingerprints must be at least 1")
        self.per_fingerprint = per_fingerprint
        self.max_fingerprints = max_fingerprints
        self.max_bytes = max_bytes
        self.bytes = 0
        self.taken = 0  # samples stored (a replacement counts too)
        self.unusable = 0  # calls picked whose parameters could not be turned into text
        self._entries: dict[str, Reservoir] = {}
        self._lock = threading.Lock()
        self._random = random.Random(seed).random
        self._sync: Callable[[], None] = _no_sync

    def bind_flush(self, flush: Callable[[], None]) -> None:
        """Read after ``flush()``: the statements a recorder still holds for this sampler."""
        self._sync = flush

    def resize(self, per_fingerprint: int, max_fingerprints: int) -> None:
        """New bounds; reservoirs larger than ``per_fingerprint`` drop their extra samples."""
        self._sync()
        with self._lock:
            self.per_fingerprint = per_fingerprint
            self.max_fingerprints = max_fingerprints
            for entry in self._entries.values():
                while len(entry.samples) > per_fingerprint:
                    entry.samples.pop()
                    self.bytes -= entry.sizes.pop()
            excess = len(self._entries) - max_fingerprints
            if excess > 0:
                self._evict(excess)

    def __len__(self) -> int:
        return len(self._entries)

    # -- the hot path -------------------------------------------------------------------
    def after_query(self, ctx: QueryContext, event: QueryEvent) -> None:
        """Count the call; take it only when the reservoir's skip says so. Without a lock:
        a call lost to a race between two threads changes which calls are sampled, not
        whether the sample is uniform enough to show what dominates."""
        self.after_batch((ctx,))

    def after_batch(self, events: Iterable[QueryContext]) -> None:
        """`after_query` for each of ``events``: the recorder's batch, in one call (the loop
        is `count_calls`, compiled when the extension is built)."""
        count_calls(self, events)

    # -- sampling -----------------------------------------------------------------------
    def _first(self, ctx: QueryContext) -> None:
        # transaction control and other systems' statements: counted, never sampled
        wanted = ctx.system == "postgresql" and ctx.operation != "tx"
        with self._lock:
            entry = self._entries.get(ctx.fingerprint)
            if entry is not None:
                entry.seen += 1
                return
            if len(self._entries) >= self.max_fingerprints:
                self._evict(max(1, self.max_fingerprints // 10))
            entry = self._entries[ctx.fingerprint] = Reservoir(1 if wanted else math.inf)
        if wanted:
            self._take(entry, ctx)

    def _take(self, entry: Reservoir, ctx: QueryContext) -> None:
        sample = _sample_of(ctx)
        with self._lock:
            k = self.per_fingerprint
            entry.tried += 1
            if entry.tried < k:  # the first k calls are all taken
                entry.next = entry.seen + 1
            else:  # then algorithm L's jumps, with every call picked counted, usable or not
                entry.w *= _exp(_log(1.0 - self._random()) / k)
                entry.next = entry.seen + self._skip(entry.w)
            if sample is None:
                self.unusable += 1
                return
            size = len(sample[0]) + sum(len(p) for p in sample[1] or () if p is not None)
            if size > MAX_SAMPLE_BYTES:
                self.unusable += 1
                return
            if self._entries.get(ctx.fingerprint) is not entry:
                return  # evicted meanwhile: its bytes are no longer counted
            samples, sizes = entry.samples, entry.sizes
            if len(samples) < k:
                if self.bytes + size > self.max_bytes:
                    return
                samples.append(sample)
                sizes.append(size)
                self.bytes += size
            else:
                slot = int(self._random() * len(samples))
                if self.bytes - sizes[slot] + size > self.max_bytes:
                    return
                self.bytes += size - sizes[slot]
                samples[slot] = sample
                sizes[slot] = size
            self.taken += 1

    def _skip(self, w: float) -> int:
        """Calls to the next one sampled (algorithm L's geometric jump, at least 1)."""
        if w >= 1.0:
            return 1
        if w <= 0.0:
            return 2**62
        denominator = _log(1.0 - w)
        if denominator == 0.0:  # w too small for a double: the next sample is very far
            return 2**62
        return _floor(_log(1.0 - self._random()) / denominator) + 1

    def _evict(self, count: int) -> None:
        # called with the lock held: the least called fingerprints go
        for fingerprint, entry in heapq.nsmallest(
            count, self._entries.items(), key=lambda item: item[1].seen
        ):
            del self._entries[fingerprint]
            self.bytes -= sum(entry.sizes)

    # -- reading ------------------------------------------------------------------------
    def samples(self, fingerprint: str) -> list[StatementSample]:
        """A copy of ``fingerprint``'s samples (repeats included: they are the reservoir)."""
        self._sync()
        with self._lock:
            entry = self._entries.get(fingerprint)
            return list(entry.samples) if entry is not None else []

    def snapshot(self) -> dict[str, list[StatementSample]]:
        """Every fingerprint's samples (in memory, for an analysis in this process)."""
        self._sync()
        with self._lock:
            return {fp: list(entry.samples) for fp, entry in self._entries.items() if entry.samples}

    def calls(self, fingerprint: str) -> int:
        self._sync()
        entry = self._entries.get(fingerprint)
        return entry.seen if entry is not None else 0

    def reset(self) -> None:
        self._sync()
        with self._lock:
            self._entries = {}
            self.bytes = 0


def _no_sync() -> None:
    pass


def _sample_of(ctx: QueryContext) -> StatementSample | None:
    """The statement's text and parameters as text, or None when its parameter values are
    not known (or have no text form)."""
    sql = ctx.sql
    if ctx.explainer is None:
        # a batch (its params are every row's), explain off, or the proxy: only a text
        # without placeholders is a whole statement
        return None if has_placeholders(sql) else (sql, None)
    params = ctx.explain_params
    if params is None or (not isinstance(params, dict) and _empty(params)):
        return sql, None
    try:
        text, values = dollar_placeholders(sql, params)
    except (CannotConvert, TypeError, ValueError):
        return None
    return text, values


def _empty(params: object) -> bool:
    try:
        return len(params) == 0  # type: ignore[arg-type]
    except TypeError:
        return False
