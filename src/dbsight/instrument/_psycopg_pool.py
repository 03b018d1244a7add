"""psycopg_pool: `ConnectionPool` and `AsyncConnectionPool` (and their Null* variants).

Every connection a pool hands out passes through the pool's ``check`` callback
(``_check_connection`` in ``getconn``), so the pool's ``_check`` attribute is wrapped: the
wrapper instruments a connection the first time it is handed out (connections idle in the pool
are instrumented at once), then runs the application's own check, if any, unrecorded: a
check (``ConnectionPool.check_connection`` runs an empty statement) is pool housekeeping,
not an application query. ``configure`` callbacks run before a connection is ever handed out,
so their statements are not recorded either, and a cursor factory they set is the one
instrumented. Uninstrument restores ``_check`` and the factories of every connection still
alive.

psycopg_pool internals relied on (checked against psycopg_pool 3.3): ``_check`` (the check
callback, called for every ``getconn``) and ``_pool`` (the deque of idle connections).
Gauges come from the public ``get_stats()`` (pool_size, pool_available, pool_max), and the
pool timeouts from its ``requests_errors`` (requests that got no connection: timed out, or
refused by a full ``max_waiting`` queue; ``pop_stats()`` resets it, which Prometheus reads as
a counter reset).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from ..core import PoolUsage, pools
from . import _psycopg
from ._common import _recording
from ._handle import InstrumentationHandle

SOURCE = "psycopg_pool"


def _is_async(pool: Any) -> bool:
    return any(cls.__name__ == "AsyncConnectionPool" for cls in type(pool).__mro__)


def instrument_pool(
    pool: Any, *, explain: bool = True, pool_name: str | None = None
) -> InstrumentationHandle:
    original_check = pool._check
    attached: weakref.WeakSet[Any] = weakref.WeakSet()

    def adopt(conn: Any) -> None:
        if handle.active and _psycopg.attach(conn, handle, explain):
            attached.add(conn)

    check: Callable[..., Any]
    if _is_async(pool):

        async def check(conn: Any) -> None:
            adopt(conn)
            if original_check is not None:
                token = _recording.set(True)
                try:
                    await original_check(conn)
                finally:
                    _recording.reset(token)

    else:

        def check(conn: Any) -> None:
            adopt(conn)
            if original_check is not None:
                token = _recording.set(True)
                try:
                    original_check(conn)
                finally:
                    _recording.reset(token)

    def undo() -> None:
        if pool._check is check:
            pool._check = original_check
        for conn in list(attached):
            _psycopg.detach(conn, handle)
        attached.clear()

    def read() -> PoolUsage:
        stats = pool.get_stats()
        size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
        return PoolUsage(
            idle=available,
            used=max(0, size - available),
            max_size=stats.get("pool_max"),
            timeouts=stats.get("requests_errors", 0),
        )

    name = pools.register(pool_name or f"psycopg_pool/{pool.name}", read)
    handle = InstrumentationHandle(pool, SOURCE, _psycopg.SYSTEM, undo, pool_name=name)
    pool._check = check
    for conn in _idle_connections(pool):
        adopt(conn)
    return handle


def _idle_connections(pool: Any) -> list[Any]:
    # The pool's worker threads may change the deque while we copy it; the connections we
    # miss are adopted by the check wrapper when they are handed out.
    for _ in range(10):
        try:
            return list(pool._pool)
        except RuntimeError:
            continue
    return []
