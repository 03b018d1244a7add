"""Health checks: running sync and async checks under timeouts, the process-wide registry,
and the ``SELECT 1`` check of every kind of instrumented database target (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import psycopg
import psycopg_pool
import pytest
import redis
import redis.asyncio
import sqlalchemy
from sqlalchemy.ext.asyncio import create_async_engine

import dbsight
from dbsight.instrument import live_handles
from dbsight.ops import HealthCheck, HealthRegistry, gather_checks, health_checks, run_checks


class Events:
    """Every statement dbsight records."""

    name = "tests.events"

    def __init__(self) -> None:
        self.sql: list[str] = []

    def after_query(self, ctx: Any, event: Any) -> None:
        self.sql.append(event.sql)

    def on_error(self, ctx: Any, event: Any) -> None:
        self.sql.append(event.sql)


@pytest.fixture
def events(fresh_runtime: Any) -> Iterator[Events]:
    dbsight.configure(dbsight.Settings(explain_slow_queries=False))
    collected = Events()
    dbsight.add_observer(collected)
    before = set(map(id, live_handles()))
    yield collected
    for handle in live_handles():  # what a failed test left instrumented
        if id(handle) not in before:
            handle.uninstrument()


@pytest.fixture(autouse=True)
def _no_leftover_user_checks() -> Iterator[None]:
    yield
    health_checks.clear()


class Gate:
    """A sync check that blocks until released (released at teardown in any case)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        with self._lock:
            self.calls += 1
        self.release.wait(30)
        return True


@pytest.fixture
def gate() -> Iterator[Gate]:
    blocking = Gate()
    yield blocking
    blocking.release.set()


# -- running checks --------------------------------------------------------------------------
async def test_sync_and_async_checks_pass_and_fail() -> None:
    async def async_ok() -> None:
        await asyncio.sleep(0)

    async def async_broken() -> None:
        raise RuntimeError("cache unreachable\nsecond line")

    def sync_broken() -> None:
        raise ConnectionRefusedError("refused")

    report = await run_checks(
        [
            HealthCheck("sync-none", lambda: None),
            HealthCheck("sync-true", lambda: True),
            HealthCheck("sync-false", lambda: False),
            HealthCheck("sync-raises", sync_broken),
            HealthCheck("async-ok", async_ok),
            HealthCheck("async-raises", async_broken, critical=False),
        ]
    )
    checks = report.to_dict()["checks"]
    assert {name: c["status"] for name, c in checks.items()} == {
        "sync-none": "ok",
        "sync-true": "ok",
        "sync-false": "fail",
        "sync-raises": "fail",
        "async-ok": "ok",
        "async-raises": "fail",
    }
    assert checks["sync-raises"]["error"] == "ConnectionRefusedError: refused"
    assert checks["async-raises"]["error"] == "RuntimeError: cache unreachable"
    assert checks["sync-false"]["error"] == "the check returned False"
    assert checks["async-raises"]["critical"] is False
    assert all(c["latency_ms"] >= 0 for c in checks.values())
    assert report.to_dict()["status"] == "fail" and not report.ok


async def test_only_critical_failures_fail_the_report() -> None:
    report = await run_checks(
        [HealthCheck("fine", lambda: True), HealthCheck("optional", lambda: False, critical=False)]
    )
    assert report.ok and report.status == "ok"
    assert report.to_dict()["checks"]["optional"]["status"] == "fail"


async def test_sync_check_runs_off_the_event_loop(gate: Gate) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    def where() -> None:
        seen.append(threading.get_ident())

    await run_checks([HealthCheck("where", where)])
    assert seen and seen[0] != loop_thread


async def test_hanging_sync_check_times_out_without_holding_up_the_others(gate: Gate) -> None:
    ticks = 0

    async def ticking() -> None:  # the loop keeps running while the sync check blocks
        nonlocal ticks
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1

    report, _ = await asyncio.gather(
        run_checks(
            [
                HealthCheck("hangs", gate, timeout_s=0.5),
                HealthCheck("quick", lambda: True, timeout_s=0.5),
            ]
        ),
        ticking(),
    )
    checks = report.to_dict()["checks"]
    assert checks["hangs"]["status"] == "timeout"
    assert checks["hangs"]["error"] == "no answer within 0.5 s"
    assert checks["quick"]["status"] == "ok"
    assert ticks == 5


async def test_a_hung_sync_check_is_joined_not_started_again(gate: Gate) -> None:
    check = HealthCheck("hangs", gate, timeout_s=0.2)
    first = await check.run()
    second = await check.run()
    assert (first.status, second.status) == ("timeout", "timeout")
    assert gate.calls == 1  # one thread, however often it is probed
    gate.release.set()
    for _ in range(100):  # the run in flight finishes; the next run is a new one
        result = await check.run()
        if result.status == "ok":
            break
    assert result.status == "ok"


async def test_hanging_async_check_is_cancelled_at_its_timeout() -> None:
    cancelled = asyncio.Event()

    async def hangs() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    result = await HealthCheck("hangs", hangs, timeout_s=0.1).run()
    assert result.status == "timeout"
    assert cancelled.is_set()


async def test_a_checks_own_timeout_error_is_a_failure() -> None:
    def socket_timeout() -> None:
        raise TimeoutError("timed out reading")

    result = await HealthCheck("own-timeout", socket_timeout, timeout_s=5).run()
    assert (result.status, result.error) == ("fail", "TimeoutError: timed out reading")


def test_health_check_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="non-empty name"):
        HealthCheck("", lambda: True)
    with pytest.raises(TypeError, match="callable"):
        HealthCheck("x", "SELECT 1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout_s"):
        HealthCheck("x", lambda: True, timeout_s=0)


# -- the registry ------------------------------------------------------------------------------
def test_process_wide_registry_add_replace_remove() -> None:
    first = HealthCheck("search", lambda: True)
    dbsight.add_health_check(first)
    assert "search" in health_checks and health_checks.checks() == [first]
    second = HealthCheck("search", lambda: False, critical=False)
    dbsight.add_health_check(second)  # same name: replaces
    assert health_checks.checks() == [second]
    assert dbsight.remove_health_check("search") is True
    assert dbsight.remove_health_check("search") is False
    assert len(health_checks) == 0
    with pytest.raises(TypeError, match="HealthCheck"):
        dbsight.add_health_check(lambda: True)  # type: ignore[arg-type]


def test_gather_checks_keeps_every_check_under_a_unique_name() -> None:
    a, b = HealthCheck("db", lambda: True), HealthCheck("db", lambda: True, critical=False)
    registry = HealthRegistry([a])
    names = [c.name for c in gather_checks(registry.checks(), [b, a], handles=False)]
    assert names == ["db", "db#2"]
    again = gather_checks(registry.checks(), [b], handles=False)
    assert again[1] is gather_checks(registry.checks(), [b], handles=False)[1]  # stable copy
    critical = gather_checks(registry.checks(), [b], handles=False, critical_only=True)
    assert [c.name for c in critical] == ["db"]


# -- database targets ---------------------------------------------------------------------------
def _assert_unrecorded(events: Events) -> None:
    assert not [sql for sql in events.sql if "SELECT 1" in sql], events.sql


async def _check_of(target: Any) -> tuple[Any, HealthCheck]:
    handle = dbsight.instrument(target)
    check = handle.health_check()
    assert check is not None and check is handle.health_check()
    return handle, check


async def test_sqlalchemy_engine_check(events: Events, pg_dsn: str) -> None:
    engine = sqlalchemy.create_engine(pg_dsn.replace("postgresql://", "postgresql+psycopg://"))
    try:
        handle, check = await _check_of(engine)
        assert check.name.startswith("postgresql:sqlalchemy")
        assert (await check.run()).status == "ok"
        _assert_unrecorded(events)
        with engine.connect() as conn:  # the application's statements still are recorded
            conn.exec_driver_sql("SELECT 2")
        assert "SELECT 2" in events.sql
        handle.uninstrument()
        assert handle.health_check() is None
    finally:
        engine.dispose()


async def test_sqlalchemy_async_engine_check(events: Events, pg_dsn: str) -> None:
    engine = create_async_engine(pg_dsn.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        handle, check = await _check_of(engine)
        assert check.is_async
        assert (await check.run()).status == "ok"
        _assert_unrecorded(events)
        handle.uninstrument()
    finally:
        await engine.dispose()


async def test_asyncpg_pool_check(events: Events, pg_dsn: str) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        handle, check = await _check_of(pool)
        assert check.name == "postgresql:asyncpg"
        assert (await check.run()).status == "ok"
        _assert_unrecorded(events)
        handle.uninstrument()
    finally:
        await pool.close()
    assert (await check.run()).status == "fail"  # a closed pool


async def test_asyncpg_pool_busy_to_its_last_connection_times_out_then_recovers(
    events: Events, pg_dsn: str
) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1)
    try:
        handle, check = await _check_of(pool)
        fast = HealthCheck("fast", check.check, timeout_s=0.3)
        async with pool.acquire() as con:  # the application holds the only connection
            result = await fast.run()
            assert result.status == "timeout"
            assert await con.fetchval("SELECT 41 + 1") == 42  # and keeps using it
        assert (await check.run()).status == "ok"  # the check gave nothing away
        handle.uninstrument()
    finally:
        await pool.close()


async def test_asyncpg_connection_check_never_uses_the_applications_connection(
    events: Events, pg_dsn: str
) -> None:
    con = await asyncpg.connect(pg_dsn)
    try:
        handle, check = await _check_of(con)
        busy = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(0.3)::text || 'done'"))
        await asyncio.sleep(0.05)  # the application's query is in progress
        assert (await check.run()).status == "ok"
        assert await busy == "done"  # untouched by the check
        _assert_unrecorded(events)
        await con.close()
        result = await check.run()
        assert (result.status, result.error) == (
            "fail",
            "ConnectionError: the instrumented connection is closed",
        )
        handle.uninstrument()
    finally:
        await con.close()


async def test_psycopg_connection_checks_leave_the_transaction_alone(
    events: Events, pg_dsn: str
) -> None:
    conn = psycopg.connect(pg_dsn)
    aconn = await psycopg.AsyncConnection.connect(pg_dsn)
    try:
        handle, check = await _check_of(conn)
        ahandle, acheck = await _check_of(aconn)
        assert not check.is_async and acheck.is_async
        assert (await check.run()).status == "ok"
        assert (await acheck.run()).status == "ok"
        # neither check opened a transaction on the application's connection
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert aconn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        _assert_unrecorded(events)
        conn.close()
        assert (await check.run()).status == "fail"
        handle.uninstrument()
        ahandle.uninstrument()
    finally:
        conn.close()
        await aconn.close()


async def test_psycopg_pool_checks(events: Events, pg_dsn: str) -> None:
    pool = psycopg_pool.ConnectionPool(pg_dsn, min_size=1, max_size=2, open=True)
    apool = psycopg_pool.AsyncConnectionPool(pg_dsn, min_size=1, max_size=2, open=False)
    await apool.open()
    try:
        handle, check = await _check_of(pool)
        ahandle, acheck = await _check_of(apool)
        assert (await check.run()).status == "ok"
        assert (await acheck.run()).status == "ok"
        _assert_unrecorded(events)
        with pool.connection() as conn:
            conn.execute("SELECT 3")
        assert "SELECT 3" in events.sql
        handle.uninstrument()
        ahandle.uninstrument()
    finally:
        pool.close()
        await apool.close()


async def test_live_handles_contribute_their_checks(events: Events, pg_dsn: str) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        handle = dbsight.instrument(pool)
        names = [c.name for c in gather_checks([])]
        assert "postgresql:asyncpg" in names
        handle.uninstrument()
        assert "postgresql:asyncpg" not in [c.name for c in gather_checks([])]
    finally:
        await pool.close()


# -- a server that refuses connections ---------------------------------------------------------
@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port bound but never listening: connections to it are refused (and no other
    process can take the port while the test runs)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def _refused_targets(port: int) -> list[tuple[str, Any, Callable[[], Awaitable[None]]]]:
    """Clients of every kind with a health check, as the application creates them (default
    retries and all), pointed at ``port``; each with how to close it."""
    pg = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    asyncpg_pool = await asyncpg.create_pool(pg, min_size=0, max_size=2)
    pool = psycopg_pool.ConnectionPool(pg, min_size=1, max_size=2, open=True)
    apool = psycopg_pool.AsyncConnectionPool(pg, min_size=1, max_size=2, open=False)
    await apool.open()
    engine = sqlalchemy.create_engine(pg.replace("postgresql://", "postgresql+psycopg://"))
    aengine = create_async_engine(pg.replace("postgresql://", "postgresql+asyncpg://"))
    mysql = sqlalchemy.create_engine(f"mysql+pymysql://root@127.0.0.1:{port}/mysql")
    cache = redis.Redis(host="127.0.0.1", port=port)
    acache = redis.asyncio.Redis(host="127.0.0.1", port=port)

    async def close_async(closer: Callable[[], Any]) -> None:
        await closer()

    async def close_sync(closer: Callable[[], Any]) -> None:
        closer()

    return [
        ("asyncpg pool", asyncpg_pool, lambda: close_async(asyncpg_pool.close)),
        ("psycopg_pool", pool, lambda: close_sync(pool.close)),
        ("psycopg_pool async", apool, lambda: close_async(apool.close)),
        ("sqlalchemy psycopg", engine, lambda: close_sync(engine.dispose)),
        ("sqlalchemy asyncpg", aengine, lambda: close_async(aengine.dispose)),
        ("sqlalchemy pymysql", mysql, lambda: close_sync(mysql.dispose)),
        ("redis", cache, lambda: close_sync(cache.close)),
        ("redis.asyncio", acache, lambda: close_async(acache.aclose)),
    ]


async def test_a_refused_connection_fails_at_once_not_as_a_timeout(
    events: Events, refused_port: int
) -> None:
    targets = await _refused_targets(refused_port)
    try:
        for kind, target, _ in targets:
            handle, check = await _check_of(target)
            # a check that waited for retries or reconnection attempts would report
            # "timeout" after its timeout; a refused connection is a failure saying so
            result = await check.run()
            assert result.status == "fail", (kind, result)
            assert "refused" in (result.error or "").lower() or "connect call failed" in (
                result.error or ""
            ).lower(), (kind, result.error)
            handle.uninstrument()
    finally:
        for _, _, close in targets:
            await close()


async def test_psycopg_pool_busy_to_its_last_connection_still_times_out_then_recovers(
    events: Events, pg_dsn: str
) -> None:
    pool = psycopg_pool.ConnectionPool(pg_dsn, min_size=1, max_size=1, open=True)
    pool.wait()
    try:
        handle, check = await _check_of(pool)
        fast = HealthCheck("fast", check.check, timeout_s=0.5)
        with pool.connection() as conn:  # the application holds the only connection
            assert (await fast.run()).status == "timeout"
            assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
        assert (await check.run()).status == "ok"
        _assert_unrecorded(events)
        handle.uninstrument()
    finally:
        pool.close()


async def test_readiness_reports_a_refused_redis_as_refused(
    events: Events, refused_port: int
) -> None:
    import httpx

    from dbsight.web import Endpoints

    cache = redis.asyncio.Redis(host="127.0.0.1", port=refused_port)
    handle = dbsight.instrument(cache)
    try:
        transport = httpx.ASGITransport(app=Endpoints())
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            response = await client.get("/health/ready")
        assert response.status_code == 503
        [check] = response.json()["checks"].values()
        assert check["status"] == "fail"
        assert "Connect call failed" in check["error"] or "refused" in check["error"]
    finally:
        handle.uninstrument()
        await cache.aclose()
