"""Statements that span several Executes: portals suspended at a row limit.

An Execute may carry a row limit (asyncpg's ``fetchrow``/``fetchval`` ask for one row, its
cursors and JDBC's fetch size for a batch); when the portal has more rows the server sends
that many DataRows and PortalSuspended instead of CommandComplete, and the client may fetch
the rest with further Executes of the same portal. The proxy makes that one statement, as
in-process cursors and ``pg_stat_statements`` do: its rows add up over its Executes (there is
no command tag until the end, and the final tag of a SELECT counts the last Execute's rows
only) and its duration is the time those Executes took, not the time the client spent
between them. It ends at its CommandComplete, or when its portal goes away: the transaction
ends, the portal is closed or bound again, a simple Query drops the unnamed portal, the
session ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..core import statement_rows

_perf_counter = time.perf_counter

Finish = Callable[[Any, "int | None"], None]


class PortalRun:
    """One statement run through an Execute with a row limit: its event (``ctx``), portal,
    the rows of its Executes so far and the time they took."""

    __slots__ = ("ctx", "elapsed", "portal", "rows")

    def __init__(self, ctx: Any, portal: str) -> None:
        self.ctx = ctx
        self.portal = portal
        self.rows = 0
        self.elapsed = 0.0


class PortalRuns:
    """A session's statements run with a row limit: those waiting for an Execute's answer
    (``running``, by id of their event) and those ``suspended`` until their portal's next
    Execute. Both are empty for clients that never limit rows: the relay looks at them first."""

    __slots__ = ("running", "suspended")

    def __init__(self) -> None:
        self.running: dict[int, PortalRun] = {}
        self.suspended: dict[str, PortalRun] = {}

    def start(self, ctx: Any, portal: str) -> None:
        """An Execute with a row limit was sent for a new statement."""
        self.running[id(ctx)] = PortalRun(ctx, portal)

    def resume(self, portal: str, at: float) -> Any:
        """An Execute of ``portal`` was sent at ``at``: the suspended statement it goes on
        with (its clock set back by the time its earlier Executes took), or None."""
        run = self.suspended.pop(portal, None)
        if run is None:
            return None
        ctx = run.ctx
        ctx.started = at - run.elapsed
        self.running[id(ctx)] = run
        return ctx

    def completed(self, ctx: Any, tag_rows: int | None, returned: int) -> int | None:
        """The Execute of ``ctx`` completed (CommandComplete with ``tag_rows``, after
        ``returned`` DataRows): the statement's rows."""
        run = self.running.pop(id(ctx), None) if self.running else None
        if run is not None and run.rows:  # resumed: its DataRows over all its Executes
            return run.rows + returned
        return statement_rows(tag_rows, returned)

    def suspend(self, ctx: Any, returned: int, finish: Finish) -> None:
        """The server suspended the portal of ``ctx`` after ``returned`` DataRows."""
        run = self.running.pop(id(ctx), None) if self.running else None
        if run is None:  # (only an Execute with a row limit is suspended)
            finish(ctx, statement_rows(None, returned))
            return
        run.rows += returned
        run.elapsed = _perf_counter() - ctx.started
        if run.portal in self.suspended:  # an Execute sent before the first was answered
            self.end(run.portal, finish)
        self.suspended[run.portal] = run

    def forget(self, ctx: Any) -> None:
        """The Execute of ``ctx`` failed or was skipped: nothing more to count for it."""
        if self.running:
            self.running.pop(id(ctx), None)

    def end(self, portal: str, finish: Finish) -> None:
        """``portal`` went away while suspended (if it was): its statement ends with the
        rows it returned and the time its Executes took."""
        run = self.suspended.pop(portal, None)
        if run is not None:
            run.ctx.started = _perf_counter() - run.elapsed
            finish(run.ctx, run.rows)

    def end_all(self, finish: Finish) -> None:
        """Every suspended portal went away (its transaction or the session ended)."""
        for portal in list(self.suspended):
            self.end(portal, finish)

    def clear(self, finish: Finish) -> None:
        """The session's requests are over (or to be asked again elsewhere)."""
        self.end_all(finish)
        self.running.clear()
