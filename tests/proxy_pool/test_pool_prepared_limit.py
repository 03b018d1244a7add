"""``max_prepared`` against a real PostgreSQL: an idle or parked pooled connection holding
more prepared statements than that gives up those prepared longest ago at the pool's
maintenance, the server agreeing with what the connection records, and one whose server
refuses is closed rather than reused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dbsight.proxy._backend import BackendConnection
from dbsight.proxy._pool import BackendPool

MakePool = Callable[..., BackendPool]


async def prepare(conn: BackendConnection, *names: str) -> None:
    """``names`` prepared on ``conn`` and recorded, as the session layer does."""
    for name in names:
        await conn.execute(f"PREPARE {name} AS SELECT '{name}'::text")
        conn.prepared[name] = f"SELECT '{name}'::text"


async def on_server(conn: BackendConnection) -> list[str]:
    (result,) = await conn.execute("SELECT name FROM pg_prepared_statements ORDER BY name")
    return [name or "" for (name,) in result.rows]


async def test_deallocate_oldest_keeps_the_newest_on_both_sides(make_pool: MakePool) -> None:
    pool = make_pool(max_size=1)
    conn = await pool.acquire()
    await prepare(conn, "_dbs_a", "_dbs_c", "_dbs_b", "_dbs_d", "_dbs_e")
    assert await conn.deallocate_oldest(2) == 3
    assert list(conn.prepared) == ["_dbs_d", "_dbs_e"]
    assert await on_server(conn) == ["_dbs_d", "_dbs_e"]
    assert await conn.deallocate_oldest(2) == 0  # (nothing over: no Query at all)
    await pool.release(conn, full=False)


async def test_maintenance_trims_an_idle_connection_and_gives_it_back(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=1, max_prepared=2)
    conn = await pool.acquire()
    await prepare(conn, "_dbs_1", "_dbs_2", "_dbs_3", "_dbs_4")
    pool.release_clean(conn)
    await pool.maintain()
    stats = pool.stats()
    assert stats["total_deallocated"] == 2
    assert (stats["idle"], stats["used"], stats["total_closed"]) == (1, 0, 0)
    again = await pool.acquire()
    assert again is conn
    assert list(again.prepared) == ["_dbs_3", "_dbs_4"]
    assert await on_server(again) == ["_dbs_3", "_dbs_4"]
    pool.release_clean(again)
    await pool.maintain()  # at the limit: left alone
    assert pool.stats()["total_deallocated"] == 2


async def test_a_parked_connection_over_the_limit_is_let_go_of_then_trimmed(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=1, max_prepared=1)
    conn = await pool.acquire()
    await prepare(conn, "_dbs_x", "_dbs_y")
    unparked: list[BackendConnection] = []
    assert pool.park(conn, lambda: unparked.append(conn))
    await pool.maintain()
    assert unparked == [conn]  # its client was told before the pool used it
    stats = pool.stats()
    assert (stats["parked"], stats["idle"], stats["total_deallocated"]) == (0, 1, 1)
    assert not pool.take_back(conn)  # no longer its client's
    again = await pool.acquire()
    assert await on_server(again) == ["_dbs_y"]
    await pool.release(again, full=False)


async def test_a_connection_whose_server_refuses_the_deallocation_is_closed(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=1, max_prepared=1)
    conn = await pool.acquire()
    await prepare(conn, "_dbs_kept")
    conn.prepared = {"_dbs_missing": "SELECT 1", **conn.prepared}  # the server has no such one
    pool.release_clean(conn)
    await pool.maintain()
    stats = pool.stats()
    assert (stats["total_deallocated"], stats["total_closed"], stats["size"]) == (0, 1, 0)
    fresh = await pool.acquire()
    assert fresh is not conn
    assert await on_server(fresh) == []
    await pool.release(fresh)


async def test_max_prepared_below_one_is_refused(make_pool: MakePool) -> None:
    with pytest.raises(ValueError, match="max_prepared must be >= 1"):
        make_pool(max_size=1, max_prepared=0)
