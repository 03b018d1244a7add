"""``instrument(target)``: find the integration for a target by its class, without importing
any client library the application does not already use."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..core._recorder import dialect_for
from ..sql import warm_up
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
    ("redis.client", "Redis"): ("_redis", "client"),
    ("redis.client", "Pipeline"): ("_redis", "pipeline"),  # refused, with a hint
    ("redis.asyncio.client", "Redis"): ("_redis", "async_client"),
    ("redis.asyncio.client", "Pipeline"): ("_redis", "pipeline"),  # refused, with a hint
    ("httpx", "Client"): ("_httpx", "client"),  # httpx sets its classes' __module__ to "httpx"
    ("httpx", "AsyncClient"): ("_httpx", "async_client"),
    ("starlette.applications", "Starlette"): ("_asgi", "app"),  # FastAPI is a subclass
}

SUPPORTED = (
    "sqlalchemy Engine / AsyncEngine, asyncpg Connection / Pool, psycopg Connection / "
    "AsyncConnection, psycopg_pool ConnectionPool / AsyncConnectionPool, "
    "redis Redis / redis.asyncio Redis, httpx Client / AsyncClient, "
    "Starlette / FastAPI app"
)

_OPTIONS = frozenset(("explain", "pool_name"))
_NOT_SQL = frozenset(("_redis", "_httpx"))  # integrations whose calls are not SQL
# Options of web apps (see _asgi.instrument_app, which refuses the others).
_APP_OPTIONS = frozenset(
    ("prefix", "metrics", "summary", "health", "health_checks", "dashboard")
)


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
    if module_name in _NOT_SQL:  # not databases: no EXPLAIN, no pool gauges
        return module.instrument_client(target, kind)  # type: ignore[no-any-return]
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
    ``ConnectionPool`` and ``AsyncConnectionPool``; redis-py ``Redis`` and
    ``redis.asyncio.Redis`` (cache metrics, spans, PING health check; see ``_redis``) and
    httpx ``Client`` and ``AsyncClient`` (external API metrics, spans, ``traceparent``
    propagation; see ``_httpx``). Instrumenting an object again returns
    its live handle. Options: ``explain=False`` (no EXPLAIN plans for the slow-query log from
    this target), ``pool_name="..."`` (the ``pool`` label of its connection gauges).
    A Starlette or FastAPI app gets dbsight's ASGI middleware and endpoints; its options
    (``prefix``, ``metrics``, ``summary``, ``health``, ``health_checks``, ``dashboard``) are described in
    ``dbsight.instrument._asgi.instrument_app``. A database client's SQL parser (its
    dialect's) is loaded here, so that its first statement does not pay for it.
    """
    unknown = set(options) - _OPTIONS - _APP_OPTIONS
    if unknown:
        known = sorted(_OPTIONS | _APP_OPTIONS)
        raise TypeError(
            f"dbsight.instrument(): unknown option(s) {sorted(unknown)}; known: {known}"
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
        if module_name == "_asgi":  # a web app: its own options, checked there
            handle = import_module(f"{__package__}._asgi").instrument_app(target, **options)
        else:
            handle = _install(
                module_name,
                kind,
                target,
                bool(options.get("explain", True)),
                options.get("pool_name"),
            )
            if module_name not in _NOT_SQL:  # its first statement must not load the parser
                warm_up(dialect_for(handle.system))
        if handle.active:
            _handle.register(handle)
        return handle
