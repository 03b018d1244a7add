"""The lean path's statements: what an instrument hands `Recorder.done`, and their events.

On the lean path (see `dbsight.core.Recorder`) a successful statement waits for the next
batch as a plain tuple, `LeanStatement`: one allocation and no attribute stores on the
application's path. `lean_contexts` turns it into the `QueryContext` that `Recorder.start`
would have made, with the same fields, when the batch is folded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._context import RequestContext
from ._observer import QueryContext

_new = object.__new__

# (sql, system, source, params, state, explain, request, function, started_at, duration_s,
#  rows); ``state``: what gives the statement's database, user and explainer, or None.
LeanStatement = tuple[
    str, str, str, object, Any, bool, RequestContext | None, str | None, float, float, Any
]


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
    for i, held in enumerate(batch):
        if type(held) is not tuple:
            continue
        (sql, system, source, params, state, explain, request, function, started_at,
         duration, rows) = held  # fmt: skip
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
            ctx.database = ctx.user = explainer = None
        else:
            ctx.database = state.database
            ctx.user = state.user
            explainer = state.explainer if explain else None
        ctx.application_name = None
        ctx.client_addr = None
        ctx.params = params if keep_params else None
        ctx.info = info
        ctx.request = request
        ctx.explainer = explainer
        ctx.explain_params = params if explainer is not None else None
        ctx.span = None
        ctx.state = None
        ctx.sampled = None
        ctx.started = 0.0  # not kept on this path: the duration is
        batch[i] = ctx
