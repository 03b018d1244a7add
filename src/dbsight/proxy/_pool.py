"""Server connections for transaction pooling: one ``BackendPool`` per (database, user).

``acquire()`` hands out an idle connection (the most recently used one: the others can then
reach their idle timeout), opens a new one while the pool is below ``max_size``, or queues the
caller. Waiters are served strictly first come, first served: a released connection goes to
the oldest waiter before any newcomer can take it. A wait longer than the timeout raises
``PoolTimeout`` (53300) naming the pool and its limit.

``release()`` resets the connection (``BackendConnection.reset``: ROLLBACK if needed, then
DISCARD ALL, or a lighter reset that keeps prepared statements) and makes it available again;
one that broke, stopped mid-request, failed its reset or outlived ``max_lifetime_s`` is closed
instead, and a replacement is opened if someone is waiting. The relay's hot path uses
``try_acquire()`` and ``release_clean()``: no await and no round trip when a connection is
idle, and none when the transaction left nothing to reset.

Connecting retries with exponential backoff (``RetryPolicy``) while the server is unreachable,
refuses for now (57P03 starting up, 53300 too many clients) or drops the login; when the last
attempt fails, every caller waiting at that moment gets the error (08006 for an unreachable
server; the server's own SQLSTATE for a refused login): a server that is down will not serve
them sooner by waiting for the timeout.

The maintenance task (every ``maintenance_interval_s``, or ``await pool.maintain()``) closes
connections idle for ``idle_timeout_s`` (down to ``min_size``) and idle ones past
``max_lifetime_s``, then tops the pool up to ``min_size``; ``acquire()`` also skips and closes
idle connections past their lifetime or found dead, and ``release()`` closes those past it.
``stats()`` is what ``/stats/pools`` shows, read from plain counters.

Parking (``park()``). A transaction-mode client whose transaction left nothing to reset
gives its connection back without letting go of it: the connection counts as idle, yet stays
relayed to that client, which takes it back for its next transaction (``take_back()``) with no
detach and attach in between, unless another client needed one meanwhile: ``try_acquire()``
takes a parked connection (the longest parked first) when none is idle, after telling its
client (the callback given to ``park()``). A connection is not parked while others wait
(it goes to the oldest waiter), and never outlives its lifetime or idle timeout parked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Self

from .. import _hot
from ..core._pools import PoolUsage
from ..core._pools import pools as client_pools
from ._backend import BackendConnection, BackendSpec
from ._backend_errors import (
    BackendError,
    BackendRefused,
    BackendUnavailable,
    PoolClosed,
    PoolTimeout,
)
from ._pool_wait import AwaitedWaiter, CalledBack, Waiter, called_back

logger = logging.getLogger("dbsight.proxy.pool")

_running_loop = asyncio.get_running_loop


def _last_used(conn: BackendConnection) -> float:
    return conn.last_used_at


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a connection is attempted before the waiters are failed.

    Attempt ``n`` (from 1) is followed, if it fails, by a pause of
    ``min(initial_delay_s * multiplier ** (n - 1), max_delay_s)``.
    """

    attempts: int = 4
    initial_delay_s: float = 0.1
    multiplier: float = 2.0
    max_delay_s: float = 2.0

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= 100:
            raise ValueError(f"attempts must be 1..100, got {self.attempts}")
        if self.initial_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("retry delays cannot be negative")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")

    def delay(self, attempt: int) -> float:
        return min(self.initial_delay_s * self.multiplier ** (attempt - 1), self.max_delay_s)


class BackendPool:
    """Server connections of one (database, user); see the module docstring."""

    def __init__(
        self,
        spec: BackendSpec,
        *,
        min_size: int = 0,
        max_size: int = 10,
        acquire_timeout_s: float = 30.0,
        idle_timeout_s: float | None = 600.0,
        max_lifetime_s: float | None = 3600.0,
        reset_timeout_s: float = 5.0,
        maintenance_interval_s: float = 1.0,
        max_prepared: int | None = None,
        retry: RetryPolicy | None = None,
        name: str | None = None,
    ) -> None:
        if not 1 <= max_size <= 100_000:
            raise ValueError(f"max_size must be 1..100000, got {max_size}")
        if not 0 <= min_size <= max_size:
            raise ValueError(f"min_size must be 0..max_size ({max_size}), got {min_size}")
        for label, value in (
            ("acquire_timeout_s", acquire_timeout_s),
            ("reset_timeout_s", reset_timeout_s),
            ("maintenance_interval_s", maintenance_interval_s),
            ("idle_timeout_s", idle_timeout_s),
            ("max_lifetime_s", max_lifetime_s),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{label} must be > 0, got {value}")
        if max_prepared is not None and max_prepared < 1:
            raise ValueError(f"max_prepared must be >= 1, got {max_prepared}")
        self.spec = spec
        self.name = name or f"{spec.user}@{spec.database}"
        self.min_size = min_size
        self.max_size = max_size
        self.acquire_timeout_s = acquire_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.max_lifetime_s = max_lifetime_s
        self.reset_timeout_s = reset_timeout_s
        self.maintenance_interval_s = maintenance_interval_s
        self.max_prepared = max_prepared  # prepared statements kept per connection (None: all)
        self.retry = retry or RetryPolicy()

        self._idle: deque[BackendConnection] = deque()  # oldest release on the left
        self._used: set[BackendConnection] = set()  # taken from the pool: in use, or parked
        # how many of those are parked: idle, yet still relayed to the client that parked it
        # (`park`), each with the callback that detaches it from that client in its
        # ``parked_by``; a field each, not a collection, as a pooled transaction parks and
        # takes back its connection every time
        self._parked = 0
        self._connecting = 0
        self._waiters: deque[Waiter] = deque()
        # one timer for the queue, due at its earliest deadline (`_expire`), not one per wait
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # the event loop it serves, once known: `asyncio.get_running_loop` makes a getpid()
        # system call each time (Python 3.11's fork check), and nearly every wait needs it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._call_soon: Callable[..., Any] | None = None  # its call_soon, bound once
        self._tasks: set[asyncio.Task[Any]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self._closed = False
        self._gauge_name: str | None = None
        # statistics (plain counters: /stats/pools reads them)
        self.total_acquired = 0
        self.total_connects = 0
        self.connect_errors = 0
        self.total_timeouts = 0
        self.total_closed = 0
        self.total_wait_s = 0.0
        self.max_wait_seen_s = 0.0
        self.total_resets = 0  # releases that ran a reset query (DISCARD ALL or the light one)
        self.total_clean_releases = 0  # releases with nothing to reset: no round trip
        self.total_deallocated = 0  # prepared statements dropped over ``max_prepared``

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open ``min_size`` connections and start the maintenance task; from now on the
        pool is a ``db_client_connections{pool="proxy:<user>@<database>"}`` gauge too."""
        self._check_open()
        if self._gauge_name is None:
            self._gauge_name = client_pools.register(f"proxy:{self.name}", self._usage)
        await self.maintain()
        if self._maintenance is None:
            self._maintenance = asyncio.create_task(self._maintain_forever())

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every server connection (idle and in use) and fail the waiters (57P01)."""
        if self._closed:
            return
        self._closed = True
        if self._gauge_name is not None:
            client_pools.unregister(self._gauge_name)
        if self._maintenance is not None:
            self._maintenance.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        error = PoolClosed(f"dbsight proxy: pool {self.name} is closed")
        self._fail_waiters(error)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._maintenance is not None:
            await asyncio.gather(self._maintenance, return_exceptions=True)
        for conn in self._parked_ones():
            self._unparked(conn)()
        conns = [*self._idle, *self._used]
        self._idle.clear()
        self._used.clear()
        self.total_closed += len(conns)
        await asyncio.gather(*(conn.close() for conn in conns), return_exceptions=True)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_use(self) -> int:
        return len(self._used) - self._parked

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def size(self) -> int:
        """Server connections open or being opened."""
        return len(self._idle) + len(self._used) + self._connecting

    @property
    def idle(self) -> int:
        """Connections free for the next transaction: idle, or parked by a client."""
        return len(self._idle) + self._parked

    # ------------------------------------------------------------------ acquire / release

    async def acquire(self, timeout: float | None = None) -> BackendConnection:
        """A server connection for one transaction; give it back with ``release()``.

        Raises ``PoolTimeout`` (53300) after ``timeout`` (default ``acquire_timeout_s``)
        seconds of waiting, ``BackendUnavailable`` (08006) or ``BackendRefused`` when
        connecting failed, ``PoolClosed`` when the pool is closed.
        """
        self._check_open()
        idle = self.try_acquire()
        if idle is not None:
            return idle
        limit = self.acquire_timeout_s if timeout is None else timeout
        future: asyncio.Future[BackendConnection] = asyncio.get_running_loop().create_future()
        waiter = AwaitedWaiter(future, _hot.monotonic(), limit)
        self._enqueue(waiter)
        try:
            return await future  # or the timeout's, the connect's or the close's error
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise

    def wait(
        self, then: Callable[[BackendConnection | None, BackendError | None], None],
        timeout: float | None = None,
    ) -> CalledBack:
        """`acquire` for a caller called back rather than awaiting: soon after a connection
        is its, ``then(conn, None)``; ``then(None, error)`` when the wait ends with an error
        instead (`PoolTimeout`, the connect error, `PoolClosed`). Its place in the queue (FIFO
        with `acquire`'s) costs no task and no timer; ``abandon()`` it when the caller goes
        away."""
        limit = self.acquire_timeout_s if timeout is None else timeout
        call_soon = self._call_soon
        if call_soon is None:
            self._loop = _running_loop()
            call_soon = self._call_soon = self._loop.call_soon
        slot = called_back(self, then, call_soon, _hot.monotonic(), limit)
        if self._closed:
            slot.set_exception(PoolClosed(f"dbsight proxy: pool {self.name} is closed"))
            return slot
        idle = self.try_acquire()
        if idle is not None:
            slot.set_result(idle)
        else:
            self._enqueue(slot)
        return slot

    def try_acquire(self) -> BackendConnection | None:
        """An idle connection now, without waiting, or None (none idle or parked, or others
        queued before the caller: they come first). With none idle, a parked one is taken
        from the client that parked it."""
        if self._closed or self._waiters:
            return None
        idle = self._idle
        if not idle:
            return self._take_parked() if self._parked else None
        now = _hot.monotonic()
        max_lifetime = self.max_lifetime_s
        while idle:
            conn = idle.pop()
            if (max_lifetime is not None and now - conn.created_at >= max_lifetime) or not (
                conn.usable
            ):  # `_stale`, inline: once per pooled transaction
                self._discard(conn)
                continue
            self._used.add(conn)
            self.total_acquired += 1
            return conn
        return self._take_parked() if self._parked else None

    def _take_parked(self) -> BackendConnection | None:
        """`try_acquire` from the parked connections, the longest parked first: each is
        detached from its client first."""
        now = _hot.monotonic()
        for conn in self._parked_ones():
            self._unparked(conn)()
            if self._stale(conn, now):
                self._used.discard(conn)
                self._discard(conn)
                continue
            self.total_acquired += 1
            return conn
        return None

    def _parked_ones(self) -> list[BackendConnection]:
        """The parked connections, the longest parked first (a scan: only when one is taken
        from its client, or let go of by the pool)."""
        if not self._parked:
            return []
        parked = [conn for conn in self._used if conn.parked_by is not None]
        parked.sort(key=_last_used)
        return parked

    def _unparked(self, conn: BackendConnection) -> Callable[[], None]:
        """``conn`` is parked no more (still taken from the pool): its callback, to call."""
        unpark = conn.parked_by
        assert unpark is not None
        conn.parked_by = None
        self._parked -= 1
        return unpark

    def park(
        self, conn: BackendConnection, unpark: Callable[[], None], now: float = -1.0
    ) -> bool:
        """`release_clean` for a connection its client keeps relayed until it takes it back
        (`take_back`) or another client needs it (``unpark()`` is called first: it must
        detach the connection from that client). False when it is not parked: others wait
        for one, or it broke (then `release_clean` it). (Its socket's loss while parked is
        its client's to report: `unpark`.) ``now``: the monotonic clock, when the caller
        has read it."""
        if self._waiters or self._closed or conn.broken:
            return False
        if conn.parked_by is not None:
            raise ValueError(f"connection pid {conn.pid} is parked already in pool {self.name}")
        self.total_clean_releases += 1
        conn.last_used_at = now if now >= 0.0 else _hot.monotonic()
        conn.parked_by = unpark  # (it stays in `_used`: taken from the pool, parked)
        self._parked += 1
        return True

    def take_back(self, conn: BackendConnection, unpark: Callable[[], None] | None = None) -> bool:
        """The client that parked ``conn`` (with ``unpark``, when given) takes it for its next
        transaction: True when it may (in use again, still relayed to it); False when another
        client took it meanwhile or it is no longer fit to use (it was then detached, and
        closed)."""
        parked_by = conn.parked_by
        if parked_by is None or (unpark is not None and parked_by is not unpark):
            return False
        conn.parked_by = None
        self._parked -= 1
        if conn.sender.is_closing() or (
            self.max_lifetime_s is not None
            and conn.last_used_at - conn.created_at >= self.max_lifetime_s
        ):  # (its lifetime as of its park: `maintain` closes it past that meanwhile)
            parked_by()
            self._used.discard(conn)
            self._discard(conn)
            self._grow()
            return False
        self.total_acquired += 1
        return True

    def unpark(self, conn: BackendConnection) -> None:
        """``conn``, parked, is let go of by its client (which detached it): idle in the pool
        (to the oldest waiter first), or closed when it is no longer fit to use."""
        if conn.parked_by is None:
            return
        self._unparked(conn)  # (its client has detached it already)
        self._used.discard(conn)
        if self._closed or self._stale(conn, _hot.monotonic()):
            self._discard(conn)
            self._grow()
        else:
            self._deliver(conn)

    def release_clean(self, conn: BackendConnection, relayed: bool = False) -> None:
        """Give back ``conn`` with nothing to reset: between transactions, and nothing its
        client did outlives the transaction (the relay judged that); no round trip.
        ``relayed``: its bytes went to a relay up to now, none to its stream reader (whose
        state `BackendConnection.usable` also reads)."""
        used = self._used
        if conn not in used or conn.parked_by is not None:
            raise ValueError(f"connection pid {conn.pid} is not in use in pool {self.name}")
        used.discard(conn)
        self.total_clean_releases += 1
        now = conn.last_used_at = _hot.monotonic()
        max_lifetime = self.max_lifetime_s
        if (
            self._closed
            or (max_lifetime is not None and now - conn.created_at >= max_lifetime)
            or (
                conn.closed or conn.broken or conn.sender.is_closing() if relayed
                else not conn.usable
            )
        ):
            self._discard(conn)
            self._grow()
        elif self._waiters:
            self._deliver(conn)
        else:
            self._idle.append(conn)

    async def release(self, conn: BackendConnection, full: bool = True) -> None:
        """Give ``conn`` back: reset (``full``: DISCARD ALL, else the reset that keeps
        prepared statements) and reused, or closed when it cannot be trusted."""
        if conn not in self._used or conn.parked_by is not None:
            if self._closed:
                await conn.close()
                return
            raise ValueError(f"connection pid {conn.pid} is not in use in pool {self.name}")
        reusable = (
            not self._closed and conn.resettable and not self._too_old(conn, _hot.monotonic())
        )
        if reusable:
            self.total_resets += 1
            try:
                await asyncio.wait_for(conn.reset(full), self.reset_timeout_s)
            except (BackendError, TimeoutError) as exc:
                logger.warning("dbsight proxy: pool %s: reset failed, closing: %s", self.name, exc)
                reusable = False
        await self._returned(conn, reusable)

    async def _returned(self, conn: BackendConnection, reusable: bool) -> None:
        """``conn``, taken from the pool for work of the pool's own (a reset, a trim), is
        done: to the next client, or closed (and replaced if someone waits)."""
        if conn not in self._used:  # the pool was closed meanwhile
            await conn.close()
            return
        self._used.discard(conn)
        if reusable:
            self._deliver(conn)
        else:
            self._discard(conn)
            self._grow()

    async def release_after_lookup(self, conn: BackendConnection) -> None:
        """Give back ``conn`` after the proxy's own read-only queries on it (a catalog
        lookup): as it is when it is between requests, else as `release` does (closed when
        it cannot be reset)."""
        if conn.resettable:
            self.release_clean(conn)
        else:
            await self.release(conn)

    @contextlib.asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[BackendConnection]:
        """``async with pool.connection() as conn:`` acquire, then release whatever happens."""
        conn = await self.acquire(timeout)
        try:
            yield conn
        finally:
            await self.release(conn)

    # ------------------------------------------------------------------ maintenance

    async def maintain(self) -> None:
        """One maintenance pass: close expired idle connections, drop the prepared
        statements of idle ones over ``max_prepared`` (`_trim`), top up to ``min_size``."""
        if self._closed:
            return
        now = _hot.monotonic()
        for conn in list(self._idle):  # oldest first
            if self._idle_too_long(conn, now) or self._stale(conn, now):
                self._idle.remove(conn)
                self._discard(conn)
        for conn in self._parked_ones():  # (its client tells when it is lost: `unpark`)
            if self._idle_too_long(conn, now) or self._too_old(conn, now):
                self._unparked(conn)()
                self._used.discard(conn)
                self._discard(conn)
        work = [self._trim(conn) for conn in self._over_prepared()]
        work += [self._start_connect() for _ in range(self.min_size - self.size)]
        if work:
            await asyncio.gather(*work, return_exceptions=True)

    def _over_prepared(self) -> list[BackendConnection]:
        """The idle and parked connections holding more than ``max_prepared`` prepared
        statements, taken from the pool for `_trim` (a parked one let go of by its client
        first, as when it expires): no client can be handed one meanwhile."""
        limit = self.max_prepared
        if limit is None:
            return []
        over = [conn for conn in self._parked_ones() if len(conn.prepared) > limit]
        for conn in over:
            self._unparked(conn)()  # (it stays in `_used`: taken from the pool)
        for conn in [conn for conn in self._idle if len(conn.prepared) > limit]:
            self._idle.remove(conn)
            self._used.add(conn)
            over.append(conn)
        return over

    async def _trim(self, conn: BackendConnection) -> None:
        """Deallocate the statements ``conn`` prepared longest ago, down to
        ``max_prepared``, then give it back as `release` does (closed if that failed)."""
        reusable = True
        try:
            dropped = await asyncio.wait_for(
                conn.deallocate_oldest(self.max_prepared or 0), self.reset_timeout_s
            )
            self.total_deallocated += dropped
        except (BackendError, TimeoutError) as exc:
            logger.warning(
                "dbsight proxy: pool %s: dropping prepared statements failed, closing: %s",
                self.name, exc,
            )  # fmt: skip
            reusable = False
        await self._returned(conn, reusable)

    async def _maintain_forever(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.maintenance_interval_s)
            try:
                await self.maintain()
            except Exception:  # the next pass tries again; never let the task die
                logger.exception("dbsight proxy: pool %s: maintenance failed", self.name)

    # ------------------------------------------------------------------ statistics

    def _usage(self) -> PoolUsage:
        return PoolUsage(idle=self.idle, used=self.in_use, max_size=self.max_size)

    def stats(self) -> dict[str, Any]:
        """What ``/stats/pools`` shows for this pool."""
        now = _hot.monotonic()
        return {
            "name": self.name,
            "database": self.spec.database,
            "user": self.spec.user,
            "size": self.size,
            "idle": self.idle,
            "parked": self._parked,
            "used": self.in_use,
            "connecting": self._connecting,
            "waiting": len(self._waiters),
            "min_size": self.min_size,
            "max_size": self.max_size,
            "max_wait_s": (now - self._waiters[0].since) if self._waiters else 0.0,
            "max_wait_seen_s": self.max_wait_seen_s,
            "total_wait_s": self.total_wait_s,
            "total_acquired": self.total_acquired,
            "total_connects": self.total_connects,
            "connect_errors": self.connect_errors,
            "total_timeouts": self.total_timeouts,
            "total_closed": self.total_closed,
            "total_resets": self.total_resets,
            "total_clean_releases": self.total_clean_releases,
            "total_deallocated": self.total_deallocated,
        }

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise PoolClosed(f"dbsight proxy: pool {self.name} is closed")

    def _idle_too_long(self, conn: BackendConnection, now: float) -> bool:
        return (
            self.idle_timeout_s is not None
            and conn.idle_for(now) >= self.idle_timeout_s
            and self.size > self.min_size
        )

    def _too_old(self, conn: BackendConnection, now: float) -> bool:
        return self.max_lifetime_s is not None and conn.age(now) >= self.max_lifetime_s

    def _stale(self, conn: BackendConnection, now: float) -> bool:
        """An idle connection not worth handing out any more: too old, or dead."""
        return self._too_old(conn, now) or not conn.usable

    def _deliver(self, conn: BackendConnection) -> None:
        """A free connection goes to the oldest waiter, else to the idle list."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                self._used.add(conn)
                waited = _hot.monotonic() - waiter.since
                self.total_wait_s += waited
                if waited > self.max_wait_seen_s:
                    self.max_wait_seen_s = waited
                self.total_acquired += 1
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _enqueue(self, waiter: Waiter) -> None:
        """``waiter`` joins the queue (a connection opened for it if the pool may grow); the
        queue's timer is brought forward to its deadline when that is the earliest."""
        self._waiters.append(waiter)
        self._grow()
        if self._timer is None or waiter.deadline < self._timer_at:
            self._arm(waiter.deadline)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        delay = max(0.0, deadline - _hot.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        """The queue's timer: every waiter past its deadline ends with `PoolTimeout`; the
        timer is set again for the earliest deadline left."""
        self._timer = None
        now = _hot.monotonic()
        late = [waiter for waiter in self._waiters if waiter.deadline <= now]
        for waiter in late:
            self._waiters.remove(waiter)
            if not waiter.done():
                self.total_timeouts += 1
                waiter.set_exception(PoolTimeout(
                    f"dbsight proxy: no server connection free in pool {self.name} after"
                    f" {waiter.limit:g} s: all {self.max_size} (max_size) are in use"
                ))  # fmt: skip
        if self._waiters and not self._closed:
            self._arm(min(waiter.deadline for waiter in self._waiters))

    def _abandon(self, waiter: Waiter) -> None:
        """The waiter gave up (cancelled, its client gone): out of the queue, and what it was
        handed goes to the next one (never used: no reset needed)."""
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        conn = waiter.handed()
        waiter.cancel()
        if conn is not None:
            self._used.discard(conn)
            self.total_acquired -= 1  # (it never took it)
            self._deliver(conn)

    def _fail_waiters(self, error: BackendError) -> None:
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)

    def _grow(self) -> None:
        """Open connections for the waiters no connection in progress will serve."""
        if self._closed:
            return
        while len(self._waiters) > self._connecting and (
            len(self._idle) + len(self._used) + self._connecting
            < self.max_size
        ):  # (`size`, inline: once per wait)
            self._start_connect()

    def _start_connect(self) -> asyncio.Task[None]:
        self._connecting += 1
        task = asyncio.create_task(self._connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _connect(self) -> None:
        try:
            conn = await self._open()
        except asyncio.CancelledError:
            self._connecting -= 1
            raise
        except BackendError as exc:
            self._connect_failed(exc)
            return
        except Exception as exc:  # a bug must not leave the waiters hanging: tell them too
            logger.exception("dbsight proxy: pool %s: unexpected connect failure", self.name)
            self._connect_failed(
                BackendUnavailable(
                    f"dbsight proxy: cannot connect to {self.spec.address}", detail=repr(exc)
                )
            )
            return
        self._connecting -= 1
        if self._closed:
            await conn.close()
            return
        self._deliver(conn)

    def _connect_failed(self, error: BackendError) -> None:
        self._connecting -= 1
        logger.warning("dbsight proxy: pool %s: cannot connect: %s", self.name, error)
        self._fail_waiters(error)

    async def _open(self) -> BackendConnection:
        """Connect, retrying transient failures with exponential backoff."""
        attempt = 0
        while True:
            attempt += 1
            try:
                conn = await BackendConnection.connect(self.spec)
            except BackendError as exc:
                self.connect_errors += 1
                transient = isinstance(exc, BackendUnavailable) or (
                    isinstance(exc, BackendRefused) and exc.transient
                )
                if not transient or self._closed:
                    raise
                if attempt >= self.retry.attempts:
                    if isinstance(exc, BackendUnavailable):
                        raise BackendUnavailable(
                            f"{exc.message} (gave up after {attempt} attempts)",
                            exc.sqlstate,
                            detail=exc.detail,
                        ) from exc
                    raise
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            self.total_connects += 1
            if conn.link is not None:  # read by a `Receiver` (a plain socket on uvloop)
                conn.link.receive()
            return conn

    def _discard(self, conn: BackendConnection) -> None:
        """Close ``conn`` in the background (it is no longer counted in the pool)."""
        self.total_closed += 1
        task = asyncio.create_task(conn.close())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
