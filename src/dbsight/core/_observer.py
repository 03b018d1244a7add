"""Observers: whatever wants to see queries (dbsight's own sinks and the user's).

An observer may implement any of three hooks. ``before_query(ctx)`` runs just before the
statement is sent, ``after_query(ctx, event)`` after it succeeded and ``on_error(ctx, event)``
after it failed (``event.error`` says how). A hook that raises is isolated: the query goes
on, the failure is counted per observer and logged once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..sql import SqlInfo
    from ._context import RequestContext
    from ._event import QueryEvent

logger = logging.getLogger("dbsight")


class QueryContext:
    """What is known about a statement while it runs; passed to every hook.

    ``state`` is a free slot for an observer that needs to carry something from
    ``before_query`` to ``after_query`` (the tracing sink keeps its span in ``span``).
    """

    __slots__ = (
        "sql",
        "params",
        "system",
        "source",
        "info",
        "started",
        "started_at",
        "request",
        "function",
        "database",
        "user",
        "explainer",
        "span",
        "trace_id",
        "span_id",
        "state",
    )

    def __init__(
        self,
        sql: str,
        params: object | None,
        system: str,
        source: str,
        info: SqlInfo,
        started: float,
        started_at: float,
        request: RequestContext | None,
        function: str | None,
        database: str | None,
        user: str | None,
        explainer: Any,
    ) -> None:
        self.sql = sql
        self.params = params
        self.system = system
        self.source = source
        self.info = info
        self.started = started
        self.started_at = started_at
        self.request = request
        self.function = function
        self.database = database
        self.user = user
        self.explainer = explainer
        self.span: Any = None
        self.trace_id: str | None = request.trace_id if request is not None else None
        self.span_id: str | None = request.span_id if request is not None else None
        self.state: Any = None


@runtime_checkable
class QueryObserverProtocol(Protocol):
    def after_query(self, ctx: QueryContext, event: QueryEvent) -> None: ...


class QueryObserver:
    """Base class for observers; override the hooks you need (the others cost nothing)."""

    name: str = ""

    def before_query(self, ctx: QueryContext) -> None:
        """Called before the statement is sent."""

    def after_query(self, ctx: QueryContext, event: QueryEvent) -> None:
        """Called after the statement succeeded."""

    def on_error(self, ctx: QueryContext, event: QueryEvent) -> None:
        """Called after the statement failed; ``event.error`` is set."""


_HOOKS = ("before_query", "after_query", "on_error")


def observer_name(observer: object) -> str:
    return getattr(observer, "name", "") or type(observer).__qualname__


def implemented_hooks(observer: object) -> dict[str, Any]:
    """The bound hooks an observer really implements (inherited no-ops are left out)."""
    hooks: dict[str, Any] = {}
    for hook in _HOOKS:
        method = getattr(observer, hook, None)
        if method is None or not callable(method):
            continue
        base = getattr(QueryObserver, hook)
        if getattr(type(observer), hook, None) is base:
            continue
        hooks[hook] = method
    return hooks


class ObserverFailures:
    """Counts hook failures per observer and logs the first one of each observer."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def record(self, name: str, hook: str, exc: BaseException) -> None:
        count = self.counts.get(name, 0)
        self.counts[name] = count + 1
        if count == 0:
            logger.error(
                "dbsight observer %r failed in %s; the query is unaffected and further "
                "failures of this observer are counted in dbsight_observer_errors_total",
                name,
                hook,
                exc_info=exc,
            )
