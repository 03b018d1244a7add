"""The lean path's statements: what an instrument hands `Recorder.done`, and their events.

On the lean path (see `dbsight.core.Recorder`) a successful statement waits for the next
batch as a plain tuple, `LeanStatement`: one allocation and no attribute stores on the
application's path. `lean_contexts` turns it into the `QueryContext` that `Recorder.start`
would have made, with the same fields, when the batch is folded. An instrument that has a
statement's analysis before it runs (the proxy finds it by the text's shape) begins it as a
`LeanStart` tuple and ends it with `Recorder.ended`, which holds the analysis with it.
"""

from __future__ import annotations

try:
    import cython
except ImportError:  # (Cython builds the extension; without it the decorators below do nothing)
    from .._no_cython import cython

import time
from collections.abc import Callable
from typing import Any

from ..sql._info import SqlInfo
from ._context import RequestContext
from ._observer import QueryContext

_time = time.time
_perf_counter = time.perf_counter

_new = object.__new__

# A statement begun on the lean path by an instrument that has its analysis at hand
# (`Recorder.ended`): (sql, system, source, info, state, params, explain, started).
# ``sql``: its text, or the UTF-8 bytes it came as (the proxy's, known by their shape:
# decoded only for its full event, `lean_contexts`);
# ``info``: its analysis (the proxy finds it by the text's shape), or None (looked up when
# folded); ``state``: what gives the statement's database, user, application_name,
# client_addr and explainer, or None; ``explain``: whether that explainer may EXPLAIN it;
# ``started``: the ``time.perf_counter()`` it is timed from.
LeanStart = tuple[str | bytes, str, str, SqlInfo | None, Any, object, bool, float]

# A statement held on the lean path: its `LeanStart`, then (request, function,
# started_at, duration_s, rows), what it ran in and how it went. ``started_at`` may be None:
# its start on the wall clock is then read when it is folded, from ``started`` (a clock read
# fewer for each statement; the wall clock's offset from perf_counter's is the same then).
LeanStatement = tuple[
    str | bytes, str, str, SqlInfo | None, Any, object, bool, float,
    RequestContext | None, str | None, float, float, Any,
]  # fmt: skip


def lean_contexts(
    batch: list[Any],
    infos: dict[str, dict[Any, Any]],
    info_of: Callable[[str, str], Any],
    app: str | None,
    keep_params: bool,
) -> None:
    """Replace the lean statements of ``batch`` (tuples) by their events, in place: the
    fields `Recorder.start` sets, with their duration and rows. ``infos``: system -> its
    analysis cache, ``info_of(sql, system)`` the analysis where that misses; ``app`` and
    ``keep_params``: the recorder's settings. One loop for the whole batch (this runs for
    every statement). The request's ids and route are read now; the scopes set them when
    they open (`RequestContext`)."""
    clock = 0.0  # the wall clock's offset from perf_counter's, read once (see LeanStatement)
    for i, held in enumerate(batch):
        if type(held) is not tuple:
            if type(held) is LeanEvent:  # (held as its event, for observers that no longer
                batch[i] = held.full()  # take them: the recorder's changed meanwhile)
            continue
        (sql, system, source, info, state, params, explain, started, request, function,
         started_at, duration, rows) = held  # fmt: skip
        sql = lean_text(sql)
        if started_at is None:
            if clock == 0.0:
                clock = _time() - _perf_counter()
            started_at = clock + started
        if info is None:
            cache = infos.get(system)
            info = cache.get(sql) if cache is not None else None
            if info is None:
                info = info_of(sql, system)
        ctx: QueryContext = _new(QueryContext)
        ctx.sql = sql
        ctx.normalized = info.normalized
        ctx.fingerprint = info.fingerprint
        ctx.operation = info.operation
        ctx.tables = info.tables
        ctx.read_only = info.read_only
        ctx.system = system
        ctx.source = source
        ctx.duration_s = duration
        ctx.started_at = started_at
        ctx.rows = rows
        ctx.error = None
        if request is None:
            ctx.request_id = ctx.trace_id = ctx.span_id = ctx.route = None
            ctx.app = app
        else:
            ctx.request_id = request.request_id
            ctx.trace_id = request.trace_id
            ctx.span_id = request.span_id
            ctx.route = request.route
            ctx.app = request.app or app
        ctx.function = function
        if state is None:
            ctx.database = ctx.user = ctx.application_name = ctx.client_addr = explainer = None
        else:
            ctx.database = state.database
            ctx.user = state.user
            ctx.application_name = state.application_name
            ctx.client_addr = state.client_addr
            explainer = state.explainer if explain else None
        ctx.params = params if keep_params else None
        ctx.info = info
        ctx.request = request
        ctx.explainer = explainer
        ctx.explain_params = params if explainer is not None else None
        ctx.span = None
        ctx.state = None
        ctx.sampled = None
        ctx.started = started
        batch[i] = ctx


def _from_full(name: str) -> property:
    return property(lambda self: getattr(self.full(), name), doc=f"The event's ``{name}``.")


# (compiled: up to 256 freed events are kept for the next ones to reuse — a batch is 64 —
# rather than each one's memory freed at the fold and allocated again per statement)
@cython.freelist(256)
@cython.cclass
class LeanEvent:
    """What dbsight's own batched sinks (``lean_events = True``) are handed for a lean
    statement in place of its `QueryContext`: the fields their counting reads, stored
    (a dozen stores rather than thirty); any other field of the event (text, tables,
    parameters ...) comes from the full event (`full`), built on first use and kept (a sink
    meets a statement shape for the first time, takes a parameter sample). Read-only. Made
    by ``LeanEvent.__new__(LeanEvent)`` (no ``__init__``).

    Compiled (see `dbsight._compiled`), an extension type whose duration and start are C
    doubles: the sinks' compiled loops read them without a Python object in between. The
    other fields are properties spelled out one by one (an extension type's attributes
    cannot be added after it is made; tests/core/test_recorder_lean.py checks that none is
    missing), not a ``__getattr__``, with which a class loses the interpreter's fast path
    for its slots' reads."""

    __slots__ = (
        "_full", "_function", "_held", "_info", "_settings", "database", "duration_s",
        "fingerprint", "route", "rows", "started_at", "system",
    )  # fmt: skip

    system: str
    fingerprint: str
    duration_s: float
    rows: int | None
    started_at: float
    route: str | None
    database: str | None
    # a `LeanStatement` (made at the fold, by `lean_events`), or the `LeanStart` of a
    # statement held as its event (`dbsight.core._held.LeanEnding`: outside a request, its
    # function then in ``_function``)
    _held: LeanStatement | LeanStart
    _function: str | None
    _info: Any
    _settings: tuple[str | None, bool]  # the recorder's (app, keep_params)
    _full: QueryContext | None  # (unset or None until built)

    error = None  # (a lean statement succeeded)

    # every other field of the event, from the full one
    sql = _from_full("sql")
    normalized = _from_full("normalized")
    operation = _from_full("operation")
    tables = _from_full("tables")
    read_only = _from_full("read_only")
    source = _from_full("source")
    request_id = _from_full("request_id")
    trace_id = _from_full("trace_id")
    span_id = _from_full("span_id")
    app = _from_full("app")
    function = _from_full("function")
    user = _from_full("user")
    application_name = _from_full("application_name")
    client_addr = _from_full("client_addr")
    params = _from_full("params")
    info = _from_full("info")
    started = _from_full("started")
    request = _from_full("request")
    explainer = _from_full("explainer")
    explain_params = _from_full("explain_params")
    span = _from_full("span")
    state = _from_full("state")
    sampled = _from_full("sampled")

    def full(self) -> QueryContext:
        """The statement's full event (built on first use, then kept)."""
        try:
            full = self._full
        except AttributeError:  # (never set: the Python variant's slot)
            full = None
        if full is None:
            held = self._held
            if len(held) == 8:  # a `LeanStart`, held as its event
                held = held + (None, self._function, self.started_at, self.duration_s,
                               self.rows)  # fmt: skip
            batch: list[Any] = [held[:3] + (self._info,) + held[4:]]
            lean_contexts(batch, {}, _no_info, *self._settings)
            full = self._full = batch[0]
        return full

    @property
    def outcome(self) -> str:
        return "ok"

    @property
    def table(self) -> str:
        return self.full().table


def _no_info(sql: str, system: str) -> Any:  # pragma: no cover - the info is always given
    raise LookupError(sql)


def lean_events(
    batch: list[Any],
    infos: dict[str, dict[Any, Any]],
    info_of: Callable[[str, str], Any],
    app: str | None,
    keep_params: bool,
) -> None:
    """`lean_contexts` for dbsight's own batched sinks: each lean statement of ``batch``
    becomes a `LeanEvent`, in place."""
    settings = (app, keep_params)
    clock = 0.0  # the wall clock's offset from perf_counter's, read once (see LeanStatement)
    # a run of statements of one shape, or of one session, reads its fingerprint or its
    # database once (an attribute read of a Python object is most of what an event costs)
    last_info: Any = None
    fingerprint: Any = None
    last_state: Any = None
    database: Any = None
    for i in range(len(batch)):
        held = batch[i]
        if type(held) is not tuple:
            continue
        (sql, system, _, info, state, _, _, started, request, _, held_at, duration,
         rows) = held  # fmt: skip  # (one unpacking costs less than seven subscripts)
        if held_at is None:
            if clock == 0.0:
                clock = _time() - _perf_counter()
            started_at = clock + started
        else:
            started_at = held_at
        if info is None:
            sql = lean_text(sql)  # (never bytes from the proxy: held with its analysis)
            cache = infos.get(system)
            info = cache.get(sql) if cache is not None else None
            if info is None:
                info = info_of(sql, system)
        if info is not last_info:
            last_info = info
            fingerprint = info.fingerprint
        if state is not last_state:
            last_state = state
            database = state.database if state is not None else None
        batch[i] = new_event(
            system, fingerprint, duration, rows, started_at,
            request.route if request is not None else None, database, held, None, info,
            settings,
        )  # fmt: skip


def new_event(
    system: str, fingerprint: str, duration: float, rows: int | None, started_at: float,
    route: str | None, database: str | None, held: LeanStatement | LeanStart,
    function: str | None, info: Any, settings: tuple[str | None, bool],
) -> LeanEvent:
    """A `LeanEvent` of these fields (``held``: a `LeanStatement`, its function in it, or
    the `LeanStart` of a statement held as its event, with its ``function``)."""
    event = LeanEvent.__new__(LeanEvent)
    event.system = system
    event.fingerprint = fingerprint
    event.duration_s = duration
    event.rows = rows
    event.started_at = started_at
    event.route = route
    event.database = database
    event._held = held
    event._function = function
    event._info = info
    event._settings = settings
    return event


def lean_text(sql: str | bytes) -> str:
    """A held statement's text (see `LeanStart`: the proxy's may be the bytes it came in)."""
    return sql.decode("utf-8", "replace") if type(sql) is bytes else sql  # type: ignore[return-value]
