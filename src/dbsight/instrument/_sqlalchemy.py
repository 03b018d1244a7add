"""SQLAlchemy: `Engine` and `AsyncEngine`, any dialect, through the engine's own events.

``before_cursor_execute`` (``retval=True``: it may append the sqlcommenter comment) starts
the statement, ``after_cursor_execute`` finishes it and ``handle_error`` records its failure.
An `AsyncEngine` is hooked through its ``sync_engine`` only, so each statement is one event
(and one span), not one per layer. ``executemany`` is one event (rows = ``cursor.rowcount``);
"insertmanyvalues" batches are one event per batch, as each is one round trip. Rows come
from ``cursor.rowcount`` for INSERT/UPDATE/DELETE; results are never consumed.

Transaction control and pool pings do not reach these events (SQLAlchemy runs BEGIN,
COMMIT, ROLLBACK and ``pool_pre_ping`` through the DBAPI connection), so they are not
recorded; a statement the application itself sends (``text("COMMIT")``) is recorded with
operation ``tx``. While a statement is recorded here, the core's "recording" flag is set, so
a driver instrumented underneath (asyncpg, psycopg) does not record it a second time.

A statement run with ``skip_user_error_events`` (SQLAlchemy's own MySQL reflection probes)
that fails is not recorded: SQLAlchemy gives no hook for that failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from ..core import PoolUsage, pools
from ..core._sqlcomment import add_comment
from ._common import _recording, recorder
from ._explain import EXPLAIN_PREFIX, EXPLAINING, TaskExplainer, ThreadExplainer, timeout_statements
from ._handle import InstrumentationHandle

SOURCE = "sqlalchemy"
_SYSTEMS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}
_DML = frozenset(("insert", "update", "delete"))
_CTX = "_dbsight_query"


def system_of(engine: Any) -> str:
    name = engine.dialect.name
    return _SYSTEMS.get(name, name)


def _listeners(
    system: str,
    database: str | None,
    user: str | None,
    explainer: Any,
    escape_percent: bool,
) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    start = recorder.start
    finish = recorder.finish
    fail = recorder.fail

    def before_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> tuple[str, Any]:
        if not recorder.active or context is None or _recording.get() is EXPLAINING:
            return statement, parameters
        # No parameters and SQLAlchemy's "no parameters" path: the DBAPI gets the bare text,
        # which it will not interpolate (so a '%' in a comment must not be doubled).
        bare = not parameters and context.no_parameters
        ctx = start(
            statement,
            system,
            SOURCE,
            None if bare else parameters,
            database=database,
            user=user,
            explainer=None if executemany else explainer,
        )
        context.__dict__[_CTX] = ctx
        _recording.set(True)
        mode = recorder.settings.sqlcommenter  # configure() swaps settings: read per statement
        if mode != "off":
            statement = add_comment(
                statement, ctx, mode, escape_percent=escape_percent and not bare
            )
        return statement, parameters

    def after_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if context is None:
            return
        ctx = context.__dict__.pop(_CTX, None)
        if ctx is None:
            return
        _recording.set(False)
        rows = None
        if executemany or ctx.info.operation in _DML:
            try:
                rowcount = cursor.rowcount
            except Exception:
                rowcount = -1
            if rowcount is not None and rowcount >= 0:
                rows = rowcount
        finish(ctx, rows)

    def handle_error(exception_context: Any) -> None:
        context = exception_context.execution_context
        if context is None:
            return
        ctx = context.__dict__.pop(_CTX, None)
        if ctx is None:
            return
        _recording.set(False)
        fail(ctx, exception_context.original_exception)

    return before_cursor_execute, after_cursor_execute, handle_error


def _has_local_listeners(dispatch: Any) -> bool:
    for name in dispatch._event_names:
        if getattr(getattr(dispatch, name), "listeners", None):
            return True
    return False


def _explain_on(conn: Any, sql: str, params: object | None, timeout_s: float) -> Any:
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
            cursor.execute(EXPLAIN_PREFIX + sql)
        else:
            cursor.execute(EXPLAIN_PREFIX + sql, params)
        row = cursor.fetchone()
    finally:
        try:
            cursor.close()
        finally:
            dbapi_connection.rollback()
    return row[0] if row is not None else None


def _sync_explainer(engine: Any) -> ThreadExplainer:
    def run(sql: str, params: object | None, timeout_s: float) -> Any:
        with engine.connect() as conn:
            return _explain_on(conn, sql, params, timeout_s)

    return ThreadExplainer(run)


def _async_explainer(async_engine: Any) -> TaskExplainer:
    async def run(sql: str, params: object | None, timeout_s: float) -> Any:
        async with async_engine.connect() as conn:
            return await conn.run_sync(_explain_on, sql, params, timeout_s)

    return TaskExplainer(run)


def _pool_reader(engine: Any) -> Callable[[], PoolUsage] | None:
    pool = engine.pool
    if not all(hasattr(pool, name) for name in ("checkedin", "checkedout", "size")):
        return None  # NullPool, StaticPool, SingletonThreadPool: nothing to gauge

    def read() -> PoolUsage:
        current = engine.pool  # dispose() replaces the pool
        overflow = getattr(current, "_max_overflow", -1)
        max_size = current.size() + overflow if overflow is not None and overflow >= 0 else None
        return PoolUsage(idle=current.checkedin(), used=current.checkedout(), max_size=max_size)

    return read


def instrument_engine(
    engine: Any,
    *,
    target: Any = None,
    async_engine: Any = None,
    explain: bool = True,
    pool_name: str | None = None,
) -> InstrumentationHandle:
    """Hook a sync `Engine` (for an `AsyncEngine`, its ``sync_engine``, given ``async_engine``)."""
    system = system_of(engine)
    url = engine.url
    explainer: Any = None
    if explain and system == "postgresql":
        explainer = (
            _async_explainer(async_engine) if async_engine is not None else _sync_explainer(engine)
        )
    escape_percent = engine.dialect.paramstyle in ("format", "pyformat")
    before, after, error = _listeners(system, url.database, url.username, explainer, escape_percent)

    dialect = engine.dialect
    had_engine_flag = "_has_events" in engine.__dict__
    had_dialect_flag = "_has_events" in dialect.__dict__
    engine_flag = engine.__dict__.get("_has_events")
    dialect_flag = dialect.__dict__.get("_has_events")

    # Timing covers the cursor call: our "before" runs after other listeners, "after" first.
    event.listen(engine, "before_cursor_execute", before, retval=True)
    event.listen(engine, "after_cursor_execute", after, insert=True)
    event.listen(engine, "handle_error", error, insert=True)

    reader = _pool_reader(engine)
    name = None
    if reader is not None:
        name = pools.register(pool_name or f"sqlalchemy/{url.database or system}", reader)

    def undo() -> None:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
        event.remove(engine, "handle_error", error)
        # listen() switched the event fast-path flags on; put them back as they were when
        # nothing else listens now, so the engine runs exactly as before.
        if not _has_local_listeners(engine.dispatch):
            if had_engine_flag:
                engine.__dict__["_has_events"] = engine_flag
            else:
                engine.__dict__.pop("_has_events", None)
        if not _has_local_listeners(dialect.dispatch):
            if had_dialect_flag:
                dialect.__dict__["_has_events"] = dialect_flag
            else:
                dialect.__dict__.pop("_has_events", None)

    return InstrumentationHandle(
        target if target is not None else engine,
        SOURCE,
        system,
        undo,
        key=id(engine),
        pool_name=name,
    )
