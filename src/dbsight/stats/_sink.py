"""The observer that feeds every statement into a `StatsTable`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core import QueryObserver

if TYPE_CHECKING:
    from ..core import QueryContext, QueryEvent
    from ._table import StatsTable


class StatsSink(QueryObserver):
    """Records successful and failed statements alike (failures count in ``errors``).

    Batched (see `dbsight.core.Recorder`): the table's readers flush the recorder first."""

    name = "dbsight.stats"
    batched = True
    # Reads events and keeps none of them: may be handed `dbsight.core._lean.LeanEvent`s.
    lean_events = True

    def __init__(self, table: StatsTable) -> None:
        self.table = table
        self._record = table.record
        # The recorder calls the table's hook-shaped methods directly: no call through
        # the methods below on the hot path. A batch goes to the table in one call.
        self.after_query = self.on_error = table.observe  # type: ignore[method-assign]
        self.after_batch = table.observe_all

    def bind_flush(self, flush: Callable[[], None]) -> None:
        self.table.sync = flush

    def after_query(self, ctx: QueryContext, event: QueryEvent) -> None:
        self._record(event)

    def on_error(self, ctx: QueryContext, event: QueryEvent) -> None:
        self._record(event)
