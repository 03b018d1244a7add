"""asyncpg: `Connection` and `Pool`.

``asyncpg.Connection`` has ``__slots__``, so nothing can be set on an instance: the
instance's ``__class__`` is swapped to a cached subclass (``__slots__ = ()``, same layout)
that overrides the public query methods, and swapped back on uninstrument. asyncpg's own
``isinstance`` checks keep working (its metaclass checks the MRO), and ``PoolConnectionProxy``
calls methods through ``type(con)``, so pooled connections are covered too.

asyncpg internals relied on (checked against asyncpg 0.32):

* ``Pool._init`` (the ``init`` callback, run on every new connection in
  ``Pool._get_new_connection``) is wrapped to instrument connections created later, and
  ``Pool._holders[i]._con`` lists the connections that already exist;
* ``Pool._acquire(timeout)``, where ``acquire()`` (and ``fetch()``, ``execute()`` ...) wait
  for a connection: the pool's class is swapped the same way to count the waits that end in
  ``TimeoutError`` (``db_client_pool_timeouts_total``);
* ``Connection._addr`` / ``_params`` / ``_config`` and ``connect_utils._connect_addr`` open
  the EXPLAIN connection exactly as the instrumented one was opened (ssl, password callable,
  server settings ...);
* ``CursorFactory`` / ``PreparedStatement`` have ``__slots__`` too and get the same
  class swap; ``CursorFactory._connection`` / ``_query`` / ``_args`` and
  ``PreparedStatement._connection`` / ``_query`` are read;
* ``Connection._execute(query, args, limit, timeout, *, return_status=False,
  record_class=None)`` and ``Connection._check_open()``: a recorded ``fetch``/``fetchrow``/
  ``fetchval`` does what asyncpg's own method does (check the connection is open, then
  ``_execute`` with its row limit), asking for the command tag as ``execute`` does
  (``return_status=True``), so that its rows are the tag's count. One coroutine frame in
  place of asyncpg's, no second one: this runs for every query.

While the recorder's lean path is open (``recorder.lean``: dbsight's own sinks only, see
`dbsight.core.Recorder`), the query methods time a statement themselves and hand it over as
a tuple (``Recorder.done``, inlined for fetch/fetchrow/fetchval); its event is built with
the next batch. Otherwise, and for a statement that fails, they go through
``recorder.start`` and ``finish``/``fail``.

Recording: one event per call. Rows are the command tag's count ("UPDATE 3", "SELECT 5"),
else the rows returned (see `dbsight.core.statement_rows`): ``execute`` from the tag it
returns, ``fetch``/``fetchrow``/``fetchval`` (connection and prepared statement) from the tag
and the rows the server sent (a ``fetchval`` whose value is NULL still counts its row),
``fetchmany`` from the result length; ``executemany`` has none (None: asyncpg discards the
tags). A cursor yields one event per iteration
(rows = rows iterated, recorded at exhaustion, error or abandonment), never one per row or
per prefetch batch; ``await con.cursor(...)`` returns a thin `RecordedCursor` around asyncpg's
(``isinstance``-transparent) whose fetches add up into one event the same way. Its duration is
the time spent waiting on the server, not the time the application spent between rows.

``Connection.reset()`` (the pool's reset query on every release) and the helper queries a
COPY runs are not recorded; ``Transaction`` statements (BEGIN/COMMIT/ROLLBACK/SAVEPOINT) go
through ``execute`` and are recorded with operation ``tx``. ``prepare()`` itself is not
recorded (each execution of the statement is).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import update_wrapper
from typing import Any

import asyncpg
from asyncpg import connect_utils
from asyncpg.cursor import CursorFactory
from asyncpg.prepared_stmt import PreparedStatement

from ..core import PoolUsage, TimeoutCounter, pools, statement_rows
from ..core._context import _function, _request
from ..core._recorder import BATCH
from ._common import (
    TAG_COUNTS,
    ConnectionStates,
    ConnState,
    RowsAccumulator,
    _recording,
    commented,
    mark_coroutine_function,
    recorder,
    status_rows,
    tag_rows,
)
from ._explain import (
    TaskExplainer,
    explain_prefix,
    explained,
    table_stats_lookup,
    timeout_statements,
)
from ._handle import InstrumentationHandle

SYSTEM = "postgresql"
SOURCE = "asyncpg"

_perf_counter = time.perf_counter
_request_get = _request.get
_function_get = _function.get
_tag_count = TAG_COUNTS.get


_states = ConnectionStates()


_state_of = _states.by_id


# -- rows from results ---------------------------------------------------------------------
def _rows_len(result: Any) -> int | None:
    return len(result) if result is not None else None


def _rows_row(result: Any) -> int:
    return 0 if result is None else 1


def _rows_value(result: Any) -> int | None:
    return None if result is None else 1  # None: no row, or a row whose value is NULL


def _rows_none(result: Any) -> None:
    return None


def _prepared_rows(returned: Callable[[Any], int | None]) -> Callable[[Any, Any], int | None]:
    """Rows of a `PreparedStatement` call: its command tag (``get_statusmsg()``) and result."""

    def rows(stmt: Any, result: Any) -> int | None:
        try:
            status = stmt.get_statusmsg()
        except Exception:
            return returned(result)
        if status is None:  # the portal was suspended at fetchrow's/fetchval's limit: 1 row
            return 1
        count = returned(result)
        tag_rows = status_rows(status)
        return statement_rows(tag_rows, count) if count is not None else tag_rows

    return rows


# -- method wrappers ---------------------------------------------------------------------------
def _start_query(con: Any, query: str, params: object, explain: bool = True) -> Any:
    state = _state_of(id(con))
    if state is None:  # a connection whose class was swapped by hand: still record it
        return recorder.start(query, SYSTEM, SOURCE, params)
    return recorder.start(
        query,
        SYSTEM,
        SOURCE,
        params,
        database=state.database,
        user=state.user,
        explainer=state.explainer if explain else None,
    )


def _connection_query(
    method: Callable[..., Any], rows: Callable[[Any], int | None], *, many: bool = False
) -> Any:
    """Wrap ``Connection.<method>(query, *args, **kwargs)``; ``rows(result)`` counts its rows.

    The wrapper is a plain function: with recording off it hands back asyncpg's own
    coroutine (no second coroutine frame); otherwise the ``recorded`` coroutine below.
    """

    async def recorded(con: Any, query: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # a batch (args is (sequence of argument tuples,)) is not explained
        params = (args[0] if args else args) if many else args
        if recorder.lean and type(query) is str:  # timed here, its event built later
            ctx = None
            started = _perf_counter()
        else:
            ctx = _start_query(con, query, params, not many)
            if recorder.sqlcommenter != "off":
                query = commented(query, ctx)
        try:
            result = await method(con, query, *args, **kwargs)
        except BaseException as exc:  # CancelledError included: recorded, then re-raised as is
            if ctx is None:
                recorder.failed(
                    query, SYSTEM, SOURCE, params, _state_of(id(con)), not many, started, exc
                )
            else:
                recorder.fail(ctx, exc)
            raise
        if ctx is None:
            recorder.done(
                query, SYSTEM, SOURCE, params, _state_of(id(con)), not many, started, rows(result)
            )
        else:
            recorder.finish(ctx, rows(result))
        return result

    def wrapper(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if not recorder.active or _recording.get():
            return method(self, query, *args, **kwargs)
        return recorded(self, query, args, kwargs)

    return mark_coroutine_function(update_wrapper(wrapper, method))


# What fetch/fetchrow/fetchval return of ``_execute``'s rows: all of them, the first row or
# None, the first row's column (``column``) or None.
_FETCH, _FETCHROW, _FETCHVAL = 0, 1, 2
_FETCH_OPTIONS = (
    frozenset({"timeout", "record_class"}),
    frozenset({"timeout", "record_class"}),
    frozenset({"timeout", "column"}),
)


def _connection_fetch(method: Callable[..., Any], b_execute: Callable[..., Any], shape: int) -> Any:
    """Wrap ``Connection.fetch``/``fetchrow``/``fetchval``: recorded, the statement runs as
    asyncpg's method runs it (``_check_open()``, then ``_execute`` with the method's row
    limit), with the command tag asked for: its rows are the tag's count ('UPDATE 3'), else
    the rows returned (a ``fetchval`` whose value is NULL still counts its row)."""
    limit = 0 if shape == _FETCH else 1
    options = _FETCH_OPTIONS[shape]

    async def recorded(con: Any, query: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if recorder.lean and type(query) is str:  # timed here, its event built later
            ctx = None
            started = _perf_counter()
        else:
            state = _state_of(id(con))  # `_start_query`, inlined: this runs for every query
            if state is None:
                ctx = recorder.start(query, SYSTEM, SOURCE, args)
            else:
                ctx = recorder.start(
                    query,
                    SYSTEM,
                    SOURCE,
                    args,
                    database=state.database,
                    user=state.user,
                    explainer=state.explainer,
                )
            if recorder.sqlcommenter != "off":
                query = commented(query, ctx)
        try:
            if kwargs and not options.issuperset(kwargs):  # asyncpg says what is wrong
                result = await method(con, query, *args, **kwargs)
                if ctx is None:
                    recorder.done(
                        query, SYSTEM, SOURCE, args, _state_of(id(con)), True, started, None
                    )
                else:
                    recorder.finish(ctx, None)
                return result
            con._check_open()
            if shape == _FETCHVAL:
                data, status, _ = await b_execute(
                    con, query, args, 1, kwargs.get("timeout"), return_status=True
                )
            else:
                data, status, _ = await b_execute(
                    con,
                    query,
                    args,
                    limit,
                    kwargs.get("timeout") if kwargs else None,
                    return_status=True,
                    record_class=kwargs.get("record_class") if kwargs else None,
                )
        except BaseException as exc:  # CancelledError included: recorded, then re-raised as is
            if ctx is None:
                recorder.failed(query, SYSTEM, SOURCE, args, _state_of(id(con)), True, started, exc)
            else:
                recorder.fail(ctx, exc)
            raise
        if ctx is None:
            # `Recorder.done`, inlined for the usual case (no request scope, not slow, no
            # gate open): the statement held as a `LeanStatement` tuple; this runs for
            # every query.
            rows = _tag_count(status)  # `tag_rows`, for a tag seen before
            if rows is None:
                rows = tag_rows(status, len(data) if data else 0)
            duration = _perf_counter() - started
            rec = recorder
            gate = rec.lean_gate
            if (
                duration < rec.lean_cutoff
                and (gate is None or gate() is False)
                and _request_get() is None
            ):
                pending = rec.pending
                pending.append(
                    (query, SYSTEM, SOURCE, None, _state_of(id(con)), args, True, started,
                     None, _function_get(), None, duration, rows)  # (None: see LeanStatement)
                )  # fmt: skip
                if len(pending) >= BATCH:
                    rec.flush()
            else:
                rec.done(query, SYSTEM, SOURCE, args, _state_of(id(con)), True, started, rows)
        else:
            recorder.finish(ctx, tag_rows(status, len(data) if data else 0))
        if shape == _FETCH:
            return data
        if not data:
            return None
        return data[0] if shape == _FETCHROW else data[0][kwargs.get("column", 0)]

    def wrapper(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if not recorder.active or _recording.get():
            return method(self, query, *args, **kwargs)
        return recorded(self, query, args, kwargs)

    return mark_coroutine_function(update_wrapper(wrapper, method))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy_table_sql(table_name: str, kwargs: dict[str, Any], direction: str) -> str:
    table = _quote_ident(table_name)
    schema = kwargs.get("schema_name")
    if schema:
        table = f"{_quote_ident(schema)}.{table}"
    columns = kwargs.get("columns")
    if columns:
        table += "(" + ", ".join(_quote_ident(c) for c in columns) + ")"
    return f"COPY {table} {direction}"


def _copy_method(
    method: Callable[..., Any], describe: Callable[[tuple[Any, ...], dict[str, Any]], str]
) -> Any:
    """Wrap a ``copy_*`` method; the statement is described from its arguments (asyncpg
    builds the real COPY text internally), and nothing is appended to it."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not recorder.active or _recording.get():
            return method(self, *args, **kwargs)
        return _run_copy(self, method, describe, args, kwargs)

    return mark_coroutine_function(update_wrapper(wrapper, method))


async def _run_copy(
    con: Any,
    method: Callable[..., Any],
    describe: Callable[[tuple[Any, ...], dict[str, Any]], str],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    try:
        sql = describe(args, kwargs)
    except Exception:  # bad arguments: let asyncpg raise its own error
        return await method(con, *args, **kwargs)
    ctx = _start_query(con, sql, None, False)
    # asyncpg may run helper queries of its own (copy_from_query quotes its arguments with
    # a SELECT quote_literal(...)): they are part of the COPY, not queries of their own.
    token = _recording.set(True)
    try:
        result = await method(con, *args, **kwargs)
    except BaseException as exc:
        recorder.fail(ctx, exc)
        raise
    finally:
        _recording.reset(token)
    recorder.finish(ctx, status_rows(result))
    return result


def _describe_copy_from_table(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return _copy_table_sql(args[0] if args else kwargs["table_name"], kwargs, "TO STDOUT")


def _describe_copy_to_table(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return _copy_table_sql(args[0] if args else kwargs["table_name"], kwargs, "FROM STDIN")


def _describe_copy_from_query(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    query = args[0] if args else kwargs["query"]
    return f"COPY ({query}) TO STDOUT"


# -- cursors -----------------------------------------------------------------------------------
class _Awaitable:
    """Lets a coroutine await an ``__await__`` iterator (a CursorFactory's)."""

    __slots__ = ("_iterator",)

    def __init__(self, iterator: Any) -> None:
        self._iterator = iterator

    def __await__(self) -> Any:
        return self._iterator


class _CursorIteration:
    """The iterator of ``async for row in con.cursor(...)``: one event for the iteration."""

    __slots__ = ("_iterator", "_con", "_query", "_args", "_acc")

    def __init__(self, iterator: Any, con: Any, query: str, args: Any) -> None:
        self._iterator = iterator
        self._con = con
        self._query = query
        self._args = args
        self._acc: RowsAccumulator | None = None

    def __aiter__(self) -> _CursorIteration:
        return self

    async def __anext__(self) -> Any:
        acc = self._acc
        if acc is None:
            acc = self._acc = RowsAccumulator(_start_query(self._con, self._query, self._args))
        elif not acc.open:
            return await self._iterator.__anext__()
        started = _perf_counter()
        try:
            row = await self._iterator.__anext__()
        except StopAsyncIteration:
            acc.add(started, 0)
            acc.finish()
            raise
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, 1)
        return row

    def __del__(self) -> None:  # abandoned mid-way (break, exception in the loop body)
        acc = self._acc
        if acc is not None and acc.open:
            try:
                acc.finish()
            except Exception:
                pass


class RecordedCursor:
    """What ``await con.cursor(...)`` returns when recording: asyncpg's `Cursor`, whose
    fetches add up into one event (recorded when exhausted or abandoned)."""

    __slots__ = ("_cursor", "_acc")

    def __init__(self, cursor: Any, acc: RowsAccumulator) -> None:
        self._cursor = cursor
        self._acc = acc

    @property
    def __wrapped__(self) -> Any:
        return self._cursor

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(cursor, asyncpg.cursor.Cursor) still holds
        return type(self._cursor)

    async def fetch(self, n: int, *, timeout: float | None = None) -> Any:
        acc = self._acc
        if not acc.open:
            return await self._cursor.fetch(n, timeout=timeout)
        started = _perf_counter()
        try:
            records = await self._cursor.fetch(n, timeout=timeout)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, len(records))
        if len(records) < n:
            acc.finish()
        return records

    async def fetchrow(self, *, timeout: float | None = None) -> Any:
        acc = self._acc
        if not acc.open:
            return await self._cursor.fetchrow(timeout=timeout)
        started = _perf_counter()
        try:
            record = await self._cursor.fetchrow(timeout=timeout)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, 0 if record is None else 1)
        if record is None:
            acc.finish()
        return record

    async def forward(self, n: int, *, timeout: float | None = None) -> int:
        acc = self._acc
        if not acc.open:
            return await self._cursor.forward(n, timeout=timeout)  # type: ignore[no-any-return]
        started = _perf_counter()
        try:
            moved: int = await self._cursor.forward(n, timeout=timeout)
        except BaseException as exc:
            acc.fail(started, exc)
            raise
        acc.add(started, 0)
        if moved < n:
            acc.finish()
        return moved

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __repr__(self) -> str:
        return repr(self._cursor)

    def __del__(self) -> None:
        acc = self._acc
        if acc.open:
            try:
                acc.finish()
            except Exception:
                pass


async def _open_cursor(factory: Any) -> Any:
    acc = RowsAccumulator(_start_query(factory._connection, factory._query, factory._args))
    started = _perf_counter()
    try:
        cursor = await _Awaitable(CursorFactory.__await__(factory))
    except BaseException as exc:
        acc.fail(started, exc)
        raise
    acc.add(started, 0)
    return RecordedCursor(cursor, acc)


class InstrumentedCursorFactory(CursorFactory):
    __slots__ = ()

    def __aiter__(self) -> Any:
        iterator = CursorFactory.__aiter__(self)
        if not recorder.active or _recording.get() or _state_of(id(self._connection)) is None:
            return iterator
        return _CursorIteration(iterator, self._connection, self._query, self._args)

    def __await__(self) -> Any:
        if not recorder.active or _recording.get() or _state_of(id(self._connection)) is None:
            return CursorFactory.__await__(self)
        return _open_cursor(self).__await__()


def _instrument_factory(factory: Any) -> Any:
    if type(factory) is CursorFactory:
        factory.__class__ = InstrumentedCursorFactory
    return factory


# -- prepared statements ---------------------------------------------------------------------
def _statement_query(
    method: Callable[..., Any], rows: Callable[[Any, Any], int | None], *, many: bool = False
) -> Any:
    """Wrap ``PreparedStatement.<method>(*args, **kwargs)``."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        # A statement prepared while its connection was instrumented records nothing once
        # the connection no longer is.
        if not recorder.active or _recording.get() or _state_of(id(self._connection)) is None:
            return method(self, *args, **kwargs)
        return _run_statement_query(self, method, rows, many, args, kwargs)

    return mark_coroutine_function(update_wrapper(wrapper, method))


async def _run_statement_query(
    stmt: Any,
    method: Callable[..., Any],
    rows: Callable[[Any, Any], int | None],
    many: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    ctx = _start_query(stmt._connection, stmt._query, args[0] if many and args else args, not many)
    try:
        result = await method(stmt, *args, **kwargs)
    except BaseException as exc:
        recorder.fail(ctx, exc)
        raise
    recorder.finish(ctx, rows(stmt, result))
    return result


def _statement_cursor(self: Any, *args: Any, **kwargs: Any) -> Any:
    return _instrument_factory(PreparedStatement.cursor(self, *args, **kwargs))


class InstrumentedPreparedStatement(PreparedStatement):
    __slots__ = ()

    fetch = _statement_query(PreparedStatement.fetch, _prepared_rows(_rows_len))
    fetchval = _statement_query(PreparedStatement.fetchval, _prepared_rows(_rows_value))
    fetchrow = _statement_query(PreparedStatement.fetchrow, _prepared_rows(_rows_row))
    fetchmany = _statement_query(
        PreparedStatement.fetchmany, lambda stmt, result: _rows_len(result), many=True
    )
    executemany = _statement_query(
        PreparedStatement.executemany, lambda stmt, result: None, many=True
    )
    cursor = update_wrapper(_statement_cursor, PreparedStatement.cursor)
    # explain() runs through the connection's fetchval, which records it.


# -- the connection class ----------------------------------------------------------------------
_classes: dict[type, type] = {}


def instrumented_class(base: Any) -> type:
    """The cached instrumented subclass of a connection class."""
    cls = _classes.get(base)
    if cls is not None:
        return cls

    b_cursor = base.cursor
    b_prepare = base.prepare
    b_reset = base.reset

    def cursor(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        return _instrument_factory(b_cursor(self, query, *args, **kwargs))

    async def prepare(self: Any, query: str, **kwargs: Any) -> Any:
        stmt = await b_prepare(self, query, **kwargs)
        if type(stmt) is PreparedStatement:
            stmt.__class__ = InstrumentedPreparedStatement
        return stmt

    async def reset(self: Any, **kwargs: Any) -> Any:
        # The pool resets every connection it gets back ("SELECT pg_advisory_unlock_all();
        # CLOSE ALL; UNLISTEN *; RESET ALL;"): housekeeping, not an application query.
        token = _recording.set(True)
        try:
            return await b_reset(self, **kwargs)
        finally:
            _recording.reset(token)

    namespace: dict[str, Any] = {
        "__slots__": (),
        "__module__": __name__,
        "__qualname__": f"Instrumented{base.__name__}",
        "execute": _connection_query(base.execute, status_rows),
        "executemany": _connection_query(base.executemany, _rows_none, many=True),
        "fetch": _connection_fetch(base.fetch, base._execute, _FETCH),
        "fetchval": _connection_fetch(base.fetchval, base._execute, _FETCHVAL),
        "fetchrow": _connection_fetch(base.fetchrow, base._execute, _FETCHROW),
        "fetchmany": _connection_query(base.fetchmany, _rows_len, many=True),
        "copy_from_table": _copy_method(base.copy_from_table, _describe_copy_from_table),
        "copy_from_query": _copy_method(base.copy_from_query, _describe_copy_from_query),
        "copy_to_table": _copy_method(base.copy_to_table, _describe_copy_to_table),
        "copy_records_to_table": _copy_method(base.copy_records_to_table, _describe_copy_to_table),
        "cursor": update_wrapper(cursor, b_cursor),
        "prepare": update_wrapper(prepare, b_prepare),
        "reset": update_wrapper(reset, b_reset),
        "_dbsight_base": base,
    }
    cls = type(f"Instrumented{base.__name__}", (base,), namespace)
    _classes[base] = cls
    return cls


def _is_instrumented(con: Any) -> bool:
    return "_dbsight_base" in type(con).__dict__


def _attach(con: Any, owner: InstrumentationHandle, explain: bool) -> None:
    if _is_instrumented(con):
        return
    params = con._params
    _states.add(
        con,
        ConnState(
            getattr(params, "database", None),
            getattr(params, "user", None),
            _explainer(con) if explain else None,
            owner,
        ),
    )
    con.__class__ = instrumented_class(type(con))


def _detach(con: Any, owner: InstrumentationHandle) -> None:
    state = _states.get(con)
    if state is not None and state.owner is not owner:
        return
    _states.remove(con)
    base = type(con).__dict__.get("_dbsight_base")
    if base is not None:
        con.__class__ = base


# -- EXPLAIN -----------------------------------------------------------------------------------
def _explainer(con: Any) -> TaskExplainer:
    """EXPLAIN on a new connection opened with the instrumented connection's parameters."""
    addr, params, config = con._addr, con._params, con._config

    async def run(sql: str, args: object | None, timeout_s: float, analyze: bool) -> Any:
        other = await connect_utils._connect_addr(
            addr=addr,
            loop=asyncio.get_running_loop(),
            params=params,
            config=config,
            connection_class=asyncpg.Connection,
            record_class=asyncpg.Record,
        )
        try:
            transaction = other.transaction()
            await transaction.start()
            for statement in timeout_statements(timeout_s):
                await other.execute(statement)
            explain = explain_prefix(analyze) + sql
            plan = await other.fetchval(explain, *(args or ()))  # type: ignore[misc]
            lookup = table_stats_lookup(plan)
            if lookup is not None:
                plan = explained(plan, await other.fetchval(lookup))
            await transaction.rollback()
        except BaseException:
            other.terminate()
            raise
        await other.close()
        return plan

    return TaskExplainer(run)


# -- instrument / uninstrument -------------------------------------------------------------------
def instrument_connection(con: Any, *, explain: bool = True) -> InstrumentationHandle:
    if _is_instrumented(con):
        state = _states.get(con)
        if state is not None and state.owner.active:
            return state.owner  # type: ignore[no-any-return]
    if type(con).__name__ == "PoolConnectionProxy":
        raise TypeError(
            "dbsight.instrument(): this is a connection acquired from an asyncpg Pool; "
            "instrument the pool instead (dbsight.instrument(pool))"
        )
    handle = InstrumentationHandle(con, SOURCE, SYSTEM, lambda: _detach(con, handle))
    _attach(con, handle, explain)
    return handle


def instrument_pool(
    pool: Any, *, explain: bool = True, pool_name: str | None = None
) -> InstrumentationHandle:
    original_init = pool._init
    timeouts = TimeoutCounter()

    async def init(con: Any) -> None:
        if original_init is not None:
            await original_init(con)
        if handle.active:
            _attach(con, handle, explain)

    def undo() -> None:
        if pool._init is init:
            pool._init = original_init
        if _pool_timeouts.get(id(pool)) is timeouts:
            del _pool_timeouts[id(pool)]
            if type(pool) in _counting_pool_classes.values():
                pool.__class__ = type(pool).__mro__[1]
        for holder in pool._holders:
            con = holder._con
            if con is not None:
                _detach(con, handle)

    def read() -> PoolUsage:
        idle = pool.get_idle_size()
        return PoolUsage(
            idle=idle,
            used=pool.get_size() - idle,
            max_size=pool.get_max_size(),
            timeouts=timeouts.count,
        )

    name = pools.register(pool_name or "asyncpg", read)
    handle = InstrumentationHandle(pool, SOURCE, SYSTEM, undo, pool_name=name)
    pool._init = init
    if type(pool) not in _counting_pool_classes.values():
        pool.__class__ = _counting_pool_class(type(pool))
    _pool_timeouts[id(pool)] = timeouts  # the latest handle's counter (ids may be reused)
    for holder in pool._holders:
        con = holder._con
        if con is not None:
            _attach(con, handle, explain)
    return handle


# id(pool) -> the timeouts of its acquires, while the pool's class is the counting one
_pool_timeouts: dict[int, TimeoutCounter] = {}
_counting_pool_classes: dict[type, type] = {}


def _counting_pool_class(base: type) -> type:
    """``base`` with ``_acquire`` counting the waits for a connection that time out (the
    TimeoutError is raised unchanged); cached per class, same layout (``__slots__ = ()``)."""
    cls = _counting_pool_classes.get(base)
    if cls is None:

        async def _acquire(self: Any, timeout: float | None) -> Any:
            try:
                return await base._acquire(self, timeout)  # type: ignore[attr-defined]
            except TimeoutError:
                counter = _pool_timeouts.get(id(self))
                if counter is not None:
                    counter.count += 1
                raise

        cls = type(base.__name__, (base,), {"__slots__": (), "_acquire": _acquire})
        cls.__module__ = base.__module__
        cls.__qualname__ = base.__qualname__
        _counting_pool_classes[base] = cls
    return cls
