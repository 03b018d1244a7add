"""``BackendPool.park`` against a real PostgreSQL: a connection its client keeps between
transactions counts as idle, goes back to that client at no cost, and is taken from it
(the client told first) when another caller needs one, a waiter is served, the pool
maintains or closes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pool_helpers import ServerView, until

from dbsight.proxy._backend import BackendConnection
from dbsight.proxy._pool import BackendPool

MakePool = Callable[..., BackendPool]


class Owner:
    """A client that parks its connection: counts the times the pool took it back."""

    def __init__(self) -> None:
        self.unparked = 0

    def unpark(self) -> None:
        self.unparked += 1


async def parked_one(pool: BackendPool) -> tuple[BackendConnection, Owner]:
    conn = await pool.acquire()
    owner = Owner()
    assert pool.park(conn, owner.unpark)
    return conn, owner


async def test_a_parked_connection_is_idle_and_its_client_takes_it_back(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=2)
    conn, owner = await parked_one(pool)
    stats = pool.stats()
    assert (stats["idle"], stats["parked"], stats["used"], stats["size"]) == (1, 1, 0, 1)
    assert stats["total_clean_releases"] == 1
    assert pool.take_back(conn)
    assert owner.unparked == 0  # still its client's: nothing to detach
    stats = pool.stats()
    assert (stats["idle"], stats["parked"], stats["used"]) == (0, 0, 1)
    assert stats["total_acquired"] == 2
    (result,) = await conn.execute("SELECT 1")
    assert list(result.rows) == [("1",)]
    await pool.release(conn)


async def test_another_caller_takes_a_parked_connection_once_none_is_idle(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=2)
    first, second = await pool.acquire(), await pool.acquire()
    first_owner, second_owner = Owner(), Owner()
    assert pool.park(first, first_owner.unpark)
    assert pool.park(second, second_owner.unpark)
    taken = pool.try_acquire()
    assert taken is first and first_owner.unparked == 1  # the longest parked, its client told
    assert not pool.take_back(first)  # gone to another caller meanwhile
    assert pool.take_back(second) and second_owner.unparked == 0
    pool.release_clean(second)
    assert pool.try_acquire() is second  # an idle one before any parked one
    pool.release_clean(first)
    pool.release_clean(second)
    assert pool.stats()["parked"] == 0 and pool.stats()["idle"] == 2


async def test_no_connection_is_parked_while_others_wait(make_pool: MakePool) -> None:
    pool = make_pool(max_size=1)
    conn = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire(timeout=30))
    await until(lambda: pool.stats()["waiting"] == 1)
    owner = Owner()
    assert not pool.park(conn, owner.unpark)  # (the caller gives it back as usual)
    pool.release_clean(conn)
    assert await waiter is conn
    pool.release_clean(conn)


async def test_a_waiter_arriving_later_gets_the_parked_connection(make_pool: MakePool) -> None:
    pool = make_pool(max_size=1)
    conn, owner = await parked_one(pool)
    assert await asyncio.wait_for(pool.acquire(timeout=30), 10) is conn
    assert owner.unparked == 1
    pool.release_clean(conn)


async def test_a_parked_connection_past_its_lifetime_is_not_taken_back(
    make_pool: MakePool, server: ServerView
) -> None:
    pool = make_pool(max_lifetime_s=None)
    conn, owner = await parked_one(pool)
    pid = conn.pid
    pool.max_lifetime_s = 0.01
    await asyncio.sleep(0.02)
    conn.last_used_at += 0.02  # (as if parked just now)
    assert not pool.take_back(conn)
    assert owner.unparked == 1 and pool.stats()["size"] == 0
    await server_gone(server, pid)


async def server_gone(server: ServerView, pid: int) -> None:
    for _ in range(100):
        if not await server.alive(pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"server process {pid} still there")


async def test_maintenance_and_close_let_parked_connections_go(
    make_pool: MakePool, server: ServerView
) -> None:
    pool = make_pool(max_size=2, idle_timeout_s=0.05)
    conn, owner = await parked_one(pool)
    await asyncio.sleep(0.1)
    await pool.maintain()  # idle past its timeout, parked or not
    assert owner.unparked == 1 and pool.stats()["size"] == 0
    await server_gone(server, conn.pid)

    other = make_pool(max_size=1)
    conn, owner = await parked_one(other)
    await other.close()
    assert owner.unparked == 1 and conn.closed


async def test_a_parked_connection_let_go_with_an_error_waiting_is_closed(
    make_pool: MakePool, server: ServerView
) -> None:
    pool = make_pool(max_size=1)
    conn, owner = await parked_one(pool)
    pid = conn.pid
    await server.fetch("SELECT pg_terminate_backend(%s)", pid)  # FATAL, then EOF
    assert conn.reader is not None
    await until(lambda: conn.reader.at_eof() or bool(conn.reader._buffer))  # type: ignore[attr-defined]
    pool.unpark(conn)  # (its client has let go of it: `Lease.let_go_parked`)
    assert pool.stats()["size"] == 0 and pool.stats()["total_closed"] == 1
    fresh = await pool.acquire()
    assert fresh is not conn and fresh.pid != pid
    pool.release_clean(fresh)
    assert owner.unparked == 0  # (let go of by its client, not taken from it)


async def test_a_connection_parked_again_by_another_client_is_that_clients(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=1)
    first, second = Owner(), Owner()
    first_unpark, second_unpark = first.unpark, second.unpark  # (each bound once, as a lease)
    conn = await pool.acquire()
    assert pool.park(conn, first_unpark)
    assert pool.try_acquire() is conn and first.unparked == 1  # the second client takes it
    assert pool.park(conn, second_unpark)
    assert not pool.take_back(conn, first_unpark)  # not the first's any more
    assert pool.stats()["parked"] == 1
    assert pool.take_back(conn, second_unpark) and second.unparked == 0
    stats = pool.stats()
    assert (stats["idle"], stats["parked"], stats["used"], stats["size"]) == (0, 0, 1, 1)
    try:
        pool.park(conn, second_unpark)
        pool.park(conn, second_unpark)
    except ValueError as exc:
        assert "parked already" in str(exc)
    else:
        raise AssertionError("parked twice")
    assert pool.take_back(conn, second_unpark)
    pool.release_clean(conn)
