"""Observers: whatever wants to see queries (dbsight's own sinks and the user's).

An observer may implement any of three hooks. ``before_query(ctx)`` runs just before the
statement is sent, ``after_query(ctx, event)`` after it succeeded and ``on_error(ctx, event)``
after it failed (``event.error`` says how). A hook that raises is isolated: the query goes
on, the failure is counted per observer and logged once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ._event import QueryEvent

if TYPE_CHECKING:
    from ..sql import SqlInfo
    from ._context import RequestContext

logger = logging.getLogger("dbsight")


class QueryContext(QueryEvent):
    """A statement while it runs: the `QueryEvent` it becomes, plus what the hooks share.

    The recorder (`Recorder.start`) fills the event's fields it knows before the statement
    is sent (text, analysis, request, trace) and adds ``duration_s``, ``rows`` and ``error``
    when it ends; ``after_query(ctx, event)`` and ``on_error(ctx, event)`` then receive this
    one object as both arguments. One object per statement instead of two: this runs for every query.

    ``state`` is a free slot for an observer that needs to carry something from
    ``before_query`` to ``after_query`` (the tracing sink keeps its span in ``span``).
    ``explain_params`` are the parameters an EXPLAIN of a slow statement needs; unlike
    ``params`` they are kept whether or not ``include_query_bodies`` is on, and never exported.
    ``sampled`` is a decision made for this statement alone (the proxy's ``sample`` step):
    True or False overrides the log and trace sampling rates, None leaves them to decide.
    """

    __slots__ = (
        "info", "started", "request", "explainer", "explain_params", "span", "state", "sampled",
    )

    info: SqlInfo
    started: float
    request: RequestContext | None
    explainer: Any
    explain_params: object | None
    span: Any
    state: Any
    sampled: bool | None


@runtime_checkable
class QueryObserverProtocol(Protocol):
    def after_query(self, ctx: QueryContext, event: QueryEvent) -> None: ...


class QueryObserver:
    """Base class for observers; override the hooks you need (the others cost nothing).

    ``min_duration_s``: ``after_query`` and ``on_error`` are called only for statements that
    took at least this long (0: all), so an observer of slow statements costs nothing for
    the others.

    ``batched``: ``after_query`` may see a successful statement later, with others in a
    batch (every statement, in order; see `dbsight.core.Recorder`). For an observer that
    counts, where nobody needs each count at once; it then reads what it counted after
    calling the function the recorder hands to its ``bind_flush(flush)``, if it has one.

    ``after_query_wanted`` (optional, for an unbatched ``after_query`` of all statements):
    a callable of no arguments that returns False (that object) exactly when
    ``after_query``, called now for a successful statement, would do nothing, so that the
    recorder need neither call it nor build the event (its lean path, see
    `dbsight.core.Recorder`); a cheap C-level call, such as a bound ``dict.get``. An
    observer with such a hook and without this gate keeps every statement off that path."""

    name: str = ""
    min_duration_s: float = 0.0
    batched: bool = False

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
