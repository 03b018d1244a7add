"""Readiness checks through instrumented database targets: ``SELECT 1`` the way the
application reaches its database.

* pools and engines (SQLAlchemy ``Engine``/``AsyncEngine``, asyncpg ``Pool``, psycopg_pool
  pools): borrow a connection as the application does, run ``SELECT 1``, give it back at
  once. The borrow queues for a free connection like any other caller and never holds one
  beyond the ping: a pool busy to its last connection reports ``timeout`` after the check's
  timeout (the asyncio borrow is cancelled then; psycopg_pool's is given the same timeout; a
  sync SQLAlchemy engine's borrow, in the check's own thread, gives up after the engine's
  ``pool_timeout``, and meanwhile the next probes join it instead of queueing more).
* single connections (asyncpg ``Connection``, psycopg ``Connection``/``AsyncConnection``):
  the application's connection is never used. It may be busy with a query (asyncpg would
  raise "another operation is in progress" into the application's next call), or inside a
  transaction that a ``SELECT 1`` would extend (psycopg outside autocommit). The check
  fails when that connection is closed or broken, and otherwise runs ``SELECT 1`` on a new
  connection opened with the same parameters, closed straight after.

Nothing a check runs is recorded as an application query: it runs under the flag every
instrument skips (the one background EXPLAINs use).

Other integrations (a cache client, say) add a builder for their source with
`health_builder`, or give their handle class a ``health_check()`` of its own.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..core._context import _recording
from ..ops.health import HealthCheck
from ._dispatch import _kind_of
from ._explain import EXPLAINING
from ._handle import InstrumentationHandle

PING = "SELECT 1"
TIMEOUT_S = 2.0

Builder = Callable[[InstrumentationHandle, str], "HealthCheck | None"]

# source of a handle -> the function that builds its check (given the handle and a name)
_BUILDERS: dict[str, Builder] = {}


def health_builder(source: str) -> Callable[[Builder], Builder]:
    """Register the check builder of handles whose ``source`` is ``source``."""

    def register(builder: Builder) -> Builder:
        _BUILDERS[source] = builder
        return builder

    return register


def check_for(handle: InstrumentationHandle) -> HealthCheck | None:
    """The readiness check of ``handle``'s target, or None for a target kind without one."""
    builder = _BUILDERS.get(handle.source)
    if builder is None:
        return None
    return builder(handle, f"{handle.system}:{handle.pool_name or handle.source}")


@contextmanager
def _unrecorded() -> Iterator[None]:
    token = _recording.set(EXPLAINING)
    try:
        yield
    finally:
        _recording.reset(token)


def _connect_timeout_s(timeout_s: float) -> int:
    # libpq takes whole seconds and treats 1 as 2; the check's own timeout is the real bound
    return max(2, math.ceil(timeout_s))


# -- SQLAlchemy ------------------------------------------------------------------------------
@health_builder("sqlalchemy")
def _sqlalchemy(handle: InstrumentationHandle, name: str) -> HealthCheck:
    target = handle.target
    found = _kind_of(target)
    if found is not None and found[1] == "async_engine":

        async def ping_async_engine() -> None:
            with _unrecorded():
                async with target.connect() as conn:
                    await conn.exec_driver_sql(PING)

        return HealthCheck(name, ping_async_engine, timeout_s=TIMEOUT_S)

    def ping_engine() -> None:
        with _unrecorded():
            with target.connect() as conn:
                conn.exec_driver_sql(PING)

    return HealthCheck(name, ping_engine, timeout_s=TIMEOUT_S)


# -- asyncpg ---------------------------------------------------------------------------------
@health_builder("asyncpg")
def _asyncpg(handle: InstrumentationHandle, name: str) -> HealthCheck:
    target = handle.target
    found = _kind_of(target)
    if found is not None and found[1] == "pool":

        async def ping_pool() -> None:
            with _unrecorded():
                async with target.acquire() as con:
                    await con.fetchval(PING)

        return HealthCheck(name, ping_pool, timeout_s=TIMEOUT_S)

    async def ping_connection() -> None:
        if target.is_closed():
            raise ConnectionError("the instrumented connection is closed")
        with _unrecorded():
            await _asyncpg_ping_like(target)

    return HealthCheck(name, ping_connection, timeout_s=TIMEOUT_S)


async def _asyncpg_ping_like(con: Any) -> None:
    """``SELECT 1`` on a new connection opened exactly as ``con`` was (address, ssl,
    password callable, server settings ...), then closed."""
    import asyncpg
    from asyncpg import connect_utils

    other = await connect_utils._connect_addr(
        addr=con._addr,
        loop=asyncio.get_running_loop(),
        params=con._params,
        config=con._config,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
    )
    try:
        await other.fetchval(PING)
    except BaseException:
        other.terminate()
        raise
    await other.close()


# -- psycopg ---------------------------------------------------------------------------------
def _psycopg_connect_kwargs(conn: Any, timeout_s: float) -> dict[str, Any]:
    info = conn.info
    kwargs: dict[str, Any] = {
        "conninfo": info.dsn,
        "connect_timeout": _connect_timeout_s(timeout_s),
        "autocommit": True,
    }
    if info.password:
        kwargs["password"] = info.password
    return kwargs


def _ensure_open(conn: Any) -> None:
    if conn.closed or conn.broken:
        raise ConnectionError("the instrumented connection is closed or broken")


@health_builder("psycopg")
def _psycopg(handle: InstrumentationHandle, name: str) -> HealthCheck:
    import psycopg

    target = handle.target
    timeout_s = TIMEOUT_S
    if isinstance(target, psycopg.AsyncConnection):

        async def ping_async_connection() -> None:
            _ensure_open(target)
            with _unrecorded():
                other = await psycopg.AsyncConnection.connect(
                    **_psycopg_connect_kwargs(target, timeout_s)
                )
                try:
                    await other.execute(PING)
                finally:
                    await other.close()

        return HealthCheck(name, ping_async_connection, timeout_s=timeout_s)

    def ping_connection() -> None:
        _ensure_open(target)
        with _unrecorded():
            with psycopg.connect(**_psycopg_connect_kwargs(target, timeout_s)) as other:
                other.execute(PING)

    return HealthCheck(name, ping_connection, timeout_s=timeout_s)


def _nothing_idle(pool: Any) -> bool:
    """Whether a borrow from ``pool`` (psycopg_pool) would wait for a connection."""
    return int(pool.get_stats().get("pool_available", 0)) == 0


def _pool_connect_args(conninfo: Any, kwargs: Any, timeout_s: float) -> dict[str, Any]:
    return {
        "conninfo": conninfo or "",
        **(kwargs or {}),
        "connect_timeout": _connect_timeout_s(timeout_s),
    }


@health_builder("psycopg_pool")
def _psycopg_pool(handle: InstrumentationHandle, name: str) -> HealthCheck:
    """SELECT 1 on a borrowed connection. With none idle, psycopg_pool's borrow waits for a
    returned connection or for its own reconnection attempts, which retry a refusing server
    with backoff: the borrow would time out without saying why. A connection opened as the
    pool opens them (and closed at once) tells a refusing server (fail, at once) from a busy
    pool (the borrow then waits, and times out)."""
    from . import _psycopg_pool

    target = handle.target
    timeout_s = TIMEOUT_S
    if _psycopg_pool._is_async(target):

        async def reach_async() -> None:
            conninfo, kwargs = target.conninfo, target.kwargs
            if callable(conninfo):
                conninfo = conninfo()
                if inspect.isawaitable(conninfo):
                    conninfo = await conninfo
            if callable(kwargs):
                kwargs = kwargs()
                if inspect.isawaitable(kwargs):
                    kwargs = await kwargs
            args = _pool_connect_args(conninfo, kwargs, timeout_s)
            conn = await target.connection_class.connect(**args)
            await conn.close()

        async def ping_async_pool() -> None:
            with _unrecorded():
                if _nothing_idle(target):
                    await reach_async()
                async with target.connection(timeout=timeout_s) as conn:
                    await conn.execute(PING)

        return HealthCheck(name, ping_async_pool, timeout_s=timeout_s)

    def reach() -> None:
        conninfo, kwargs = target.conninfo, target.kwargs
        conninfo = conninfo() if callable(conninfo) else conninfo
        kwargs = kwargs() if callable(kwargs) else kwargs
        target.connection_class.connect(
            **_pool_connect_args(conninfo, kwargs, timeout_s)
        ).close()

    def ping_pool() -> None:
        with _unrecorded():
            if _nothing_idle(target):
                reach()
            with target.connection(timeout=timeout_s) as conn:
                conn.execute(PING)

    return HealthCheck(name, ping_pool, timeout_s=timeout_s)
