"""The parameter sampler's hot loop: each statement of a batch counted against its
fingerprint's reservoir, and handed to the sampler only when the reservoir's skip says so
(`ParameterSamples.after_batch` hands each batch here; see `dbsight.stats._samples`).

The loop is its own module so that it can be compiled (see `dbsight._compiled`; typed by the
``.pxd`` next to it): `Reservoir` is then an extension type whose counters are C numbers, and
a `dbsight.core._lean.LeanEvent` is read through its C fields. Without the extension this
same source runs as Python, with the same results. No lock: a call lost to a race between two
threads changes which calls are sampled, not whether the sample is uniform enough to show what
dominates.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core._lean import LeanEvent

# (text with $n placeholders or its literals, the parameter values as text or None)
StatementSample = tuple[str, tuple[str | None, ...] | None]


class Reservoir:
    """One fingerprint's reservoir: its calls, the next one to sample, and its samples."""

    __slots__ = ("seen", "next", "tried", "w", "samples", "sizes")

    def __init__(self, next_call: float) -> None:
        self.seen = 1  # calls so far
        self.next = next_call  # the call to sample next (inf: never)
        self.tried = 0  # calls picked so far
        self.w = 1.0  # algorithm L's W
        self.samples: list[StatementSample] = []
        self.sizes: list[int] = []


def count_calls(sampler: Any, events: Iterable[Any]) -> None:
    """Count each of ``events`` against its reservoir in ``sampler`` (a `ParameterSamples`:
    its ``_entries``, and its ``_first`` and ``_take`` for a new fingerprint and for a call
    its reservoir picks)."""
    entries = sampler._entries
    last_fingerprint: Any = None  # a run of one fingerprint finds its reservoir once
    entry = None
    for event in events:
        if type(event) is LeanEvent:  # (compiled: read through its C fields)
            lean = event
            fingerprint = lean.fingerprint
        else:
            fingerprint = event.fingerprint
        if fingerprint is not last_fingerprint or entry is None:
            entry = entries.get(fingerprint)
            if entry is None:
                sampler._first(event)
                last_fingerprint = None
                continue
            last_fingerprint = fingerprint
        entry.seen += 1
        if entry.seen >= entry.next:
            sampler._take(entry, event)
