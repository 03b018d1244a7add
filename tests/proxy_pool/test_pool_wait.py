"""``BackendPool.wait`` against a real PostgreSQL: the wait whose caller is called back (a
transaction-mode client's, with no task per wait) keeps the queue's order with ``acquire``'s
waiters, ends with the pool's errors (timeout, connect failure, close), counts as ``acquire``
does, and gives back what it was handed when its caller goes away."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from pool_helpers import until

from dbsight.proxy._backend import BackendConnection, BackendSpec
from dbsight.proxy._backend_errors import (
    BackendError,
    BackendUnavailable,
    PoolClosed,
    PoolTimeout,
)
from dbsight.proxy._pool import BackendPool, RetryPolicy

MakePool = Callable[..., BackendPool]


class Caller:
    """What the pool calls back with, and when (the loop's turn: never inside `wait`)."""

    def __init__(self) -> None:
        self.got: list[tuple[BackendConnection | None, BackendError | None]] = []
        self.came = asyncio.Event()

    def then(self, conn: BackendConnection | None, error: BackendError | None) -> None:
        self.got.append((conn, error))
        self.came.set()

    async def answer(self) -> tuple[BackendConnection | None, BackendError | None]:
        await asyncio.wait_for(self.came.wait(), 20)
        assert len(self.got) == 1
        return self.got[0]


async def test_an_idle_connection_is_called_back_soon_not_inside_the_wait(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=1)
    conn = await pool.acquire()
    pool.release_clean(conn)
    caller = Caller()
    pool.wait(caller.then, 5)
    assert caller.got == []  # (not from within `wait`: its caller's state is not ready)
    assert await caller.answer() == (conn, None)
    stats = pool.stats()
    assert (stats["used"], stats["total_acquired"], stats["waiting"]) == (1, 2, 0)


async def test_called_back_and_awaiting_waiters_share_one_queue_in_order(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=1)
    held = await pool.acquire()
    first = Caller()
    pool.wait(first.then, 30)
    second = asyncio.create_task(pool.acquire(timeout=30))
    await until(lambda: pool.stats()["waiting"] == 2)
    third = Caller()
    pool.wait(third.then, 30)
    pool.release_clean(held)
    assert await first.answer() == (held, None)  # the oldest waiter first
    assert not second.done() and third.got == []
    pool.release_clean(held)
    assert await asyncio.wait_for(second, 20) is held
    pool.release_clean(held)
    assert await third.answer() == (held, None)
    stats = pool.stats()
    assert stats["waiting"] == 0 and stats["total_acquired"] == 4
    assert stats["max_wait_seen_s"] > 0 and stats["total_wait_s"] >= stats["max_wait_seen_s"]


async def test_a_wait_past_its_timeout_is_53300(make_pool: MakePool) -> None:
    pool = make_pool(max_size=1, name="app@shop")
    held = await pool.acquire()
    caller = Caller()
    pool.wait(caller.then, 0.05)
    conn, error = await caller.answer()
    assert conn is None and isinstance(error, PoolTimeout) and error.sqlstate == "53300"
    assert "app@shop" in error.message and "all 1 (max_size)" in error.message
    stats = pool.stats()
    assert stats["waiting"] == 0 and stats["total_timeouts"] == 1
    pool.release_clean(held)
    assert pool.stats()["idle"] == 1  # the timed-out waiter took nothing


async def test_each_waiter_times_out_at_its_own_deadline_in_any_order(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=1)
    held = await pool.acquire()
    patient, hasty = Caller(), Caller()
    pool.wait(patient.then, 30)
    awaiting = asyncio.create_task(pool.acquire(timeout=0.3))
    pool.wait(hasty.then, 0.05)  # queued last, due first
    conn, error = await hasty.answer()
    assert conn is None and isinstance(error, PoolTimeout) and "after 0.05 s" in error.message
    try:
        await asyncio.wait_for(awaiting, 20)
    except PoolTimeout as exc:
        assert "after 0.3 s" in exc.message
    else:
        raise AssertionError("acquire(timeout=0.3) got a connection")
    assert patient.got == [] and pool.stats()["waiting"] == 1
    pool.release_clean(held)
    assert await patient.answer() == (held, None)  # still first in line, and served
    assert pool.stats()["total_timeouts"] == 2


async def test_a_caller_that_goes_away_gets_no_call_and_gives_back_what_it_was_handed(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=1)
    held = await pool.acquire()
    gone = Caller()
    pool.wait(gone.then, 30).abandon()  # gone before any connection was free
    assert pool.stats()["waiting"] == 0
    handed = Caller()
    slot = pool.wait(handed.then, 30)
    pool.release_clean(held)  # handed to it, the call back not made yet...
    slot.abandon()  # ... when it goes away
    await asyncio.sleep(0.05)
    assert gone.got == [] and handed.got == []
    stats = pool.stats()
    assert (stats["idle"], stats["used"], stats["waiting"]) == (1, 0, 0)
    assert await pool.acquire(timeout=1) is held


async def test_a_wait_ends_with_the_connect_error_or_the_pools_close(
    make_pool: MakePool, spec: BackendSpec, closed_port: int
) -> None:
    down = dataclasses.replace(spec, port=closed_port)
    pool = make_pool(down, max_size=1, retry=RetryPolicy(attempts=2, initial_delay_s=0.01))
    caller = Caller()
    pool.wait(caller.then, 30)
    conn, error = await caller.answer()
    assert conn is None and isinstance(error, BackendUnavailable)
    assert error.sqlstate == "08006" and f"127.0.0.1:{closed_port}" in error.message

    up = make_pool(max_size=1)
    held = await up.acquire()
    waiting = Caller()
    up.wait(waiting.then, 30)
    await up.close()
    conn, error = await waiting.answer()
    assert conn is None and isinstance(error, PoolClosed)
    late = Caller()
    up.wait(late.then, 30)  # a closed pool: the error, called back too
    assert isinstance((await late.answer())[1], PoolClosed)
    await up.release(held)
