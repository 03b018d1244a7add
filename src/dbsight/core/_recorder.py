"""The recorder: the one place every instrument hands its statements to.

An instrument calls ``start()`` before the statement, then ``finish()`` or ``fail()``.
The recorder times it, attaches the cached SQL analysis and the request context, builds
the `QueryEvent` and runs the observers, each isolated from the others and from the
application. When dbsight is disabled ``active`` is False and instruments skip it all.

Observers that say ``batched = True`` (dbsight's metrics, statistics and parameter samples)
get the successful statements in batches: ``finish()`` keeps the event, and every
`BATCH` statements (or when something reads what they count, through `Recorder.flush`)
each of them folds the whole batch in one loop, in one call when it has an
``after_batch(events)`` hook (dbsight's sinks do; a batch hook that raises loses the rest of
that batch for its observer, counted in ``failures``). Every statement still reaches every
observer, in order: a failed or slow statement, a change of observers and every reader
flush what is held first. Between statements the application's own work (the driver, the
event loop) pushes dbsight's code and data out of the CPU caches; folding a batch in one
go pays for bringing them back once per batch rather than once per statement.

The lean path goes one step further for the instruments that take it (asyncpg's, psycopg's,
SQLAlchemy's): while no observer needs a statement as it happens (``lean``: no
``before_query`` hook, no sqlcommenter, and every other ``after_query`` hook says through
its ``after_query_wanted`` gate that it would do nothing now), an instrument times the
statement itself and hands its facts to `Recorder.done`, which keeps them in a tuple;
the `QueryContext` is built when the batch is folded. When dbsight's own sinks are the
only batched observers (each says ``lean_events = True``: it reads events and keeps none),
they are handed a lighter `LeanEvent` instead, which builds the full event only if a field
beyond what counting reads is asked for. A statement that fails, runs slow or meets an
open gate gets its event at once, built the same way, and goes the usual way (`finish`,
`fail`). ``dbsight proxy`` takes the same path for the statements it relays: it begins each
as a `LeanStart` tuple, with the analysis it found by the text's shape and the session's
database, user, application_name and client address, and ends it with `ended` (or makes
its event with `begun_context` when it fails).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ..sql._analyze import analyze_into, front_cache
from ..sql._info import SqlInfo
from ._comment_context import CommentContext
from ._context import FingerprintTally, RequestContext, _function, _request
from ._errors import error_info
from ._event import QueryEvent
from ._held import BATCH, LeanEnding, take
from ._lean import LeanStart, LeanStatement, lean_contexts, lean_events, lean_text
from ._observer import (
    ObserverFailures,
    QueryContext,
    implemented_hooks,
    observer_name,
)
from ._settings import Settings

_perf_counter = time.perf_counter
_time = time.time
_INF = float("inf")
_new = object.__new__

# Client-reported system names mapped to the SQL dialect that parses their text.
_DIALECTS = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}


def dialect_for(system: str) -> str:
    return _DIALECTS.get(system, system)


class Recorder:
    """Holds the active observers and turns statements into events."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.defaults()  # no variable is read at import
        self.failures = ObserverFailures()
        self._observers: list[object] = []
        self._before: tuple[tuple[str, Callable[..., Any]], ...] = ()
        self._after: tuple[tuple[str, Callable[..., Any], float], ...] = ()
        # The after hooks that want every statement, for statements shorter than the
        # smallest ``min_duration_s`` of the others (all but the slow ones).
        self._after_all: tuple[tuple[str, Callable[..., Any]], ...] = ()
        self._after_cutoff = _INF
        self._error: tuple[tuple[str, Callable[..., Any], float], ...] = ()
        # The hooks of batched observers (for statements under the cutoff): (name, hook,
        # whole), ``whole`` for an ``after_batch`` hook that takes a batch in one call, else
        # the ``after_query`` hook; and the statements they have not seen yet (a deque:
        # appends and pops from several threads never lose one).
        self._batched: tuple[tuple[str, Callable[..., Any], bool], ...] = ()
        self._pending: deque[QueryContext | LeanStatement] = deque()
        # `ended` for this recorder (compiled: no Python frame per statement the proxy
        # relays); this instance's ``ended`` is its method, in place of the class's.
        # (the proxy's compiled exchange calls its ``ended`` in C: `Recorder.ended` is it)
        self.lean_ending = LeanEnding(self, self._pending)
        self.ended = self.lean_ending.ended  # type: ignore[method-assign]
        self.active = False
        # Statements may take the lean path (`done`): see the module docstring. There, a
        # statement shorter than ``lean_cutoff`` (-1 when the path is closed) is held as a
        # tuple when ``lean_gate`` is None or returns False (the ``after_query_wanted``
        # gates of the unbatched ``after_query`` hooks, all closed).
        self.lean = False
        self.lean_cutoff = -1.0
        self.lean_gate: Callable[[], object] | None = None
        self._lean_events = False
        self.pending = self._pending  # where an instrument holds a lean statement
        self._keep_params = False
        self._app: str | None = None
        # settings.sqlcommenter as a plain attribute: instruments read it per statement,
        # and an attribute of the pydantic settings model costs four times as much.
        self.sqlcommenter = "off"
        # system -> the analysis cache of its dialect (see `dbsight.sql._analyze.front_cache`)
        self._infos: dict[str, dict[str | bytes, Any]] = {}
        self.apply_settings(self.settings)

    # -- configuration -------------------------------------------------------------
    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        self._keep_params = settings.include_query_bodies
        self._app = settings.service_name
        self.sqlcommenter = settings.sqlcommenter
        self._rebuild()

    @property
    def observers(self) -> tuple[object, ...]:
        return tuple(self._observers)

    def add_observer(self, observer: object) -> None:
        if not implemented_hooks(observer):
            raise TypeError(
                f"{observer!r} implements none of before_query, after_query, on_error"
            )
        if observer not in self._observers:
            self.flush()
            self._observers.append(observer)
            self._rebuild()

    def remove_observer(self, observer: object) -> None:
        if observer in self._observers:
            self.flush()  # what it has not seen yet, it still sees
            self._observers.remove(observer)
            self._rebuild()

    def replace_observers(self, observers: Iterable[object]) -> None:
        self.flush()
        self._observers = list(observers)
        self._rebuild()

    def flush(self) -> None:
        """Hand the statements held for the batched observers to them now. Whatever reads
        what those observers count calls this first (they are given it: ``bind_flush``)."""
        pending = self._pending
        n = len(pending)
        if not n:
            return
        # each popleft takes one statement: one appended meanwhile waits for the next flush,
        # and two threads flushing at once never fold the same statement twice
        batch = take(pending, n)
        # the statements of the lean path (tuples): their events, now (lighter ones when
        # dbsight's own sinks are the only batched observers)
        build = lean_events if self._lean_events else lean_contexts
        build(batch, self._infos, self.analysis, self._app, self._keep_params)
        for name, hook, whole in self._batched:
            if whole:  # its after_batch: the batch in one call
                try:
                    hook(batch)
                except Exception as exc:  # (what it had not counted of this batch is lost)
                    self.failures.record(name, "after_query", exc)
                continue
            for ctx in batch:
                try:
                    hook(ctx, ctx)
                except Exception as exc:
                    self.failures.record(name, "after_query", exc)

    def _rebuild(self) -> None:
        self.flush()  # with the hooks that were current when the statements ended
        before, after, error = [], [], []
        # after hooks for statements under the cutoff: called at once, or batched
        after_all: list[tuple[str, Callable[..., Any]]] = []
        batched: list[tuple[str, Callable[..., Any], bool]] = []
        gates: list[Callable[[], object]] = []
        ungated = False
        lean_ok = True  # every batched observer takes `LeanEvent`s
        for observer in self._observers:
            hooks = implemented_hooks(observer)
            name = observer_name(observer)
            # An observer that only wants statements from some duration on (the slow-query
            # log) says so, and is not even called for the others.
            min_s = float(getattr(observer, "min_duration_s", 0.0) or 0.0)
            if "before_query" in hooks:
                before.append((name, hooks["before_query"]))
            if "after_query" in hooks:
                after.append((name, hooks["after_query"], min_s))
                if min_s > 0.0:
                    pass
                elif getattr(observer, "batched", False) is True:
                    whole = getattr(observer, "after_batch", None)
                    if callable(whole):
                        batched.append((name, whole, True))
                    else:
                        batched.append((name, hooks["after_query"], False))
                    lean_ok &= getattr(observer, "lean_events", False) is True
                    bind = getattr(observer, "bind_flush", None)
                    if bind is not None:
                        bind(self.flush)
                else:
                    after_all.append((name, hooks["after_query"]))
                    gate = getattr(observer, "after_query_wanted", None)
                    if callable(gate):
                        gates.append(gate)
                    else:
                        ungated = True
            if "on_error" in hooks:
                error.append((name, hooks["on_error"], min_s))
        self._before, self._after, self._error = tuple(before), tuple(after), tuple(error)
        self._after_all, self._batched = tuple(after_all), tuple(batched)
        self._after_cutoff = min((min_s for _, _, min_s in after if min_s > 0.0), default=_INF)
        self.active = self.settings.enabled and bool(self._observers)
        self.lean = self.active and not before and not ungated and self.sqlcommenter == "off"
        self.lean_cutoff = self._after_cutoff if self.lean else -1.0
        self.lean_gate = _all_closed(gates)
        self.lean_ending.cutoff = self.lean_cutoff
        self.lean_ending.set_gate(self.lean_gate)
        self._lean_events = lean_ok
        self.lean_ending.set_events(lean_ok, (self._app, self._keep_params))

    # -- the hot path ----------------------------------------------------------------
    def start(
        self,
        sql: str,
        system: str,
        source: str,
        params: object | None = None,
        *,
        database: str | None = None,
        user: str | None = None,
        explainer: Any = None,
        sampled: bool | None = None,
        comment: CommentContext | None = None,
        info: SqlInfo | None = None,
    ) -> QueryContext:
        """Begin a statement. ``comment``: what its sqlcommenter comment says of the
        request that sent it (the proxy's statements, from other processes), in place of
        this process's request context. ``info``: ``analyze(sql)``, when the caller has it."""
        if info is None:
            info = self.analysis(sql, system)
        # A new `QueryContext`, its fields stored one by one (no __init__ call: the class
        # keeps QueryEvent's constructor, so that ``dataclasses.replace(event, ...)`` works
        # on the events observers receive); this runs for every statement.
        ctx: QueryContext = _new(QueryContext)
        ctx.sql = sql
        ctx.normalized = info.normalized
        ctx.fingerprint = info.fingerprint
        ctx.operation = info.operation
        ctx.tables = info.tables
        ctx.read_only = info.read_only
        ctx.system = system
        ctx.source = source
        ctx.duration_s = 0.0
        ctx.started_at = _time()
        ctx.rows = None
        ctx.error = None
        request = _request.get()
        if request is None:
            ctx.request_id = ctx.trace_id = ctx.span_id = ctx.route = None
            ctx.app = self._app
        else:
            ctx.request_id = request.request_id
            ctx.trace_id = request.trace_id
            ctx.span_id = request.span_id
            ctx.route = request.route
            ctx.app = request.app or self._app
        ctx.function = _function.get()
        ctx.database = database
        ctx.user = user
        ctx.application_name = None
        ctx.client_addr = None
        ctx.params = params if self._keep_params else None
        ctx.info = info
        ctx.request = request
        ctx.explainer = explainer
        ctx.explain_params = params if explainer is not None else None
        ctx.span = None
        ctx.state = None
        ctx.sampled = sampled  # decided for this statement (the proxy's sample step), or None
        ctx.started = _perf_counter()
        if comment is not None:
            comment.apply(ctx)
        before = self._before
        if before:
            for name, hook in before:
                try:
                    hook(ctx)
                except Exception as exc:  # an observer never breaks the query
                    self.failures.record(name, "before_query", exc)
            ctx.started = _perf_counter()  # the hooks' own time is not the statement's
        return ctx

    def finish(self, ctx: QueryContext, rows: int | None = None) -> QueryEvent:
        """End a statement that succeeded; ``ctx`` is now its event, and is returned."""
        duration = ctx.duration_s = _perf_counter() - ctx.started
        ctx.rows = rows
        request = ctx.request
        if request is not None:
            _account(request, ctx, duration)
        if duration < self._after_cutoff:  # the usual case: the same hooks, in the same order
            for name, hook in self._after_all:
                try:
                    hook(ctx, ctx)
                except Exception as exc:
                    self.failures.record(name, "after_query", exc)
            if self._batched:
                pending = self._pending
                pending.append(ctx)
                if len(pending) >= BATCH:
                    self.flush()
            return ctx
        if self._pending:
            self.flush()  # a slow statement comes after the ones held
        for name, hook, min_s in self._after:
            if duration >= min_s:
                try:
                    hook(ctx, ctx)
                except Exception as exc:
                    self.failures.record(name, "after_query", exc)
        return ctx

    def fail(self, ctx: QueryContext, exc: BaseException) -> QueryEvent:
        """End a statement that raised ``exc``; ``ctx`` is now its event, and is returned."""
        duration = ctx.duration_s = _perf_counter() - ctx.started
        if self._pending:
            self.flush()  # a failed statement comes after the ones held
        ctx.error = error_info(exc)
        request = ctx.request
        if request is not None:
            _account(request, ctx, duration)
        for name, hook, min_s in self._error:
            if duration >= min_s:
                try:
                    hook(ctx, ctx)
                except Exception as hook_exc:
                    self.failures.record(name, "on_error", hook_exc)
        return ctx

    # -- the lean path (see the module docstring) -------------------------------------
    def done(
        self,
        sql: str,
        system: str,
        source: str,
        params: object | None,
        state: Any,
        explain: bool,
        started: float,
        rows: int | None,
    ) -> None:
        """A statement that succeeded, for an instrument that saw ``lean`` True before
        running it and timed it itself (``started``: ``time.perf_counter()`` just before
        it was sent). ``sql`` is a str; ``state`` gives its ``database``, ``user`` and
        ``explainer`` (the EXPLAIN of a slow statement only with ``explain``), or is None.

        The request and function scopes are read here rather than before the statement:
        the statement ran in this same context, where only the driver ran meanwhile."""
        duration = _perf_counter() - started
        request = _request.get()
        gate = self.lean_gate
        if duration < self.lean_cutoff and (gate is None or gate() is False):
            if request is not None:
                _account(request, self.analysis(sql, system), duration)
            pending = self._pending
            pending.append(
                (sql, system, source, None, state, params, explain, started, request,
                 _function.get(), _time() - duration, duration, rows)
            )  # fmt: skip
            if len(pending) >= BATCH:
                self.flush()
            return
        ctx = self._lean_context(
            (sql, system, source, None, state, params, explain, started, request,
             _function.get(), _time() - duration, 0.0, None)
        )  # fmt: skip
        self.finish(ctx, rows)

    def failed(
        self,
        sql: str,
        system: str,
        source: str,
        params: object | None,
        state: Any,
        explain: bool,
        started: float,
        exc: BaseException,
    ) -> None:
        """`done` for a statement that raised ``exc``: its event at once, then `fail`."""
        ctx = self._lean_context(
            (sql, system, source, None, state, params, explain, started, _request.get(),
             _function.get(), _time() - (_perf_counter() - started), 0.0, None)
        )  # fmt: skip
        self.fail(ctx, exc)

    def ended(self, begun: LeanStart, rows: int | None) -> None:
        """`done` for a statement begun as a `LeanStart` tuple by an instrument that saw
        ``lean`` True (the proxy's relayed statements: with their analysis, which is held
        with them and never looked up again, and a ``state`` that gives their
        ``application_name`` and ``client_addr`` as they were when they began)."""
        self.lean_ending.ended(begun, rows)  # (an instance's ``ended`` is that itself)

    def _account_begun(self, request: RequestContext, begun: LeanStart, duration: float) -> None:
        _account(request, begun[3] or self.analysis(lean_text(begun[0]), begun[1]), duration)

    def _finish_begun(
        self, begun: LeanStart, rows: int | None, request: RequestContext | None, duration: float
    ) -> None:
        """`ended` for a statement that ran slow or that an observer wants now: its event,
        at once, then `finish`."""
        ctx = self._lean_context(begun + (request, _function.get(), _time() - duration, 0.0, None))
        self.finish(ctx, rows)

    def begun_context(self, begun: LeanStart) -> QueryContext:
        """The `QueryContext` of a statement begun as a `LeanStart` that will not end on the
        lean path (it failed, or its instrument records it some other way): what `start`
        would have made of it then, timed from its start; `finish` or `fail` it."""
        return self._lean_context(
            begun + (_request.get(), _function.get(), _time() - (_perf_counter() - begun[7]),
                     0.0, None)
        )  # fmt: skip

    def analysis(self, sql: str, system: str) -> Any:
        """The analysis of ``sql`` in ``system``'s dialect, from its front cache or made and
        kept there."""
        infos = self._infos.get(system)
        if infos is None:
            infos = self._infos[system] = front_cache(_DIALECTS.get(system, system))
        try:
            info = infos.get(sql)
        except TypeError:  # not a str or bytes: analyze() says so
            info = None
        if info is None:
            info = analyze_into(infos, sql, _DIALECTS.get(system, system))
        return info

    def _lean_context(self, held: LeanStatement) -> QueryContext:
        batch: list[Any] = [held]
        lean_contexts(batch, self._infos, self.analysis, self._app, self._keep_params)
        return batch[0]  # type: ignore[no-any-return]


def _all_closed(gates: list[Callable[[], object]]) -> Callable[[], object] | None:
    """One gate for several (False when every one says False), the one, or None."""
    if not gates:
        return None
    if len(gates) == 1:
        return gates[0]
    every = tuple(gates)
    return lambda: not all(gate() is False for gate in every)


def _account(request: RequestContext, shape: Any, duration: float) -> None:
    """Add a statement to its request's totals and to the tally of its shape (``shape``:
    its event, or its analysis on the lean path, which has no event yet)."""
    request.queries += 1
    request.db_time_s += duration
    if shape.operation != "tx":
        tally = request.fingerprints.get(shape.fingerprint)
        if tally is None:
            tally = request.fingerprints[shape.fingerprint] = FingerprintTally(shape.normalized)
        tally.count += 1
        tally.total_s += duration
