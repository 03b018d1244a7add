"""``BackendMonitor`` and ``HealthBoard`` against real servers: a streaming replica whose replay
is paused and resumed, a server stopped and started again, a port nobody listens on, a server
that never answers."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest

from dbsight.proxy._backend import BackendSpec
from dbsight.proxy._config import Upstream
from dbsight.proxy._health import BackendMonitor, BackendTarget, HealthBoard, parse_lsn
from dbsight.testing import PgCluster, unique_name


def target(name: str, role: Any, dsn: str, **spec_options: Any) -> BackendTarget:
    url = Upstream.from_url(dsn)
    spec = BackendSpec(
        host=url.host,
        port=url.port,
        user=url.user or "postgres",
        database=url.database or "postgres",
        **spec_options,
    )
    return BackendTarget(name, role, spec)


def run(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


async def until(
    condition: Callable[[], bool],
    step: Callable[[], Awaitable[None]] | None = None,
    timeout: float = 10.0,
) -> None:
    """Wait (running ``step()``, a check, each time round) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        if step is not None:
            await step()
        if condition():
            return
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


class Changes:
    """``on_change`` that remembers (name, up, in_rotation) of each call."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool, bool]] = []

    def __call__(self, monitor: BackendMonitor) -> None:
        self.seen.append((monitor.name, monitor.up, monitor.in_rotation))


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def board_factory(pg_replicated: PgCluster) -> AsyncIterator[Callable[..., HealthBoard]]:
    """``board_factory(**options)`` -> a HealthBoard of ``pg_replicated``, closed afterwards."""
    boards: list[HealthBoard] = []

    def make(**options: Any) -> HealthBoard:
        board = HealthBoard(
            target("primary", "primary", pg_replicated.dsn()),
            [target("replica1", "replica", pg_replicated.replica_dsn(0))],
            **options,
        )
        boards.append(board)
        return board

    yield make
    for board in boards:
        await board.close()


# ------------------------------------------------------------------ replication


async def test_idle_primary_and_caught_up_replica(
    pg_replicated: PgCluster, board_factory: Callable[..., HealthBoard]
) -> None:
    changes = Changes()
    board = board_factory(on_change=changes, max_lag_bytes=0)
    await asyncio.to_thread(pg_replicated.wait_for_replay)
    replica = board.replicas[0]
    # past any background WAL (checkpoints, standby snapshots) written meanwhile
    await until(lambda: replica.lag_bytes == 0 and replica.lag_s == 0, board.check_all)

    primary = board.primary
    assert primary.up and primary.in_rotation and primary.last_error is None
    assert primary.current_lsn is not None and primary.current_lsn > 0
    assert replica.up and replica.in_rotation
    assert replica.lag_s == 0.0 and replica.lag_bytes == 0
    assert replica.replay_lsn is not None and replica.replay_lsn >= primary.current_lsn
    assert replica.replay_paused is False
    assert board.in_rotation() == [replica]
    assert changes.seen[0] == ("primary", True, True)
    assert changes.seen[-1] == ("replica1", True, True)
    stats = board.stats()
    assert [item["name"] for item in stats] == ["primary", "replica1"]
    assert stats[1] | {"checked_at": None} == {
        "name": "replica1",
        "role": "replica",
        "up": True,
        "in_rotation": True,
        "lag_s": 0.0,
        "lag_bytes": 0,
        "replay_paused": False,
        "last_error": None,
        "checked_at": None,
    }
    assert isinstance(stats[1]["checked_at"], float)


async def test_paused_replay_takes_the_replica_out_of_rotation_until_it_caught_up(
    pg_replicated: PgCluster, board_factory: Callable[..., HealthBoard]
) -> None:
    primary_dsn, replica_dsn = pg_replicated.dsn(), pg_replicated.replica_dsn(0)
    changes = Changes()
    by_bytes = board_factory(on_change=changes, max_lag_bytes=1)
    by_time = board_factory(max_lag_s=0.2)
    replica, timed = by_bytes.replicas[0], by_time.replicas[0]

    async def check_both() -> None:
        await by_bytes.check_all()
        await by_time.check_all()

    run(primary_dsn, "SELECT txid_current()")  # a transaction the replica replays
    await asyncio.to_thread(pg_replicated.wait_for_replay)
    await until(lambda: replica.in_rotation and timed.in_rotation, check_both)
    mark = len(changes.seen)
    run(replica_dsn, "SELECT pg_wal_replay_pause()")
    try:
        run(primary_dsn, "SELECT txid_current()")
        await until(lambda: not replica.in_rotation, by_bytes.check_all)
        assert replica.up and replica.replay_paused is True
        assert replica.lag_bytes is not None and replica.lag_bytes > 0
        assert replica.lag_s is not None and replica.lag_s > 0
        assert by_bytes.in_rotation() == []
        first_bytes, first_s = replica.lag_bytes, replica.lag_s

        run(primary_dsn, "SELECT txid_current()")
        await until(lambda: (replica.lag_bytes or 0) > first_bytes, by_bytes.check_all)
        assert replica.lag_s is not None and replica.lag_s > first_s
        await until(lambda: not timed.in_rotation, by_time.check_all)  # 0.2 s behind
        assert timed.up and timed.lag_s is not None and timed.lag_s > 0.2
    finally:
        run(replica_dsn, "SELECT pg_wal_replay_resume()")

    await until(lambda: replica.in_rotation and timed.in_rotation, check_both)
    assert replica.lag_bytes == 0 and replica.replay_paused is False
    assert changes.seen[mark:] == [
        ("replica1", True, False),
        ("replica1", True, True),
    ]


async def test_synced_at_says_since_when_a_replica_has_everything(
    pg_replicated: PgCluster, board_factory: Callable[..., HealthBoard]
) -> None:
    """A replica is synced after a moment once it has replayed a position the primary
    reported after that moment; paused, it stays behind a write (however small its lag)."""
    primary_dsn, replica_dsn = pg_replicated.dsn(), pg_replicated.replica_dsn(0)
    board = board_factory(max_lag_s=3600)
    replica = board.replicas[0]
    run(primary_dsn, "SELECT txid_current()")
    wrote = time.monotonic()
    await until(lambda: (replica.synced_at or 0) > wrote, board.check_all)

    run(replica_dsn, "SELECT pg_wal_replay_pause()")
    try:
        run(primary_dsn, "SELECT txid_current()")
        wrote = time.monotonic()
        for _ in range(5):
            await board.check_all()
            assert replica.in_rotation  # within max_lag_s ...
            assert (replica.synced_at or 0) < wrote  # ... but without the write
    finally:
        run(replica_dsn, "SELECT pg_wal_replay_resume()")
    await until(lambda: (replica.synced_at or 0) > wrote, board.check_all)


async def test_roles_are_checked(pg_replicated: PgCluster) -> None:
    as_primary = BackendMonitor(target("r", "primary", pg_replicated.replica_dsn(0)))
    as_replica = BackendMonitor(target("p", "replica", pg_replicated.dsn()))
    try:
        await as_primary.check()
        await as_replica.check()
        assert not as_primary.up and "in recovery" in (as_primary.last_error or "")
        assert as_primary.current_lsn is None
        assert not as_replica.up and "not in recovery" in (as_replica.last_error or "")
    finally:
        await as_primary.close()
        await as_replica.close()


async def test_one_connection_is_kept_and_replaced_when_it_broke(pg_replicated: PgCluster) -> None:
    app = unique_name("dbsight_health_")
    dsn = pg_replicated.dsn()
    changes = Changes()
    monitor = BackendMonitor(target("primary", "primary", dsn, application_name=app))
    monitor.on_change = changes
    sessions = f"SELECT pid FROM pg_stat_activity WHERE application_name = '{app}'"
    try:
        for _ in range(3):
            await monitor.check()
        (first,) = run(dsn, sessions)
        run(dsn, f"SELECT pg_terminate_backend({first[0]})")
        await until(lambda: first not in run(dsn, sessions))
        await monitor.check()  # the kept connection is dead: a new one answers
        assert monitor.up and monitor.last_error is None
        (second,) = run(dsn, sessions)
        assert second != first
        assert changes.seen == [("primary", True, True)]
    finally:
        await monitor.close()
    await until(lambda: not run(dsn, sessions))


async def test_a_stopped_server_is_down_then_up_again(
    pg_cluster_factory: Callable[..., PgCluster], caplog: pytest.LogCaptureFixture
) -> None:
    cluster = pg_cluster_factory(replicas=0, fresh=True)
    changes = Changes()
    monitor = BackendMonitor(
        target("primary", "primary", cluster.dsn()), interval_s=0.05, timeout_s=1.0
    )
    monitor.on_change = changes
    caplog.set_level(logging.INFO, logger="dbsight.proxy.health")
    await monitor.start()  # the first check is done on return
    assert monitor.up and changes.seen == [("primary", True, True)]
    try:
        await asyncio.to_thread(cluster.primary.pause)
        await until(lambda: not monitor.up)  # the periodic checks see it
        assert monitor.last_error and not monitor.in_rotation and monitor.current_lsn is None
        down_at = monitor.checked_at
        await until(lambda: monitor.checked_at != down_at)  # still down
        assert not monitor.up
    finally:
        await asyncio.to_thread(cluster.primary.resume)
    await until(lambda: monitor.up)
    await monitor.close()
    assert changes.seen == [
        ("primary", True, True),
        ("primary", False, False),
        ("primary", True, True),
    ]
    downs = [r for r in caplog.records if "is down" in r.getMessage()]
    assert len(downs) == 1 and downs[0].levelno == logging.WARNING


# ------------------------------------------------------------------ unreachable, hanging


async def test_a_closed_port_is_down_without_raising(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    changes = Changes()
    monitor = BackendMonitor(
        target("replica1", "replica", f"postgresql://postgres@127.0.0.1:{closed_port}/postgres")
    )
    monitor.on_change = changes
    caplog.set_level(logging.INFO, logger="dbsight.proxy.health")
    for _ in range(3):
        await monitor.check()
    assert not monitor.up and not monitor.in_rotation
    assert f"127.0.0.1:{closed_port} is unreachable" in (monitor.last_error or "")
    assert monitor.lag_s is None and monitor.lag_bytes is None
    assert monitor.stats()["up"] is False and monitor.stats()["checked_at"] is not None
    assert changes.seen == []  # down before the first check, down after: no change
    assert len([r for r in caplog.records if "is down" in r.getMessage()]) == 1
    await monitor.close()


async def test_a_server_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # takes the StartupMessage, answers nothing
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monitor = BackendMonitor(
        target("primary", "primary", f"postgresql://postgres@127.0.0.1:{port}/postgres"),
        timeout_s=0.2,
    )
    try:
        await monitor.check()
        assert not monitor.up and "no answer within 0.2 s" in (monitor.last_error or "")
    finally:
        await monitor.close()
        server.close()
        await server.wait_closed()


async def test_a_board_with_a_replica_down_starts_and_reports_it(
    pg_replicated: PgCluster, closed_port: int
) -> None:
    board = HealthBoard(
        target("primary", "primary", pg_replicated.dsn()),
        [target("gone", "replica", f"postgresql://postgres@127.0.0.1:{closed_port}/postgres")],
        interval_s=0.05,
    )
    try:
        await board.start()
        assert board.primary.up and not board.replicas[0].up
        assert board.in_rotation() == []
        checked = board.replicas[0].checked_at
        await until(lambda: board.replicas[0].checked_at != checked)
    finally:
        await board.close()
    await board.primary.check()  # closed: nothing happens any more
    assert board.stats()[1]["last_error"]


# ------------------------------------------------------------------ input


def test_parse_lsn() -> None:
    assert parse_lsn("0/0") == 0
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    for bad in ("", "16", "16/", "/1", "G/1", "1/2/3"):
        with pytest.raises(ValueError, match="WAL position"):
            parse_lsn(bad)


def test_bad_arguments_are_refused() -> None:
    spec = BackendSpec(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    primary = BackendTarget("primary", "primary", spec)
    replica = BackendTarget("replica1", "replica", spec)
    with pytest.raises(ValueError, match="role"):
        BackendTarget("x", "standby", spec)  # type: ignore[arg-type]
    for field in ("interval_s", "timeout_s", "max_lag_s"):
        with pytest.raises(ValueError, match=field):
            BackendMonitor(primary, **{field: 0.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_lag_bytes"):
        BackendMonitor(replica, max_lag_bytes=-1)
    with pytest.raises(ValueError, match="role replica"):
        HealthBoard(replica, [])
    with pytest.raises(ValueError, match="role primary"):
        HealthBoard(primary, [primary])
    with pytest.raises(ValueError, match="unique"):
        HealthBoard(primary, [replica, replica])
