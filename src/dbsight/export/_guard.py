"""Cardinality guard for open-ended metric labels."""

from __future__ import annotations

import threading

OTHER = "other"


class LabelGuard:
    """Lets the first ``max_values`` distinct values of a label through; later ones become
    ``other``. A value seen before costs one dictionary lookup.

    Overflowing values are remembered too (up to ``overflow_cache`` of them) so that
    repeated ones stay one lookup; beyond that they are mapped again each time, which
    keeps memory bounded whatever the traffic.
    """

    __slots__ = ("max_values", "admitted", "_seen", "_overflow_cache", "_lock")

    def __init__(self, max_values: int, overflow_cache: int | None = None) -> None:
        self.max_values = max_values
        self.admitted = 0
        self._seen: dict[str, str] = {}
        self._overflow_cache = (
            overflow_cache if overflow_cache is not None else max(1_000, 10 * max_values)
        )
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        label = self._seen.get(value)
        if label is not None:
            return label
        return self._admit(value)

    def _admit(self, value: str) -> str:
        with self._lock:
            label = self._seen.get(value)
            if label is not None:
                return label
            if self.admitted < self.max_values:
                self.admitted += 1
                label = value
            else:
                label = OTHER
            if label is value or len(self._seen) < self.max_values + self._overflow_cache:
                self._seen[value] = label
            return label
