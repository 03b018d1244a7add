"""`ReadRetry`: a read a replica gave up before answering, asked again of the primary.

While a replica serves a read, the pooled session's `Lease` keeps the unit as the client sent
it (``Lease.retry``) until the first byte of its answer goes to the client. If the replica
gives the read up before then, the client has seen nothing and the unit can run again:

- its server chunk holds a FATAL (or PANIC) ErrorResponse: the replica is shutting down, or
  the session was terminated there — counted against its breaker (``failed``);
- the chunk holds SQLSTATE 40001: the replica cancelled the read for a conflict with WAL
  replay — the replica is healthy, and the primary has no such conflict;
- its connection is lost — counted against its breaker.

Then the unanswered statements count as failed (`Exchange.restart`), the replica's
connection is closed and replaced (`Lease.drop_broken`), the next unit goes to the primary
(``SessionRouting.to_primary``) and the session puts the unit back ahead of what the client
sent since (``ask_again``). No sockets here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from ._backend import BackendConnection
from ._exchange import Exchange, error_message, fatal_error, recovery_conflict
from ._metrics import routing_decisions

logger = logging.getLogger("dbsight.proxy")

_CLOSED = "the server closed the connection"


class HeldRead(Protocol):
    """What `ReadRetry` needs of the session's `Lease`."""

    conn: BackendConnection | None  # the connection held
    retry: bytes | None  # the replica's unanswered read, as the client sent it
    target: str  # the server of ``conn``

    def drop_broken(self, conn: BackendConnection) -> None: ...


class Rerouted(Protocol):
    """What `ReadRetry` needs of the session's `SessionRouting`."""

    to_primary: bool


class ReadRetry:
    """One pooled client's replica reads asked again (see the module docstring):
    ``record`` counts a server's outcome for its breaker (`Topology.record`); ``ask_again``
    is the session's, given the unit to send again ahead of the client's later bytes."""

    __slots__ = ("_ask_again", "_lease", "_record", "_routing")

    def __init__(
        self, lease: HeldRead, routing: Rerouted, record: Callable[[str, bool], None],
        ask_again: Callable[[bytes], None],
    ) -> None:  # fmt: skip
        self._lease = lease
        self._routing = routing
        self._record = record
        self._ask_again = ask_again

    def server_data(self, exchange: Exchange, data: bytes) -> bool:
        """The server's chunk ``data`` (the session checks ``Lease.retry`` first: this runs
        only while a replica's read is unanswered): True when it gives the read up — FATAL,
        or a recovery conflict — and the read was asked again (the chunk is dropped)."""
        if self._lease.retry is None or exchange.buffering:  # (a message cut short: relayed)
            return False
        if fatal_error(data):  # the replica is shutting down
            self._again(exchange, error_message(data), failed=True)
            return True
        if recovery_conflict(data):  # cancelled for WAL replay: the primary has no such
            self._again(exchange, error_message(data), failed=False)
            return True
        return False

    def server_lost(self, exchange: Exchange | None, exc: BaseException | None) -> bool:
        """The held connection was lost (``exc``, or None: closed): True when it was a
        replica's unanswered read, asked again."""
        if self._lease.retry is None:
            return False
        assert exchange is not None
        self._again(exchange, str(exc) if exc is not None else _CLOSED, failed=True)
        return True

    def _again(self, exchange: Exchange, detail: str, *, failed: bool) -> None:
        """The read is asked again of the primary; the replica's connection is closed (a new
        one replaces it); ``failed``: counted for the replica's breaker."""
        lease = self._lease
        conn, unit = lease.conn, lease.retry
        assert conn is not None and unit is not None
        lease.retry = None
        replica = lease.target
        logger.info("dbsight proxy: %s gave up a read (%s): asking the primary", replica, detail)
        if failed:
            self._record(replica, False)
        routing_decisions["primary", "failover"] += 1
        exchange.restart(f"{replica} gave up before answering ({detail}); asked the primary")
        lease.drop_broken(conn)  # closed, and replaced
        self._ask_again(unit)
        self._routing.to_primary = True
