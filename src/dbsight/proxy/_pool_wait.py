"""The callers queued for a pooled server connection (`BackendPool`'s waiters): `Waiter`,
what the pool asks of each — whether its wait is over, handing it a connection or an error,
taking back what it was handed when it gives up — and its two kinds: `AwaitedWaiter`, an
``await``-ing caller's future (`BackendPool.acquire`), and `CalledBack`, whose caller is
called back instead (`BackendPool.wait`).

A transaction-mode client with more clients than connections waits for one nearly every
transaction: a task per wait (and the coroutine it runs) cost a tenth of such a transaction's
instructions, so its wait is a `CalledBack` — one `call_soon` of the caller's ``then`` once
the wait has ended, never from within the pool's own call (the caller's state is not ready
then, and its failure is not the pool's). No wait has a timer of its own either: the pool
keeps one for the earliest deadline of its queue (`BackendPool._expire`).

Compiled with the pool (see `dbsight._compiled`; typed by the ``.pxd`` next to it): the pool
calls these methods in C. Without the extension this same source runs as Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from ._backend import BackendConnection
    from ._pool import BackendPool


class Waiter:
    """A caller in a pool's queue since ``since`` (``time.monotonic``), for up to ``limit``
    seconds (until ``deadline``)."""

    __slots__ = ("since", "limit", "deadline")

    def __init__(self, since: float, limit: float) -> None:
        self.since = since
        self.limit = limit
        self.deadline = since + limit

    def done(self) -> bool:
        """Its wait is over (handed something, or given up)."""
        raise NotImplementedError

    def set_result(self, conn: BackendConnection) -> None:
        """Hand it ``conn`` (its wait ends)."""
        raise NotImplementedError

    def set_exception(self, error: BaseException) -> None:
        """End its wait with ``error``."""
        raise NotImplementedError

    def cancel(self) -> None:
        """It gives up: nothing is handed to it from now on."""
        raise NotImplementedError

    def handed(self) -> BackendConnection | None:
        """The connection it was handed, when it was and has not taken it yet."""
        raise NotImplementedError


class AwaitedWaiter(Waiter):
    """A caller awaiting ``future`` (`BackendPool.acquire`)."""

    __slots__ = ("future",)

    def __init__(
        self, future: asyncio.Future[BackendConnection], since: float, limit: float
    ) -> None:
        Waiter.__init__(self, since, limit)
        self.future = future

    def done(self) -> bool:
        return bool(self.future.done())

    def set_result(self, conn: BackendConnection) -> None:
        self.future.set_result(conn)

    def set_exception(self, error: BaseException) -> None:
        self.future.set_exception(error)

    def cancel(self) -> None:
        if not self.future.done():
            self.future.cancel()

    def handed(self) -> BackendConnection | None:
        future = self.future
        if future.done() and not future.cancelled() and future.exception() is None:
            conn: BackendConnection = future.result()
            return conn
        return None


class CalledBack(Waiter):
    """The end of a wait whose caller is called back rather than awaiting
    (`BackendPool.wait`): ``then(conn, None)``, or ``then(None, error)``, called soon after
    (one `call_soon` of the waiter itself — no bound method made — not a task woken) unless
    it was abandoned meanwhile. Made by `called_back`."""

    # (state: 0 waiting, 1 done, 2 abandoned)
    __slots__ = ("pool", "then", "call_soon", "conn", "error", "state")

    def done(self) -> bool:
        return self.state != 0

    def set_result(self, conn: BackendConnection) -> None:
        self.state, self.conn = 1, conn
        self.call_soon(self)

    def set_exception(self, error: BaseException) -> None:
        self.state, self.error = 1, error
        self.call_soon(self)

    def cancel(self) -> None:
        self.state = 2

    def handed(self) -> BackendConnection | None:
        return self.conn if self.state == 1 else None

    def abandon(self) -> None:
        """The caller gives up (its client has gone): no call back; a connection already
        handed to it goes back to the pool."""
        if self.state != 2:
            self.pool._abandon(self)

    def __call__(self) -> None:  # (the event loop's, soon after the wait ended)
        if self.state == 2:  # abandoned meanwhile
            return
        self.then(self.conn, self.error)


def called_back(
    pool: BackendPool, then: Callable[..., None], call_soon: Callable[..., Any], since: float,
    limit: float,
) -> CalledBack:
    """A `CalledBack` waiting since ``since`` for up to ``limit`` seconds, to call ``then``
    through ``call_soon`` (its event loop's): a C call for the compiled pool, with no
    arguments parsed (one per transaction that waits)."""
    slot = CalledBack.__new__(CalledBack)
    slot.since = since
    slot.limit = limit
    slot.deadline = since + limit
    slot.pool = pool
    slot.then = then
    slot.call_soon = call_soon
    slot.conn = None
    slot.error = None
    slot.state = 0
    return slot
