"""`StatementScreen`: the request pipeline as one pooled client's statements meet it.

Each Query or Execute is judged before it goes on (`Pipeline.on_statement`): forwarded, held a
while (a queueing rate limit: once due, it is not judged again), or refused. Its facts are
drawn from the message and the session's `Exchange` (an Execute runs its portal's text), and
the exchange gets what the pipeline says of the statement: whether and how it is observed
(sampling, logging), and the firewall's ``max_rows`` with the error that replaces the rest of
a longer result. No sockets: the session answers, raises or drops a refused statement, and
pauses the client for a held one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..sql import analyze
from . import protocol as p
from ._client_frames import QUERY
from ._exchange import Exchange, cstring
from ._pipeline import UNOBSERVED, Pipeline, Rejection, StatementFacts
from ._session_info import SessionInfo

_monotonic = time.monotonic


class StatementScreen:
    """One client's side of the request pipeline (see the module docstring);
    ``on_row_limit`` is called when a statement returns more rows than the firewall allows."""

    __slots__ = ("admitted", "client_addr", "info", "on_row_limit", "pipeline")

    def __init__(
        self, pipeline: Pipeline, info: SessionInfo, client_addr: str | None,
        on_row_limit: Callable[[], None],
    ) -> None:
        self.pipeline = pipeline
        self.info = info
        self.client_addr = client_addr
        self.on_row_limit = on_row_limit
        self.admitted = False  # the next statement was held by a rate limit: not judged again

    def verdict(
        self, exchange: Exchange, t: int, buf: bytes, start: int, end: int
    ) -> Rejection | float | None:
        """The verdict on the Query or Execute at ``buf[start:end]``: None to forward it,
        the seconds to hold it first, or a Rejection to answer instead."""
        if self.admitted:  # held by a rate limit already, now due (and observed as drawn then)
            self.admitted = False
            return None
        pipeline = self.pipeline
        facts = self.facts(exchange, t, buf, start, end)
        verdict = pipeline.on_statement(facts, _monotonic())
        exchange.observation = UNOBSERVED if isinstance(verdict, Rejection) else pipeline.observe()
        limit = pipeline.row_limit(facts)
        if limit and not exchange.row_limit:
            exchange.row_limit = limit
            rejection = pipeline.row_limit_rejection(limit, count=False)
            exchange.row_limit_error = p.error_response(rejection.sqlstate, rejection.message)
            exchange.on_row_limit = self.on_row_limit
        return verdict

    def facts(self, exchange: Exchange, t: int, buf: bytes, start: int, end: int) -> StatementFacts:
        """What the pipeline's rules look at in the Query or Execute at ``buf[start:end]``."""
        if t == QUERY:
            sql = buf[start + 5 : end - 1].decode("utf-8", "replace")
        else:
            portal, _ = cstring(buf, start + 5, end)
            sql = exchange.portals.get(portal) or ""
        info = self.info
        return StatementFacts(
            user=info.user, database=info.database,
            application_name=exchange.application_name, client_addr=self.client_addr,
            sql=sql, info=analyze(sql),
        )  # fmt: skip
