"""`InstrumentationHandle`: what ``instrument()`` returns, and the table of live handles."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _runtime
from ..core import pools
from ..export.slowlog import FLUSH_TIMEOUT_S

UNINSTRUMENTED = "the instrumentation was removed before the plan arrived"

if TYPE_CHECKING:
    from ..ops.health import HealthCheck

_lock = threading.RLock()
# id(hooked object) -> handle. The handle holds the target strongly, so an id is never reused
# while its entry is live; ``uninstrument()`` removes it.
_live: dict[int, InstrumentationHandle] = {}
_UNBUILT: Any = object()  # a handle's health check before ``health_check()`` builds it


class InstrumentationHandle:
    """A live instrumentation of one object; ``uninstrument()`` restores it exactly.

    ``target`` is the object given to ``instrument()``, ``source`` the client library
    (``sqlalchemy``, ``asyncpg``, ``psycopg``, ``psycopg_pool``), ``system`` the database
    system, ``pool_name`` the name its pool gauges are exported under (None without a pool).
    """

    __slots__ = (
        "target", "source", "system", "pool_name", "_key", "_undo", "_active", "_health",
    )  # fmt: skip

    def __init__(
        self,
        target: Any,
        source: str,
        system: str,
        undo: Callable[[], None],
        *,
        key: int | None = None,
        pool_name: str | None = None,
    ) -> None:
        self.target = target
        self.source = source
        self.system = system
        self.pool_name = pool_name
        self._key = id(target) if key is None else key
        self._undo = undo
        self._active = True
        self._health: HealthCheck | None = _UNBUILT

    @property
    def active(self) -> bool:
        """True until ``uninstrument()``."""
        return self._active

    def health_check(self) -> HealthCheck | None:
        """The readiness check through the instrumented target (a database's ``SELECT 1``,
        see ``_health``), the same object on every call; None once uninstrumented or for a
        target without one."""
        if not self._active:
            return None
        if self._health is _UNBUILT:
            from ._health import check_for

            self._health = check_for(self)
        return self._health

    def uninstrument(self) -> None:
        """Undo the instrumentation (idempotent): the target behaves as it did before."""
        with _lock:
            if not self._active:
                return
            self._active = False
            if _live.get(self._key) is self:
                del _live[self._key]
            try:
                self._undo()
            finally:
                if self.pool_name is not None:
                    pools.unregister(self.pool_name)
        _flush_slow_lines()

    @classmethod
    def live(cls) -> list[InstrumentationHandle]:
        """Every handle not yet uninstrumented, oldest first."""
        with _lock:
            return list(_live.values())

    def __repr__(self) -> str:
        state = "active" if self._active else "uninstrumented"
        target = type(self.target).__name__
        return f"<InstrumentationHandle {self.source}/{self.system} {target} {state}>"


def _flush_slow_lines() -> None:
    """Slow-query lines waiting for a plan are written now: the instrument's explainer may
    not outlive it, and the process may be about to exit. Plans in flight get a moment to
    arrive, except on a running event loop, which they would need (it is not blocked)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        timeout_s = FLUSH_TIMEOUT_S
    else:
        timeout_s = 0.0
    try:
        _runtime.flush(timeout_s, UNINSTRUMENTED)
    except Exception as exc:  # never let bookkeeping break uninstrument()
        _runtime.recorder.failures.record("dbsight.slowlog", "flush", exc)


def existing(key: int) -> InstrumentationHandle | None:
    return _live.get(key)


def register(handle: InstrumentationHandle) -> InstrumentationHandle:
    with _lock:
        _live[handle._key] = handle
    return handle


def live_handles() -> list[InstrumentationHandle]:
    return InstrumentationHandle.live()


def uninstrument_all() -> None:
    """Uninstrument every live handle (newest first)."""
    for handle in reversed(InstrumentationHandle.live()):
        handle.uninstrument()
