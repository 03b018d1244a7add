"""`OwnAnswers`: what the proxy answers itself, without a server connection, when a pooled
client starts a unit between transactions.

- A bare prepare (named Parses and a Sync, `_units.bare_prepares`): each gets its
  ParseComplete and is prepared on whichever connection first runs it, as every statement
  is. A client that prepares with a blocking call on the thread that drives the clients
  holding every connection (pgbench -M prepared) would otherwise wait for itself; a mistake
  in such a statement is reported at its first use.
- ``SET dbsight.role = ...`` (`SessionRouting.role_command`): the proxy's own setting, never
  sent on.
- With replicas, a lone BEGIN and a ``SET TRANSACTION`` right after it: answered ahead, sent
  on with the transaction's first statement once its server is known (`SessionRouting`).
- A unit refused (by the request pipeline, or while the primary's breaker is open): its
  ErrorResponse.
- A unit the result cache holds (`CacheStep.lookup`): the cached answer.

Each answer ends with the ReadyForQuery the server would send; the session goes on after
the unit. No sockets here: the answers go to the client's transport.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from . import protocol as p
from ._cache_step import CacheStep, Wait
from ._client_settings import ClientSettings
from ._exchange import Exchange
from ._metrics import client_errors
from ._plain_relay import maybe_own
from ._session_routing import SessionRouting
from ._statement_names import StatementNames
from ._units import bare_prepares, named_parses, unit_end

_perf_counter = time.perf_counter

WAIT = -2  # `OwnAnswers.from_cache`: judged again once what the cache needs is known
_READY_IDLE = p.ready_for_query(p.TransactionStatus.IDLE)
_PARSE_COMPLETE = p.encode(p.ParseComplete())
_SET_IDLE = p.encode(p.CommandComplete("SET")) + _READY_IDLE
_BEGIN_ANSWER = p.encode(p.CommandComplete("BEGIN")) + p.ready_for_query(
    p.TransactionStatus.IN_TRANSACTION
)
_SET_ANSWER = p.encode(p.CommandComplete("SET")) + p.ready_for_query(
    p.TransactionStatus.IN_TRANSACTION
)


class OwnAnswers:
    """One logged-in client's answers from the proxy (see the module docstring). Each
    method gets the message or unit at ``buf[start:end]`` and says whether it answered it
    (or where the next unit starts); ``pause`` holds the client's messages until a
    coroutine is done (`Lease.pause_for`)."""

    __slots__ = ("exchange", "pause", "routing", "settings", "statements", "transport", "user")

    def __init__(
        self, transport: Any, statements: StatementNames, routing: SessionRouting,
        settings: ClientSettings, user: str | None, exchange: Exchange | None,
        pause: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.transport = transport
        self.statements = statements
        self.routing = routing
        self.settings = settings
        self.user = user
        self.exchange = exchange
        self.pause = pause

    def bare_prepare(self, buf: bytes) -> bool:
        """Answer ``buf`` when it is a bare prepare (named Parse messages, then Sync): the
        statements are remembered, to be prepared where they first run."""
        found = bare_prepares(buf)
        statements = self.statements
        if found is None or any(name in statements for name, _, _ in found):
            return False  # (a name in use: the server's "already exists" is the answer)
        for name, query, rest in found:
            statements.remember(name, query, rest)
        self.transport.write(_PARSE_COMPLETE * len(found) + _READY_IDLE)
        return True

    def session_command(self, buf: bytes, start: int, end: int) -> bool:
        """Answer the Query at ``buf[start:end]`` when it is ``SET dbsight.role = ...``."""
        if not maybe_own(buf, start + 5, end):
            return False
        if not self.routing.role_command(buf[start + 5 : end - 1].decode("utf-8", "replace")):
            return False
        self.transport.write(_SET_IDLE)
        return True

    def defer_begin(self, buf: bytes, start: int, end: int) -> bool:
        """Answer the Query at ``buf[start:end]`` when it is a lone BEGIN (with replicas):
        it goes on with the first statement after it."""
        sql = buf[start + 5 : end - 1].decode("utf-8", "replace")
        if not self.routing.defer_begin(sql, bytes(buf[start:end])):
            return False
        self.transport.write(_BEGIN_ANSWER)
        return True

    def defer_set_transaction(self, buf: bytes, start: int, end: int) -> bool:
        """Answer the Query at ``buf[start:end]`` when it is a ``SET TRANSACTION <modes>``
        right after a deferred BEGIN."""
        sql = buf[start + 5 : end - 1].decode("utf-8", "replace")
        if not self.routing.defer_set_transaction(sql, bytes(buf[start:end])):
            return False
        self.transport.write(_SET_ANSWER)
        return True

    def refuse_unit(self, buf: bytes, start: int, end: int, sqlstate: str, message: str) -> int:
        """Answer the unit at ``buf[start:end]`` (``end`` -1: up to its Sync, or its one
        Query) with an error instead of running it; returns where the next unit starts."""
        client_errors[sqlstate] += 1
        if end < 0:
            end = unit_end(buf, start)
        self.transport.write(p.error_response(sqlstate, message) + _READY_IDLE)
        return end

    def from_cache(self, cache: CacheStep, buf: bytes, start: int) -> int:
        """Answer the unit at ``buf[start]`` from the cache when it is cacheable and cached
        (returns where the next unit starts), else -1 (a cacheable miss fills), or `WAIT`
        (the client paused meanwhile)."""
        at = _perf_counter()
        settings = self.settings
        found = cache.lookup(
            buf, start, user=self.user, search_path=settings.on_replicas.get("search_path"),
            settings=settings.answer_settings(), statement_text=self.statements.text,
        )  # fmt: skip
        if found is None:
            return -1
        if isinstance(found, Wait):  # judged again once the catalog has been read
            self.pause(found.work)
            return WAIT
        for name, query, rest in named_parses(buf, start, found.end):
            self.statements.remember(name, query, rest)  # the client has them now
        self.transport.write(found.answer + _READY_IDLE)
        if self.exchange is not None:
            self.exchange.cached(found.sql, found.answer, at)
        return found.end
