"""Observers and a comparison the recorder's lean-path tests share (tests/core and
tests/instrument): a batched observer like dbsight's own sinks (the lean path stays open),
an unbatched one with no gate (every statement goes the regular way while it is on)."""

from __future__ import annotations

import dataclasses
from typing import Any

from dbsight.core import QueryObserver

TIMING = {"duration_s", "started_at"}  # (differ between two runs of one statement)


class Batched(QueryObserver):
    """A batched observer that keeps every event it is handed."""

    name = "tests.batched"
    batched = True

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.flush: Any = lambda: None

    def bind_flush(self, flush: Any) -> None:
        self.flush = flush

    def after_query(self, ctx: Any, event: Any) -> None:
        self.events.append(event)

    def on_error(self, ctx: Any, event: Any) -> None:
        self.events.append(event)

    def seen(self) -> list[Any]:
        """Every event so far, the statements the recorder still holds folded first."""
        self.flush()
        return self.events


class Unbatched(QueryObserver):
    """An observer without a gate, keeping every event it is handed."""

    name = "tests.unbatched"

    def __init__(self) -> None:
        self.events: list[Any] = []

    def after_query(self, ctx: Any, event: Any) -> None:
        self.events.append(event)


def fields_but_timing(event: Any) -> dict[str, Any]:
    """An event's fields but its timing: what two paths of one statement must agree on."""
    return {
        f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name not in TIMING
    }
