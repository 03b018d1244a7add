"""SQLAlchemy: `Engine` and `AsyncEngine`, any dialect, through the engine's dialect.

SQLAlchemy hands every statement to the DBAPI through three dialect methods,
``do_execute``, ``do_execute_no_params`` and ``do_executemany``; the engine's dialect
instance gets a wrapper for each (instance attributes shadowing the class's methods) that
records the statement around the cursor call. Engine events (``before_cursor_execute`` ...)
would do the same, but any listener switches SQLAlchemy onto its slower event path for
every statement (about 60k more instructions per query, measured): that cost would stay
even with dbsight disabled. A wrapper costs one call and a flag check when disabled.

An `AsyncEngine` is hooked through its ``sync_engine`` only, so each statement is one event
(and one span), not one per layer; an engine made by ``execution_options()`` shares its
parent's dialect and so its instrumentation. ``executemany`` is one event (rows =
``cursor.rowcount``); "insertmanyvalues" batches are one event per batch, as each is one
round trip. Rows come from the DBAPI cursor right after it ran the statement (`_rowcount`),
for every statement, SELECT included; results are never consumed, so where the driver has
not counted them yet (sqlite3, server-side cursors) they are None. A ``do_execute`` dialect
event of the application's that executes the statement itself takes it past these wrappers.

While the recorder's lean path is open (``recorder.lean``: dbsight's own sinks only, see
`dbsight.core.Recorder`), the wrappers time a statement themselves and hand it over as a
tuple (``Recorder.done``; ``Recorder.failed`` when it raises); its event, the same as the
regular path's, is built with the next batch. Otherwise they go through ``recorder.start``
and ``finish``/``fail``.

The dialect's own probes when it first connects are not recorded. Transaction control and
pool pings do not go through these methods (SQLAlchemy runs BEGIN,
COMMIT, ROLLBACK and ``pool_pre_ping`` through the DBAPI connection), so they are not
recorded; a statement the application itself sends (``text("COMMIT")``) is recorded with
operation ``tx``. While a statement is recorded here, the core's "recording" flag is set, so
a driver instrumented underneath (asyncpg, psycopg) does not record it a second time.

A queue pool's waits that time out (``sqlalchemy.exc.TimeoutError``, "QueuePool limit ...
reached") are counted for ``db_client_pool_timeouts_total``: the pool's ``_do_get`` (where
``connect()`` waits) is wrapped on the instance, and so is its ``recreate()``, so that the
pool ``engine.dispose()`` puts in its place is wrapped too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..core import PoolUsage, TimeoutCounter, pools
from ..core._sqlcomment import add_comment
from ._common import ConnState, _recording, recorder
from ._explain import (
    TaskExplainer,
    ThreadExplainer,
    explain_prefix,
    explained,
    table_stats_lookup,
    timeout_statements,
)
from ._handle import InstrumentationHandle

SOURCE = "sqlalchemy"
_SYSTEMS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}
_METHODS = ("do_execute", "do_execute_no_params", "do_executemany", "initialize")

_perf_counter = time.perf_counter

# id(dialect) -> the live handle that wrapped it (option engines share their parent's)
_by_dialect: dict[int, InstrumentationHandle] = {}


def system_of(engine: Any) -> str:
    name = engine.dialect.name
    return _SYSTEMS.get(name, name)


# pymysql's unbuffered cursor (stream_results) reports 2**64 - 1, MySQL's "-1", as rowcount
_ROWCOUNT_LIMIT = 1 << 63


def _rowcount(cursor: Any) -> int | None:
    """The statement's rows, from the DBAPI cursor it has just run on, before SQLAlchemy
    reads any of its result: ``rowcount`` when the driver gives one (psycopg, pymysql and
    SQLAlchemy's asyncpg adapter do for a SELECT too), else the rows an asyncio adapter of
    SQLAlchemy's has already fetched (aiosqlite), else None (sqlite3 counts no SELECT; a
    server-side cursor has fetched nothing yet)."""
    try:
        rowcount = cursor.rowcount
    except Exception:
        return None
    if rowcount is not None and 0 <= rowcount < _ROWCOUNT_LIMIT:
        return rowcount
    return _buffered_rows(cursor)


def _buffered_rows(cursor: Any) -> int | None:
    # SQLAlchemy's AsyncAdapt_dbapi_cursor reads a result whole into ``_rows`` (a deque)
    # while it executes, unless it is a server-side cursor.
    if not type(cursor).__module__.startswith("sqlalchemy.") or getattr(
        cursor, "server_side", True
    ):
        return None
    try:
        if cursor.description is None:
            return None
        return len(cursor._rows)
    except Exception:
        return None


def _wrappers(
    dialect: Any,
    system: str,
    database: str | None,
    user: str | None,
    explainer: Any,
    escape_percent: bool,
) -> dict[str, Callable[..., Any]]:
    """Recording versions of the dialect's three execute methods, and an ``initialize``
    whose probes are not recorded."""
    do_execute = dialect.do_execute
    do_execute_no_params = dialect.do_execute_no_params
    do_executemany = dialect.do_executemany
    start = recorder.start
    finish = recorder.finish
    fail = recorder.fail
    get_recording = _recording.get
    # what the recorder's lean path reads of a statement's connection (`Recorder.done`)
    state = ConnState(database, user, explainer, None)

    def run(
        call: Callable[..., Any],
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        many: bool,
    ) -> None:
        bare = parameters is None
        if recorder.lean and type(statement) is str:  # timed here, its event built later
            token = _recording.set(True)
            started = _perf_counter()
            try:
                if bare:
                    call(cursor, statement, context)
                else:
                    call(cursor, statement, parameters, context)
            except BaseException as exc:  # recorded, then re-raised as it is
                recorder.failed(
                    statement, system, SOURCE, parameters, state, not many, started, exc
                )
                raise
            finally:
                _recording.reset(token)
            recorder.done(
                statement, system, SOURCE, parameters, state, not many, started,
                _rowcount(cursor),
            )  # fmt: skip
            return
        ctx = start(
            statement,
            system,
            SOURCE,
            parameters,
            database=database,
            user=user,
            explainer=None if many else explainer,
        )
        mode = recorder.sqlcommenter  # configure() may change it: read per statement
        if mode != "off":
            # the bare text is not interpolated by the DBAPI: a '%' in it must not be doubled
            statement = add_comment(
                statement, ctx, mode, escape_percent=escape_percent and not bare
            )
        token = _recording.set(True)
        try:
            if bare:
                call(cursor, statement, context)
            else:
                call(cursor, statement, parameters, context)
        except BaseException as exc:  # recorded, then re-raised as it is
            fail(ctx, exc)
            raise
        finally:
            _recording.reset(token)
        finish(ctx, _rowcount(cursor))

    def execute(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        if not recorder.active or get_recording():
            do_execute(cursor, statement, parameters, context)
        else:
            run(do_execute, cursor, statement, parameters, context, False)

    def execute_no_params(cursor: Any, statement: str, context: Any = None) -> None:
        if not recorder.active or get_recording():
            do_execute_no_params(cursor, statement, context)
        else:
            run(do_execute_no_params, cursor, statement, None, context, False)

    def executemany(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        if not recorder.active or get_recording():
            do_executemany(cursor, statement, parameters, context)
        else:
            run(do_executemany, cursor, statement, parameters, context, True)

    initialize = dialect.initialize

    def initialize_quietly(connection: Any) -> None:
        # The dialect's probes on first connect (server version, current schema, ...) are
        # SQLAlchemy's, not the application's queries.
        token = _recording.set(True)
        try:
            initialize(connection)
        finally:
            _recording.reset(token)

    return {
        "do_execute": execute,
        "do_execute_no_params": execute_no_params,
        "do_executemany": executemany,
        "initialize": initialize_quietly,
    }


def _explain_on(
    conn: Any, sql: str, params: object | None, timeout_s: float, analyze: bool = False
) -> Any:
    """EXPLAIN through the DBAPI connection of ``conn`` (a sync `Connection`), rolled back.

    The DBAPI cursor is used directly, with the exact text and parameters the application's
    cursor received, so no engine event fires and the paramstyle needs no translation.
    """
    dbapi_connection = conn.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        for statement in timeout_statements(timeout_s):
            cursor.execute(statement)
        if params is None:
            cursor.execute(explain_prefix(analyze) + sql)
        else:
            cursor.execute(explain_prefix(analyze) + sql, params)
        row = cursor.fetchone()
        plan = row[0] if row is not None else None
        lookup = table_stats_lookup(plan)
        if lookup is not None:
            cursor.execute(lookup)
            stats = cursor.fetchone()
            plan = explained(plan, stats[0] if stats is not None else None)
    finally:
        try:
            cursor.close()
        finally:
            dbapi_connection.rollback()
    return plan


def _sync_explainer(engine: Any) -> ThreadExplainer:
    def run(sql: str, params: object | None, timeout_s: float, analyze: bool) -> Any:
        with engine.connect() as conn:
            return _explain_on(conn, sql, params, timeout_s, analyze)

    return ThreadExplainer(run)


def _async_explainer(async_engine: Any) -> TaskExplainer:
    async def run(sql: str, params: object | None, timeout_s: float, analyze: bool) -> Any:
        async with async_engine.connect() as conn:
            return await conn.run_sync(_explain_on, sql, params, timeout_s, analyze)

    return TaskExplainer(run)


def _pool_reader(engine: Any, timeouts: TimeoutCounter) -> Callable[[], PoolUsage] | None:
    pool = engine.pool
    if not all(hasattr(pool, name) for name in ("checkedin", "checkedout", "size")):
        return None  # NullPool, StaticPool, SingletonThreadPool: nothing to gauge

    def read() -> PoolUsage:
        current = engine.pool  # dispose() replaces the pool
        overflow = getattr(current, "_max_overflow", -1)
        max_size = current.size() + overflow if overflow is not None and overflow >= 0 else None
        return PoolUsage(
            idle=current.checkedin(),
            used=current.checkedout(),
            max_size=max_size,
            timeouts=timeouts.count if _counts_timeouts(current) else None,
        )

    return read


def _counts_timeouts(pool: Any) -> bool:
    return "_do_get" in pool.__dict__ and "recreate" in pool.__dict__


def _watch_timeouts(pool: Any, timeouts: TimeoutCounter) -> None:
    """Count the pool's waits that time out; a pool without a wait timeout is left alone."""
    if not hasattr(pool, "_timeout") or _counts_timeouts(pool):
        return
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    do_get, recreate = pool._do_get, pool.recreate

    def counting_do_get() -> Any:
        try:
            return do_get()
        except PoolTimeoutError as exc:
            # QueuePool._do_get calls itself (through this wrapper): count a timeout once
            if not getattr(exc, "_dbsight_counted", False):
                exc._dbsight_counted = True  # type: ignore[attr-defined]
                timeouts.count += 1
            raise

    def watched_recreate() -> Any:
        new = recreate()
        _watch_timeouts(new, timeouts)
        return new

    pool._do_get = counting_do_get
    pool.recreate = watched_recreate


def _unwatch_timeouts(pool: Any) -> None:
    pool.__dict__.pop("_do_get", None)
    pool.__dict__.pop("recreate", None)


def instrument_engine(
    engine: Any,
    *,
    target: Any = None,
    async_engine: Any = None,
    explain: bool = True,
    pool_name: str | None = None,
) -> InstrumentationHandle:
    """Hook a sync `Engine` (for an `AsyncEngine`, its ``sync_engine``, given ``async_engine``)."""
    dialect = engine.dialect
    shared = _by_dialect.get(id(dialect))
    if shared is not None and shared.active:  # an execution_options() engine of a hooked one
        return shared
    system = system_of(engine)
    url = engine.url
    explainer: Any = None
    if explain and system == "postgresql":
        explainer = (
            _async_explainer(async_engine) if async_engine is not None else _sync_explainer(engine)
        )
    escape_percent = dialect.paramstyle in ("format", "pyformat")
    saved = {name: dialect.__dict__[name] for name in _METHODS if name in dialect.__dict__}
    for method, wrapper in _wrappers(
        dialect, system, url.database, url.username, explainer, escape_percent
    ).items():
        setattr(dialect, method, wrapper)

    timeouts = TimeoutCounter()
    reader = _pool_reader(engine, timeouts)
    name = None
    if reader is not None:
        name = pools.register(pool_name or f"sqlalchemy/{url.database or system}", reader)
        _watch_timeouts(engine.pool, timeouts)

    def undo() -> None:
        if reader is not None:
            _unwatch_timeouts(engine.pool)
        for method in _METHODS:
            if method in saved:
                setattr(dialect, method, saved[method])
            else:
                dialect.__dict__.pop(method, None)
        _by_dialect.pop(id(dialect), None)

    handle = InstrumentationHandle(
        target if target is not None else engine,
        SOURCE,
        system,
        undo,
        key=id(engine),
        pool_name=name,
    )
    _by_dialect[id(dialect)] = handle
    return handle
