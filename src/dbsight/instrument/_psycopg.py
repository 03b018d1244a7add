"""psycopg 3: `Connection` and `AsyncConnection`.

A connection makes every cursor through its ``cursor_factory`` / ``server_cursor_factory``
(``Connection.execute`` included), so instrumenting a connection sets both to cached
instrumented subclasses of the factories it has, and uninstrumenting puts the originals back
(unless the application has replaced them since). Nothing global is patched.

Recorded: ``execute`` (rows = ``rowcount``; with several statements in one string, the
last one's), ``executemany`` (one event, rows = total ``rowcount``, or with
``returning=True`` the rows of every statement), ``copy`` (one event for the whole COPY
block, rows = the COPY's count), ``stream`` (one event for the
whole stream, rows = rows yielded, recorded at exhaustion, error or abandonment). A
server-side (named) cursor is one event from ``execute`` through its fetches and iteration,
with rows = rows fetched, recorded when it is exhausted, closed or re-executed. Fetching from
a client-side cursor reads rows already received and is not recorded.

Pipeline mode keeps working; in it a statement's results (and errors) arrive at the next sync
point, so its event has no rows (None: ``execute`` and ``executemany`` alike) and the duration
of queueing it.

While the recorder's lean path is open (``recorder.lean``: dbsight's own sinks only, see
`dbsight.core.Recorder`), a client-side cursor's ``execute`` and ``executemany`` time a
statement themselves and hand it over as a tuple (``Recorder.done``; ``Recorder.failed``
when it raises); its event, the same as the regular path's, is built with the next batch.
Otherwise they go through ``recorder.start`` and ``finish``/``fail``; ``copy``, ``stream``
and server-side cursors always do.

psycopg internals relied on (checked against psycopg 3.3): ``Cursor._conn`` (the cursor's
connection, a slot) and ``Cursor._results`` (the PGresults of the last execute, read for
the rows of several statements). Pool housekeeping lives in ``_psycopg_pool``.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import update_wrapper
from typing import Any

import psycopg
from psycopg import sql as psycopg_sql

from ..core._sqlcomment import add_comment
from ._common import (
    ConnectionStates,
    ConnState,
    RowsAccumulator,
    _recording,
    mark_coroutine_function,
    recorder,
)
from ._explain import (
    TaskExplainer,
    ThreadExplainer,
    explain_prefix,
    explained,
    table_stats_lookup,
    timeout_statements,
)
from ._handle import InstrumentationHandle

SYSTEM = "postgresql"
SOURCE = "psycopg"

_perf_counter = time.perf_counter
_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK
_PIPELINE_OFF = psycopg.pq.PipelineStatus.OFF


_states = ConnectionStates()
_state_of = _states.by_id


def _text(query: Any, cursor: Any) -> str:
    if type(query) is str:
        return query
    if isinstance(query, (bytes, bytearray, memoryview)):
        return bytes(query).decode(errors="replace")
    if isinstance(query, psycopg_sql.Composable):
        return query.as_string(cursor)
    return str(query)


def _commentable(query: Any) -> bool:
    # A composed statement is sent as the text it composes to; bytes (in the connection's
    # encoding) and template strings are sent exactly as given.
    return type(query) is str or isinstance(query, psycopg_sql.Composable)


def _begin(
    state: Any, cursor: Any, query: Any, params: Any, explain: bool = True
) -> tuple[Any, Any]:
    """Start recording ``query`` on ``cursor``; returns the context and the query to send."""
    text = query if type(query) is str else _text(query, cursor)  # str: no call
    ctx = recorder.start(
        text,
        SYSTEM,
        SOURCE,
        params,
        database=state.database,
        user=state.user,
        explainer=state.explainer if explain else None,
    )
    mode = recorder.sqlcommenter
    if mode == "off" or not _commentable(query):
        return ctx, query
    sent = add_comment(text, ctx, mode, escape_percent=params is not None)
    return ctx, (query if sent is text else sent)


def _result_rows(result: Any) -> int | None:
    """Rows of one PGresult: the rows it holds, else its command tag's count (or None)."""
    if result.status == _TUPLES_OK:
        return result.ntuples
    return result.command_tuples


def _rows(cursor: Any) -> int | None:
    results = getattr(cursor, "_results", None)
    if results is not None and len(results) > 1:
        # several statements in one string: the last one's rows (``rowcount`` is the
        # first one's), as asyncpg's execute() and the proxy count them
        return _result_rows(results[-1])
    rowcount = cursor.rowcount
    return rowcount if rowcount >= 0 else None


def _many_rows(cursor: Any, returning: bool) -> int | None:
    """Rows of an ``executemany``: ``rowcount`` adds up each statement's count, except with
    ``returning=True``, where it is the first statement's only."""
    if cursor.connection.info.pipeline_status != _PIPELINE_OFF:
        return None  # the application's pipeline: the results arrive at its sync point
    if not returning:
        rowcount = cursor.rowcount
        return rowcount if rowcount >= 0 else None
    results = getattr(cursor, "_results", None)
    if not results:  # pipeline mode: the results arrive at the next sync point
        return None
    total = 0
    for result in results:
        count = _result_rows(result)
        if count is None:
            return None
        total += count
    return total


# -- client-side cursors: sync ---------------------------------------------------------------------
def _sync_client_methods(base: type) -> dict[str, Any]:
    b_execute = base.execute  # type: ignore[attr-defined]
    b_executemany = base.executemany  # type: ignore[attr-defined]
    b_stream = base.stream  # type: ignore[attr-defined]
    b_copy = base.copy  # type: ignore[attr-defined]

    def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if not recorder.active or _recording.get() or (state := _state_of(id(self._conn))) is None:
            return b_execute(self, query, params, **kwargs)
        rec = recorder
        if rec.lean:  # timed here, its event built later
            text = query if type(query) is str else _text(query, self)
            started = _perf_counter()
            try:
                result = b_execute(self, query, params, **kwargs)
            except BaseException as exc:
                rec.failed(text, SYSTEM, SOURCE, params, state, True, started, exc)
                raise
            rec.done(text, SYSTEM, SOURCE, params, state, True, started, _rows(self))
            return result
        ctx, sent = _begin(state, self, query, params)
        try:
            result = b_execute(self, sent, params, **kwargs)
        except BaseException as exc:
            recorder.fail(ctx, exc)
            raise
        recorder.finish(ctx, _rows(self))
        return result

    def executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        if not recorder.active or _recording.get() or (state := _state_of(id(self._conn))) is None:
            return b_executemany(self, query, params_seq, **kwargs)
        if recorder.lean:
            text = query if type(query) is str else _text(query, self)
            started = _perf_counter()
            try:
                result = b_executemany(self, query, params_seq, **kwargs)
            except BaseException as exc:
                recorder.failed(text, SYSTEM, SOURCE, params_seq, state, False, started, exc)
                raise
            rows = _many_rows(self, bool(kwargs.get("returning")))
            recorder.done(text, SYSTEM, SOURCE, params_seq, state, False, started, rows)
            return result
        ctx, sent = _begin(state, self, query, params_seq, explain=False)
        try:
            result = b_executemany(self, sent, params_seq, **kwargs)
        except BaseException as exc:
            recorder.fail(ctx, exc)
            raise
        recorder.finish(ctx, _many_rows(self, bool(kwargs.get("returning"))))
        return result

    def stream(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if not recorder.active or _recording.get() or (state := _state_of(id(self._conn))) is None:
            return b_stream(self, query, params, **kwargs)
        return _recorded_stream(state, self, b_stream, query, params, kwargs)

    @contextmanager
    def copy(self: Any, statement: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        if not recorder.active or _recording.get() or (state := _state_of(id(self._conn))) is None:
            with b_copy(self, statement, params, **kwargs) as copy:
                yield copy
            return
        ctx = _begin_copy(state, self, statement, params)
        try:
            with b_copy(self, statement, params, **kwargs) as copy:
                yield copy
        except BaseException as exc:
            recorder.fail(ctx, exc)
            raise
        recorder.finish(ctx, _rows(self))

    return {
        "execute": update_wrapper(execute, b_execute),
        "executemany": update_wrapper(executemany, b_executemany),
        "stream": update_wrapper(stream, b_stream),
        "copy": update_wrapper(copy, b_copy),
    }


def _begin_copy(state: Any, cursor: Any, statement: Any, params: Any) -> Any:
    # No comment on COPY (its data follows the statement) and nothing to EXPLAIN.
    text = _text(statement, cursor)
    return recorder.start(text, SYSTEM, SOURCE, params, database=state.database, user=state.user)


def _recorded_stream(
    state: Any,
    cursor: Any,
    b_stream: Callable[..., Any],
    query: Any,
    params: Any,
    kwargs: dict[str, Any],
) -> Iterator[Any]:
    ctx, sent = _begin(state, cursor, query, params)
    acc = RowsAccumulator(ctx)
    rows = b_stream(cursor, sent, params, **kwargs)
    try:
        while True:
            started = _perf_counter()
            try:
                row = next(rows)
            except StopIteration:
                acc.add(started, 0)
                acc.finish()
                return
            except BaseException as exc:
                acc.fail(started, exc)
                raise
            acc.add(started, 1)
            yield row
    finally:
        if acc.open:  # abandoned: psycopg cancels the query and drains it when closed
            started = _perf_counter()
            try:
                rows.close()
            except BaseException as exc:
                acc.fail(started, exc)
                raise
            acc.add(started, 0)
            acc.finish()


# -- client-side cursors: async --------------------------------------------------------------------
def _async_client_methods(base: type) -> dict[str, Any]:
    b_execute = base.execute  # type: ignore[attr-defined]
    b_executemany = base.executemany  # type: ignore[attr-defined]
    b_stream = base.stream  # type: ignore[attr-defined]
    b_copy = base.copy  # type: ignore[attr-defined]

    def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if not recorder.active or _recording.get() or (state := _state_of(id(self._conn))) is None:
            return b_execute(self, query, params, **kwargs)
        return _aexecute(state, self, b_execute, query, params, kwargs)

    def executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        if not recorder.active or _recording.get() or (state := _state_of(id(self._conn))) is None:
            return b_executemany(self, query, params_seq, **kwargs)
        return _aexecutemany(state, self, b_executemany, query, params_seq, kwargs)

    def stream(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if not recorder.active or _recording.get() or (state := _state_of(id(self._conn))) is None:
            return b_stream(self, query, params, **kwargs)
        return _recorded_astream(state, self, b_stream, query, params, kwargs)

    @asynccontextmanager
    async def copy(
        self: Any, statement: Any, params: Any = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        if not recorder.active or _recording.get() or (state := _state_of(id(self._conn))) is None:
            async with b_copy(self, statement, params, **kwargs) as copy:
                yield copy
            return
        ctx = _begin_copy(state, self, statement, params)
        try:
            async with b_copy(self, statement, params, **kwargs) as copy:
                yield copy
        except BaseException as exc:
            recorder.fail(ctx, exc)
            raise
        recorder.finish(ctx, _rows(self))

    return {
        "execute": mark_coroutine_function(update_wrapper(execute, b_execute)),
        "executemany": mark_coroutine_function(update_wrapper(executemany, b_executemany)),
        "stream": update_wrapper(stream, b_stream),
        "copy": update_wrapper(copy, b_copy),
    }


async def _aexecute(
    state: Any,
    cursor: Any,
    b_execute: Callable[..., Any],
    query: Any,
    params: Any,
    kwargs: dict[str, Any],
) -> Any:
    rec = recorder
    if rec.lean:  # timed here, its event built later
        text = query if type(query) is str else _text(query, cursor)
        started = _perf_counter()
        try:
            result = await b_execute(cursor, query, params, **kwargs)
        except BaseException as exc:  # CancelledError included: recorded, then re-raised as is
            rec.failed(text, SYSTEM, SOURCE, params, state, True, started, exc)
            raise
        rec.done(text, SYSTEM, SOURCE, params, state, True, started, _rows(cursor))
        return result
    ctx, sent = _begin(state, cursor, query, params)
    try:
        result = await b_execute(cursor, sent, params, **kwargs)
    except BaseException as exc:
        recorder.fail(ctx, exc)
        raise
    recorder.finish(ctx, _rows(cursor))
    return result


async def _aexecutemany(
    state: Any,
    cursor: Any,
    b_executemany: Callable[..., Any],
    query: Any,
    params_seq: Any,
    kwargs: dict[str, Any],
) -> Any:
    if recorder.lean:
        text = query if type(query) is str else _text(query, cursor)
        started = _perf_counter()
        try:
            result = await b_executemany(cursor, query, params_seq, **kwargs)
        except BaseException as exc:
            recorder.failed(text, SYSTEM, SOURCE, params_seq, state, False, started, exc)
            raise
        rows = _many_rows(cursor, bool(kwargs.get("returning")))
        recorder.done(text, SYSTEM, SOURCE, params_seq, state, False, started, rows)
        return result
    ctx, sent = _begin(state, cursor, query, params_seq, explain=False)
    try:
        result = await b_executemany(cursor, sent, params_seq, **kwargs)
    except BaseException as exc:
        recorder.fail(ctx, exc)
        raise
    recorder.finish(ctx, _many_rows(cursor, bool(kwargs.get("returning"))))
    return result


async def _recorded_astream(
    state: Any,
    cursor: Any,
    b_stream: Callable[..., Any],
    query: Any,
    params: Any,
    kwargs: dict[str, Any],
) -> AsyncIterator[Any]:
    ctx, sent = _begin(state, cursor, query, params)
    acc = RowsAccumulator(ctx)
    rows = b_stream(cursor, sent, params, **kwargs)
    try:
        while True:
            started = _perf_counter()
            try:
                row = await rows.__anext__()
            except StopAsyncIteration:
                acc.add(started, 0)
                acc.finish()
                return
            except BaseException as exc:
                acc.fail(started, exc)
                raise
            acc.add(started, 1)
            yield row
    finally:
        if acc.open:
            started = _perf_counter()
            try:
                await rows.aclose()
            except BaseException as exc:
                acc.fail(started, exc)
                raise
            acc.add(started, 0)
            acc.finish()


# -- server-side (named) cursors -----------------------------------------------------------------
def _server_open(state: Any, cursor: Any, query: Any, params: Any) -> tuple[RowsAccumulator, Any]:
    _server_close(cursor)  # re-executing a named cursor ends its previous statement
    ctx, sent = _begin(state, cursor, query, params)
    acc = RowsAccumulator(ctx)
    cursor._dbsight_acc = acc
    return acc, sent


def _server_acc(cursor: Any) -> RowsAccumulator | None:
    acc: RowsAccumulator | None = cursor._dbsight_acc
    return acc if acc is not None and acc.open else None


def _server_close(cursor: Any) -> None:
    acc = cursor._dbsight_acc
    if acc is not None:
        cursor._dbsight_acc = None
        if acc.open:
            acc.finish()


def _server_init(base: Any) -> Callable[..., None]:
    b_init = base.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        self._dbsight_acc = None
        b_init(self, *args, **kwargs)

    return update_wrapper(__init__, b_init)


def _server_del(base: type) -> Callable[[Any], None]:
    b_del = getattr(base, "__del__", None)

    def __del__(self: Any) -> None:  # a cursor dropped while open still records its event
        try:
            _server_close(self)
        except Exception:
            pass
        if b_del is not None:
            b_del(self)

    return __del__


def _sync_server_methods(base: type) -> dict[str, Any]:
    b = {
        name: getattr(base, name)
        for name in ("execute", "fetchone", "fetchmany", "fetchall", "__next__", "scroll", "close")
    }

    def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if not recorder.active or _recording.get() or (state := _state_of(id(self._conn))) is None:
            return b["execute"](self, query, params, **kwargs)
        acc, sent = _server_open(state, self, query, params)
        started = _perf_counter()
        try:
            result = b["execute"](self, sent, params, **kwargs)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, 0)
        return result

    def fetchone(self: Any) -> Any:
        acc = _server_acc(self)
        if acc is None:
            return b["fetchone"](self)
        started = _perf_counter()
        try:
            row = b["fetchone"](self)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, 0 if row is None else 1)
        if row is None:
            acc.finish()
        return row

    def fetchmany(self: Any, size: int = 0) -> Any:
        acc = _server_acc(self)
        if acc is None:
            return b["fetchmany"](self, size)
        started = _perf_counter()
        try:
            rows = b["fetchmany"](self, size)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, len(rows))
        if len(rows) < (size or self.arraysize):
            acc.finish()
        return rows

    def fetchall(self: Any) -> Any:
        acc = _server_acc(self)
        if acc is None:
            return b["fetchall"](self)
        started = _perf_counter()
        try:
            rows = b["fetchall"](self)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, len(rows))
        acc.finish()
        return rows

    def __next__(self: Any) -> Any:
        acc = _server_acc(self)
        if acc is None:
            return b["__next__"](self)
        started = _perf_counter()
        try:
            row = b["__next__"](self)
        except StopIteration:
            acc.add(started, 0)
            acc.finish()
            raise
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, 1)
        return row

    def scroll(self: Any, value: int, mode: str = "relative") -> Any:
        acc = _server_acc(self)
        if acc is None:
            return b["scroll"](self, value, mode)
        started = _perf_counter()
        try:
            result = b["scroll"](self, value, mode)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, 0)
        return result

    def close(self: Any) -> Any:
        _server_close(self)
        return b["close"](self)

    methods: dict[str, Callable[..., Any]] = {
        "execute": execute,
        "fetchone": fetchone,
        "fetchmany": fetchmany,
        "fetchall": fetchall,
        "__next__": __next__,
        "scroll": scroll,
        "close": close,
    }
    return {name: update_wrapper(fn, b[name]) for name, fn in methods.items()}


def _async_server_methods(base: type) -> dict[str, Any]:
    b = {
        name: getattr(base, name)
        for name in ("execute", "fetchone", "fetchmany", "fetchall", "__anext__", "scroll", "close")
    }

    async def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if not recorder.active or _recording.get() or (state := _state_of(id(self._conn))) is None:
            return await b["execute"](self, query, params, **kwargs)
        acc, sent = _server_open(state, self, query, params)
        started = _perf_counter()
        try:
            result = await b["execute"](self, sent, params, **kwargs)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, 0)
        return result

    async def fetchone(self: Any) -> Any:
        acc = _server_acc(self)
        if acc is None:
            return await b["fetchone"](self)
        started = _perf_counter()
        try:
            row = await b["fetchone"](self)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, 0 if row is None else 1)
        if row is None:
            acc.finish()
        return row

    async def fetchmany(self: Any, size: int = 0) -> Any:
        acc = _server_acc(self)
        if acc is None:
            return await b["fetchmany"](self, size)
        started = _perf_counter()
        try:
            rows = await b["fetchmany"](self, size)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, len(rows))
        if len(rows) < (size or self.arraysize):
            acc.finish()
        return rows

    async def fetchall(self: Any) -> Any:
        acc = _server_acc(self)
        if acc is None:
            return await b["fetchall"](self)
        started = _perf_counter()
        try:
            rows = await b["fetchall"](self)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, len(rows))
        acc.finish()
        return rows

    async def __anext__(self: Any) -> Any:
        acc = _server_acc(self)
        if acc is None:
            return await b["__anext__"](self)
        started = _perf_counter()
        try:
            row = await b["__anext__"](self)
        except StopAsyncIteration:
            acc.add(started, 0)
            acc.finish()
            raise
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, 1)
        return row

    async def scroll(self: Any, value: int, mode: str = "relative") -> Any:
        acc = _server_acc(self)
        if acc is None:
            return await b["scroll"](self, value, mode)
        started = _perf_counter()
        try:
            result = await b["scroll"](self, value, mode)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, 0)
        return result

    async def close(self: Any) -> Any:
        _server_close(self)
        return await b["close"](self)

    methods: dict[str, Callable[..., Any]] = {
        "execute": execute,
        "fetchone": fetchone,
        "fetchmany": fetchmany,
        "fetchall": fetchall,
        "__anext__": __anext__,
        "scroll": scroll,
        "close": close,
    }
    return {name: update_wrapper(fn, b[name]) for name, fn in methods.items()}


# -- cursor classes ----------------------------------------------------------------------------
_classes: dict[type, type] = {}


def instrumented_cursor_class(base: type) -> type:
    """The cached instrumented subclass of a cursor factory."""
    if "_dbsight_base" in base.__dict__:
        return base
    cls = _classes.get(base)
    if cls is not None:
        return cls
    namespace: dict[str, Any] = {"__module__": __name__, "_dbsight_base": base}
    if issubclass(base, psycopg.AsyncServerCursor):
        namespace.update(_async_server_methods(base))
        namespace.update(
            __slots__=("_dbsight_acc",), __init__=_server_init(base), __del__=_server_del(base)
        )
    elif issubclass(base, psycopg.ServerCursor):
        namespace.update(_sync_server_methods(base))
        namespace.update(
            __slots__=("_dbsight_acc",), __init__=_server_init(base), __del__=_server_del(base)
        )
    elif issubclass(base, psycopg.AsyncCursor):
        namespace.update(_async_client_methods(base), __slots__=())
    elif issubclass(base, psycopg.Cursor):
        namespace.update(_sync_client_methods(base), __slots__=())
    else:
        return base  # an unknown factory: leave it alone
    name = f"Instrumented{base.__name__}"
    cls = type(name, (base,), {**namespace, "__qualname__": name})
    _classes[base] = cls
    return cls


# -- EXPLAIN ---------------------------------------------------------------------------------------
def _sync_explainer(conn: Any) -> ThreadExplainer:
    info = conn.info
    dsn, password = info.dsn, info.password

    def run(sql: str, params: object | None, timeout_s: float, analyze: bool) -> Any:
        kwargs: dict[str, Any] = {"connect_timeout": max(2, math.ceil(timeout_s))}
        if password:
            kwargs["password"] = password
        other = psycopg.connect(dsn, **kwargs)
        try:
            with other.cursor() as cur:
                for statement in timeout_statements(timeout_s):
                    cur.execute(statement)
                cur.execute(explain_prefix(analyze) + sql, params)  # type: ignore[arg-type]
                row = cur.fetchone()
                plan = row[0] if row is not None else None
                lookup = table_stats_lookup(plan)
                if lookup is not None:
                    cur.execute(lookup)  # type: ignore[arg-type]
                    stats = cur.fetchone()
                    plan = explained(plan, stats[0] if stats is not None else None)
            other.rollback()
        finally:
            other.close()
        return plan

    return ThreadExplainer(run)


def _async_explainer(conn: Any) -> TaskExplainer:
    info = conn.info
    dsn, password = info.dsn, info.password

    async def run(sql: str, params: object | None, timeout_s: float, analyze: bool) -> Any:
        kwargs: dict[str, Any] = {"connect_timeout": max(2, math.ceil(timeout_s))}
        if password:
            kwargs["password"] = password
        other = await psycopg.AsyncConnection.connect(dsn, **kwargs)
        try:
            async with other.cursor() as cur:
                for statement in timeout_statements(timeout_s):
                    await cur.execute(statement)
                await cur.execute(explain_prefix(analyze) + sql, params)  # type: ignore[arg-type]
                row = await cur.fetchone()
                plan = row[0] if row is not None else None
                lookup = table_stats_lookup(plan)
                if lookup is not None:
                    await cur.execute(lookup)  # type: ignore[arg-type]
                    stats = await cur.fetchone()
                    plan = explained(plan, stats[0] if stats is not None else None)
            await other.rollback()
        finally:
            await other.close()
        return plan

    return TaskExplainer(run)


# -- instrument / uninstrument -------------------------------------------------------------------
def is_async(conn: Any) -> bool:
    return isinstance(conn, psycopg.AsyncConnection)


def attach(conn: Any, owner: InstrumentationHandle, explain: bool) -> bool:
    """Instrument one connection for ``owner``; False when it already is."""
    if _states.get(conn) is not None:
        return False
    explainer = None
    if explain:
        explainer = _async_explainer(conn) if is_async(conn) else _sync_explainer(conn)
    info = conn.info
    _states.add(conn, ConnState(info.dbname, info.user, explainer, owner))
    conn.cursor_factory = instrumented_cursor_class(conn.cursor_factory)
    conn.server_cursor_factory = instrumented_cursor_class(conn.server_cursor_factory)
    return True


def detach(conn: Any, owner: InstrumentationHandle) -> None:
    state = _states.get(conn)
    if state is None or state.owner is not owner:
        return
    _states.remove(conn)
    for attr in ("cursor_factory", "server_cursor_factory"):
        factory = getattr(conn, attr)
        base = factory.__dict__.get("_dbsight_base")
        if base is not None:  # the application may have set a factory of its own since
            setattr(conn, attr, base)


def owner_of(conn: Any) -> InstrumentationHandle | None:
    state = _states.get(conn)
    return state.owner if state is not None else None


def instrument_connection(conn: Any, *, explain: bool = True) -> InstrumentationHandle:
    owner = owner_of(conn)
    if owner is not None and owner.active:
        return owner
    handle = InstrumentationHandle(conn, SOURCE, SYSTEM, lambda: detach(conn, handle))
    attach(conn, handle, explain)
    return handle
