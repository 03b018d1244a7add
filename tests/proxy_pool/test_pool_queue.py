"""``BackendPool`` against a real PostgreSQL: reuse, reset between users, limits and the queue,
idle timeout and lifetime, retries when the server is unreachable, statistics, close."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from pool_helpers import ServerView, until

from dbsight.proxy import protocol as p
from dbsight.proxy._backend import BackendConnection, BackendSpec
from dbsight.proxy._backend_errors import (
    BackendQueryError,
    BackendRefused,
    BackendUnavailable,
    PoolClosed,
    PoolTimeout,
)
from dbsight.proxy._pool import BackendPool, RetryPolicy

MakePool = Callable[..., BackendPool]


async def scalar(conn: BackendConnection, query: str) -> str | None:
    (result,) = await conn.execute(query)
    return result.rows[0][0]


async def held_with_a_waiter(
    pool: BackendPool,
) -> tuple[BackendConnection, asyncio.Task[BackendConnection]]:
    """The pool's one connection in use and a second caller queued for it."""
    conn = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire(timeout=30))
    await until(lambda: pool.stats()["waiting"] == 1)
    return conn, waiter


async def test_release_then_acquire_reuses_the_same_server_connection(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=2)
    conn = await pool.acquire()
    pid = conn.pid
    assert pool.stats()["used"] == 1 and pool.stats()["idle"] == 0
    await pool.release(conn)
    assert pool.stats()["used"] == 0 and pool.stats()["idle"] == 1
    async with pool.connection() as again:
        assert again is conn and again.pid == pid
        assert await scalar(again, "SELECT pg_backend_pid()") == str(pid)
    stats = pool.stats()
    assert stats["size"] == 1 and stats["total_acquired"] == 2 and stats["total_connects"] == 1
    with pytest.raises(ValueError):
        await pool.release(conn)  # not in use any more


async def test_reset_leaves_nothing_of_one_user_to_the_next(
    make_pool: MakePool, server: ServerView
) -> None:
    pool = make_pool(max_size=1)
    async with pool.connection() as conn:
        default_work_mem = await scalar(conn, "SHOW work_mem")
        await conn.execute("CREATE TABLE ledger (x int)")
    async with pool.connection() as conn:
        pid = conn.pid
        await conn.execute("SET work_mem = '1234kB'")
        await conn.execute("SET application_name = 'first client'")
        await conn.execute("CREATE TEMP TABLE scratch (x int)")
        await conn.execute("PREPARE sql_level AS SELECT 1")
        conn.prepared["sql_level"] = "SELECT 1"  # as the session layer records its own
        await conn.execute("SELECT pg_advisory_lock(4242)")
        await conn.execute("LISTEN pool_channel")
        await conn.execute("DECLARE held CURSOR WITH HOLD FOR SELECT 1")
        await conn.execute("BEGIN; INSERT INTO ledger VALUES (1)")
        assert conn.state.transaction_status is p.TransactionStatus.IN_TRANSACTION
    async with pool.connection() as conn:
        assert conn.pid == pid  # the same server process, now clean
        assert conn.state.transaction_status is p.TransactionStatus.IDLE
        assert conn.prepared == {}
        assert await scalar(conn, "SHOW work_mem") == default_work_mem
        assert await scalar(conn, "SHOW application_name") == "dbsight-proxy"
        assert conn.parameters["application_name"] == "dbsight-proxy"
        assert await scalar(conn, "SELECT to_regclass('pg_temp.scratch')") is None
        assert await scalar(conn, "SELECT count(*) FROM pg_prepared_statements") == "0"
        assert await scalar(conn, "SELECT count(*) FROM pg_cursors") == "0"
        assert await scalar(conn, "SELECT count(*) FROM pg_listening_channels()") == "0"
        assert await scalar(conn, "SELECT count(*) FROM ledger") == "0"  # rolled back
        locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s"
        assert await server.fetch(locks, pid) == [(0,)]
    # and another session can take the lock the first client held
    assert await server.fetch("SELECT pg_try_advisory_lock(4242)") == [(True,)]


async def test_a_failed_transaction_is_rolled_back_at_release(make_pool: MakePool) -> None:
    pool = make_pool(max_size=1)
    async with pool.connection() as conn:
        await conn.execute("BEGIN")
        with pytest.raises(BackendQueryError):
            await conn.execute("SELECT 1/0")
        assert conn.state.transaction_status is p.TransactionStatus.FAILED
        pid = conn.pid
    async with pool.connection() as conn:
        assert conn.pid == pid and await scalar(conn, "SELECT 1") == "1"


# ------------------------------------------------------------------ limits and the queue


async def test_waiters_are_served_first_come_first_served(make_pool: MakePool) -> None:
    pool = make_pool(max_size=1)
    first = await pool.acquire()
    second = asyncio.create_task(pool.acquire(timeout=30))
    await until(lambda: pool.stats()["waiting"] == 1)
    third = asyncio.create_task(pool.acquire(timeout=30))
    await until(lambda: pool.stats()["waiting"] == 2)
    assert pool.stats()["size"] == 1  # no connection beyond max_size
    assert pool.stats()["max_wait_s"] >= 0

    await pool.release(first)
    conn = await asyncio.wait_for(second, 20)
    assert conn is first  # handed over, reset, to the oldest waiter
    assert not third.done() and pool.stats()["waiting"] == 1
    await pool.release(conn)
    assert await asyncio.wait_for(third, 20) is first
    await pool.release(first)
    stats = pool.stats()
    assert stats["waiting"] == 0 and stats["total_acquired"] == 3
    assert stats["total_connects"] == 1 and stats["max_wait_seen_s"] > 0


async def test_wait_timeout_is_53300_naming_the_pool_and_limit(make_pool: MakePool) -> None:
    pool = make_pool(max_size=2, name="app@shop")
    held = [await pool.acquire(), await pool.acquire()]
    with pytest.raises(PoolTimeout) as info:
        await pool.acquire(timeout=0.05)
    assert info.value.sqlstate == "53300"
    assert "app@shop" in info.value.message and "all 2 (max_size)" in info.value.message
    stats = pool.stats()
    assert stats["waiting"] == 0 and stats["total_timeouts"] == 1 and stats["size"] == 2
    for conn in held:
        await pool.release(conn)
    async with pool.connection(timeout=0.05):  # the timed-out waiter left nothing behind
        assert pool.stats()["used"] == 1


async def test_a_cancelled_waiter_gives_back_what_it_was_handed(make_pool: MakePool) -> None:
    pool = make_pool(max_size=1)
    conn, waiter = await held_with_a_waiter(pool)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.stats()["waiting"] == 0
    await pool.release(conn)
    assert pool.stats()["idle"] == 1
    assert await pool.acquire(timeout=1) is conn


async def test_a_broken_connection_is_closed_at_release_and_replaced(
    make_pool: MakePool, server: ServerView
) -> None:
    pool = make_pool(max_size=1)
    conn, waiter = await held_with_a_waiter(pool)
    await server.terminate(conn.pid)  # e.g. an administrator, or a server restart
    await pool.release(conn)  # its reset fails: closed, and a new one opened for the waiter
    fresh = await asyncio.wait_for(waiter, 20)
    assert fresh is not conn and fresh.pid != conn.pid and conn.closed
    assert await scalar(fresh, "SELECT 1") == "1"
    await pool.release(fresh)
    assert pool.stats()["total_closed"] == 1 and pool.stats()["size"] == 1


# ------------------------------------------------------------------ idle timeout, lifetime


async def test_idle_timeout_closes_idle_connections_down_to_min_size(
    make_pool: MakePool, server: ServerView
) -> None:
    pool = make_pool(max_size=3, min_size=1, idle_timeout_s=0.05)
    await pool.start()
    assert pool.stats()["idle"] == 1  # min_size opened at start
    a, b = await pool.acquire(), await pool.acquire()
    await pool.release(a)
    await pool.release(b)
    assert pool.stats()["idle"] == 2
    await asyncio.sleep(0.1)  # both now idle longer than the timeout
    await pool.maintain()
    assert pool.stats()["size"] == pool.stats()["idle"] == 1  # min_size kept
    await until(lambda: a.closed or b.closed)
    closed, kept = (a, b) if a.closed else (b, a)
    assert not kept.closed
    await server.wait_gone(closed.pid)
    assert await server.alive(kept.pid)


async def test_maintenance_task_closes_idle_connections_on_its_own(
    make_pool: MakePool, server: ServerView
) -> None:
    pool = make_pool(idle_timeout_s=0.05, maintenance_interval_s=0.02)
    await pool.start()
    async with pool.connection() as conn:
        pid = conn.pid
    await until(lambda: pool.stats()["size"] == 0)
    await server.wait_gone(pid)
    async with pool.connection() as conn:
        assert conn.pid != pid


async def test_max_lifetime_retires_connections(make_pool: MakePool, server: ServerView) -> None:
    pool = make_pool(max_lifetime_s=None)
    async with pool.connection() as conn:
        old = conn.pid
    pool.max_lifetime_s = 0.01
    await asyncio.sleep(0.05)
    conn = await pool.acquire()  # the idle one is past its lifetime: closed, a new one opened
    assert conn.pid != old
    await server.wait_gone(old)
    await asyncio.sleep(0.05)
    await pool.release(conn)  # past its lifetime too: closed rather than reset
    assert pool.stats()["size"] == 0 and pool.stats()["total_closed"] == 2
    await server.wait_gone(conn.pid)


# ------------------------------------------------------------------ connect failures


async def test_unreachable_server_is_retried_then_waiters_get_08006(
    make_pool: MakePool, spec: BackendSpec, closed_port: int
) -> None:
    down = dataclasses.replace(spec, port=closed_port)
    pool = make_pool(down, max_size=1, retry=RetryPolicy(attempts=3, initial_delay_s=0.01))
    first = asyncio.create_task(pool.acquire(timeout=30))
    second = asyncio.create_task(pool.acquire(timeout=30))
    for task in (first, second):
        with pytest.raises(BackendUnavailable) as info:
            await asyncio.wait_for(task, 20)
        assert info.value.sqlstate == "08006"
        assert f"127.0.0.1:{closed_port}" in info.value.message
        assert "after 3 attempts" in info.value.message
    stats = pool.stats()
    assert stats["connect_errors"] == 3 and stats["size"] == 0 and stats["waiting"] == 0


async def test_retry_delays_grow_exponentially_up_to_the_bound() -> None:
    policy = RetryPolicy(attempts=6, initial_delay_s=0.1, multiplier=2, max_delay_s=0.5)
    assert [policy.delay(n) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


async def test_a_refused_login_is_not_retried(make_pool: MakePool, spec: BackendSpec) -> None:
    pool = make_pool(
        dataclasses.replace(spec, database="dbsight_no_such_db"),
        retry=RetryPolicy(attempts=5, initial_delay_s=0.01),
    )
    with pytest.raises(BackendRefused) as info:
        await pool.acquire(timeout=30)
    assert info.value.sqlstate == "3D000"
    assert pool.stats()["connect_errors"] == 1


# ------------------------------------------------------------------ close, stats


async def test_close_fails_waiters_and_closes_every_connection(
    make_pool: MakePool, server: ServerView
) -> None:
    pool = make_pool(max_size=1)
    conn, waiter = await held_with_a_waiter(pool)
    await pool.close()
    with pytest.raises(PoolClosed) as info:
        await waiter
    assert info.value.sqlstate == "57P01"
    assert conn.closed
    await server.wait_gone(conn.pid)
    await pool.release(conn)  # harmless after close
    with pytest.raises(PoolClosed):
        await pool.acquire()


async def test_stats_for_the_admin_endpoint(make_pool: MakePool, spec: BackendSpec) -> None:
    pool = make_pool(max_size=4)
    async with pool.connection():
        stats = pool.stats()
    assert stats["name"] == f"{spec.user}@{spec.database}"
    assert (stats["database"], stats["user"]) == (spec.database, spec.user)
    assert (stats["size"], stats["used"], stats["idle"], stats["waiting"]) == (1, 1, 0, 0)
    assert (stats["min_size"], stats["max_size"]) == (0, 4)
    assert stats["total_acquired"] == 1 and stats["connect_errors"] == 0
    assert set(stats) >= {"max_wait_s", "total_connects", "total_timeouts", "total_closed"}


def test_pool_settings_are_validated(spec: BackendSpec) -> None:
    bad_settings: list[dict[str, Any]] = [
        {"max_size": 0},
        {"min_size": 5, "max_size": 2},
        {"idle_timeout_s": 0},
    ]
    for bad in bad_settings:
        with pytest.raises(ValueError):
            BackendPool(spec, **bad)
