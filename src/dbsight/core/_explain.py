"""The contract between instruments, which know how to reach the database, and the
slow-query log, which wants a plan: an `Explainer` runs ``EXPLAIN (FORMAT JSON)`` on a
connection of its own, never the application's, so no application transaction is touched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

# Called once with (plan, None) on success or (None, reason) on failure or time-out.
PlanCallback = Callable[[Any, "str | None"], None]


class Explainer(Protocol):
    def explain(self, sql: str, params: object | None, timeout_s: float, done: PlanCallback) -> None:
        """Start EXPLAIN of ``sql`` in the background and return at once.

        dbsight's own explainers also take ``analyze=True`` (EXPLAIN (ANALYZE, BUFFERS) in a
        transaction that is rolled back); the slow log passes it only when ``explain_analyze``
        is on, so an explainer without it keeps working with the default settings."""
        ...
