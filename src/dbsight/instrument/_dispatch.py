"""``instrument(target)``: find the integration for a target by its class, without importing
any client library the application does not already use."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from . import _handle
from ._common import get_runtime
from ._handle import InstrumentationHandle

# (module, class name) of a class in the target's MRO -> (integration module, kind).
_TARGETS: dict[tuple[str, str], tuple[str, str]] = {
    ("sqlalchemy.engine.base", "Engine"): ("_sqlalchemy", "engine"),
    ("sqlalchemy.ext.asyncio.engine", "AsyncEngine"): ("_sqlalchemy", "async_engine"),
    ("asyncpg.connection", "Connection"): ("_asyncpg", "connection"),
    ("asyncpg.pool", "Pool"): ("_asyncpg", "pool"),
    ("asyncpg.pool", "PoolConnectionProxy"): ("_asyncpg", "connection"),  # refused, with a hint
    ("psycopg", "Connection"): ("_psycopg", "connection"),
    ("psycopg.connection", "Connection"): ("_psycopg", "connection"),
    ("psycopg", "AsyncConnection"): ("_psycopg", "connection"),
    ("psycopg.connection_async", "AsyncConnection"): ("_psycopg", "connection"),
    ("psycopg_pool.pool", "ConnectionPool"): ("_psycopg_pool", "pool"),
    ("psycopg_pool", "ConnectionPool"): ("_psycopg_pool", "pool"),
    ("psycopg_pool.pool_async", "AsyncConnectionPool"): ("_psycopg_pool", "pool"),
    ("psycopg_pool", "AsyncConnectionPool"): ("_psycopg_pool", "pool"),
}

SUPPORTED = (
    "sqlalchemy Engine / AsyncEngine, asyncpg Connection / Pool, psycopg Connection / "
    "AsyncConnection, psycopg_pool ConnectionPool / AsyncConnectionPool"
)

_OPTIONS = frozenset(("explain", "pool_name"))


def _kind_of(target: Any) -> tuple[str, str] | None:
    for cls in type(target).__mro__:
        found = _TARGETS.get((cls.__module__, cls.__name__))
        if found is not None:
            return found
    return None


def _install(
    module_name: str, kind: str, target: Any, explain: bool, pool_name: str | None
) -> InstrumentationHandle:
    module: Any = import_module(f"{__package__}.{module_name}")
    if module_name == "_sqlalchemy":
        if kind == "async_engine":
            return module.instrument_engine(  # type: ignore[no-any-return]
                target.sync_engine,
                target=target,
                async_engine=target,
                explain=explain,
                pool_name=pool_name,
            )
        return module.instrument_engine(target, explain=explain, pool_name=pool_name)  # type: ignore[no-any-return]
    if kind == "pool":
        return module.instrument_pool(target, explain=explain, pool_name=pool_name)  # type: ignore[no-any-return]
    return module.instrument_connection(target, explain=explain)  # type: ignore[no-any-return]


def _key(target: Any, kind: str) -> int:
    # An AsyncEngine and its sync_engine are one instrumentation.
    return id(target.sync_engine) if kind == "async_engine" else id(target)


def instrument(target: Any, **options: Any) -> InstrumentationHandle:
    """Instrument a database client object; returns a handle whose ``uninstrument()`` undoes it.

    Supported: SQLAlchemy ``Engine`` and ``AsyncEngine`` (any dialect), asyncpg ``Connection``
    and ``Pool``, psycopg ``Connection`` and ``AsyncConnection``, psycopg_pool
    ``ConnectionPool`` and ``AsyncConnectionPool``. Instrumenting an object again returns
    its live handle. Options: ``explain=False`` (no EXPLAIN plans for the slow-query log from
    this target), ``pool_name="..."`` (the ``pool`` label of its connection gauges).
    """
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(
            f"dbsight.instrument(): unknown option(s) {sorted(unknown)}; known: {sorted(_OPTIONS)}"
        )
    found = _kind_of(target)
    if found is None:
        raise TypeError(
            f"dbsight.instrument(): cannot instrument a {type(target).__module__}."
            f"{type(target).__qualname__}; supported: {SUPPORTED}"
        )
    module_name, kind = found
    get_runtime()  # configure from the environment now, not on the first query
    with _handle._lock:
        existing = _handle.existing(_key(target, kind))
        if existing is not None and existing.active:
            return existing
        handle = _install(
            module_name, kind, target, bool(options.get("explain", True)), options.get("pool_name")
        )
        if handle.active:
            _handle.register(handle)
        return handle
