"""What the protocol-level proxy tests send and record: the server messages they use most,
and an observer that keeps each statement's text, rows and outcome."""

from __future__ import annotations

from typing import Any

from dbsight.core import QueryObserver
from dbsight.proxy.protocol import (
    DataRow,
    FieldDescription,
    ReadyForQuery,
    RowDescription,
    TransactionStatus,
    encode,
)

IDLE = ReadyForQuery(TransactionStatus.IDLE)
IN_TX = ReadyForQuery(TransactionStatus.IN_TRANSACTION)
FAILED = ReadyForQuery(TransactionStatus.FAILED)
ROW = DataRow((b"1",))
COLUMNS = RowDescription((FieldDescription("n", type_oid=23, type_size=4),))


def wire(*messages: Any) -> bytes:
    """The messages, encoded, one after the other."""
    return b"".join(encode(message) for message in messages)


class Recorded(QueryObserver):
    """Every statement's event, successful or failed, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def after_query(self, ctx: Any, event: Any) -> None:
        self.events.append(event)

    def on_error(self, ctx: Any, event: Any) -> None:
        self.events.append(event)

    def rows(self) -> list[tuple[str, int | None, str]]:
        return [(e.sql, e.rows, e.outcome) for e in self.events]
