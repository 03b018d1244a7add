"""`SessionInfo`: what ``/stats/clients`` shows of one proxied client's session.

Its own module so that it can be compiled (see `dbsight._compiled`; typed by the ``.pxd`` next
to it): a pooled client's relay and lease write its state on every transaction, then a C
field. Without the extension this same source runs as Python.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._exchange import Exchange


class SessionInfo:
    """What ``/stats/clients`` shows of a session."""

    __slots__ = ("application_name", "client", "connected_at", "database", "exchange", "state",
                 "user")

    def __init__(self, client: str) -> None:
        self.client = client
        self.user: str | None = None
        self.database: str | None = None
        self.application_name: str | None = None
        self.connected_at = time.time()
        self.state = "startup"
        self.exchange: Exchange | None = None

    @property
    def statements(self) -> int:
        return self.exchange.statement_count if self.exchange is not None else 0

    def to_dict(self) -> dict[str, Any]:
        exchange = self.exchange
        return {
            "client": self.client,
            "user": self.user,
            "database": self.database,
            "application_name": (
                exchange.application_name if exchange is not None else self.application_name
            ),
            "connected_at": self.connected_at,
            "statements": self.statements,
            "state": self.state,
        }
