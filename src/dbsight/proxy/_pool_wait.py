"""`CalledBack`: the end of a wait for a pooled server connection whose caller is called back
rather than awaiting (`BackendPool.wait`).

A transaction-mode client with more clients than connections waits for one nearly every
transaction; a task per wait (and the coroutine it runs) cost a tenth of such a transaction's
instructions. This is what the pool's queue of waiters asks of a future — ``done``,
``set_result``, ``set_exception``, ``cancel``, and what `BackendPool._abandon` reads — and
one `call_soon` of the caller's ``then`` once the wait has ended: never from within the pool's
own call (the caller's state is not ready then, and its failure is not the pool's).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._backend_errors import PoolTimeout

if TYPE_CHECKING:
    from ._backend import BackendConnection
    from ._pool import BackendPool, _Waiter

_monotonic = time.monotonic


class CalledBack:
    """The end of a wait whose caller is called back rather than awaiting (`BackendPool.wait`):
    the few things the pool asks of a waiter's future (``done``, ``set_result``,
    ``set_exception``, ``cancel``, and what `_abandon` reads), and ``then(conn, None)`` —
    or ``then(None, error)`` — called soon after (one `call_soon`, not a task woken)."""

    __slots__ = ("pool", "then", "loop", "limit", "waiter", "timer", "conn", "error", "state")

    def __init__(self, pool: BackendPool, then: Callable[..., None], loop: Any, limit: float):
        self.pool = pool
        self.then = then
        self.loop = loop
        self.limit = limit
        self.waiter: _Waiter | None = None
        self.timer: Any = None
        self.conn: BackendConnection | None = None
        self.error: BaseException | None = None
        self.state = 0  # 0 waiting, 1 done, 2 cancelled (by the pool or the caller)

    def done(self) -> bool:
        return self.state != 0

    def cancelled(self) -> bool:
        return self.state == 2

    def result(self) -> BackendConnection | None:
        return self.conn

    def exception(self) -> BaseException | None:
        return self.error

    def set_result(self, conn: BackendConnection | None) -> None:
        self._end(conn, None)

    def set_exception(self, error: BaseException) -> None:
        self._end(None, error)

    def cancel(self) -> None:
        self.state = 2
        if self.timer is not None:
            self.timer.cancel()

    def abandon(self) -> None:
        """The caller gives up (its client has gone): no call back; a connection already
        handed to it goes back to the pool."""
        if self.state != 2:
            if self.waiter is not None:
                self.pool._abandon(self.waiter)
            self.cancel()

    def _end(self, conn: BackendConnection | None, error: BaseException | None) -> None:
        self.state, self.conn, self.error = 1, conn, error
        if self.timer is not None:
            self.timer.cancel()
        self.loop.call_soon(self._call_back)

    def _call_back(self) -> None:
        if self.state == 2:  # abandoned meanwhile
            return
        pool, conn, error = self.pool, self.conn, self.error
        if error is None:
            if conn is None:  # its timer ran out first
                pool.total_timeouts += 1
                error = PoolTimeout(
                    f"dbsight proxy: no server connection free in pool {pool.name} after"
                    f" {self.limit:g} s: all {pool.max_size} (max_size) are in use"
                )
            elif self.timer is not None:  # (it waited: one idle at once counted already)
                assert self.waiter is not None
                waited = _monotonic() - self.waiter.since
                pool.total_wait_s += waited
                if waited > pool.max_wait_seen_s:
                    pool.max_wait_seen_s = waited
                pool.total_acquired += 1
        self.then(conn, error)
