"""Routing in session mode: the client keeps one primary connection for its whole session
(SET, temporary tables, LISTEN, prepared statements all last), and its reads still go to
replicas, on connections made with the GUCs it has SET, unless it holds something no replica
can have."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import asyncpg
import psycopg
import pytest

from dbsight.proxy._metrics import routing_decisions
from dbsight.testing._servers import ReplicatedDatabase
from dbsight.testing.proxy import REPLICA_PROBE as PROBE
from dbsight.testing.proxy import on_replica


def connect(proxy: Any, database: ReplicatedDatabase) -> psycopg.Connection[Any]:
    return psycopg.connect(proxy.dsn(database.primary_dsn), autocommit=True)


@pytest.fixture
def tenants(replicated2: ReplicatedDatabase) -> None:
    """A table ``accounts`` in schema ``public`` (3 rows) and in schema ``tenant`` (1 row)."""
    with psycopg.connect(replicated2.primary_dsn, autocommit=True) as conn:
        conn.execute(
            """
            DROP SCHEMA IF EXISTS tenant CASCADE;
            DROP TABLE IF EXISTS public.accounts;
            CREATE TABLE public.accounts (id int);
            INSERT INTO public.accounts VALUES (1), (2), (3);
            CREATE SCHEMA tenant;
            CREATE TABLE tenant.accounts (id int);
            INSERT INTO tenant.accounts VALUES (10);
            """
        )
    replicated2.wait_for_replay()


@pytest.fixture
def session_proxy(routing_proxy: Any) -> Any:
    """A session-mode proxy in front of ``replicated2``, both replicas in rotation."""
    proxy = routing_proxy(pool_mode="session")
    proxy.wait_replicas_in_rotation(2)
    return proxy


def backend_pid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_backend_pid() /* dbsight:primary */").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.usefixtures("tenants")
def test_the_session_lasts_and_reads_follow_its_settings_to_the_replicas(
    session_proxy: Any, replicated2: ReplicatedDatabase
) -> None:
    proxy = session_proxy
    with connect(proxy, replicated2) as conn:
        pid = backend_pid(conn)
        assert on_replica(conn)
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (3,)

        conn.execute("SET search_path = tenant, public")
        conn.execute("SET work_mem = '12MB'")
        assert backend_pid(conn) == pid  # the same server session throughout
        assert conn.execute("SHOW search_path").fetchone() == ("tenant, public",)
        sql = f"{PROBE}, count(*), current_setting('work_mem') FROM accounts"
        assert conn.execute(sql).fetchone() == (True, 1, "12MB")  # a replica, as SET

        with conn.transaction():  # SET LOCAL ends with its transaction
            conn.execute("SET LOCAL search_path = public")
            assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (3,)
        assert conn.execute(sql).fetchone() == (True, 1, "12MB")

        pinned = routing_decisions["primary", "session_state"]
        conn.execute("CREATE TEMP TABLE scratch (x int)")  # only this session can read it
        conn.execute("INSERT INTO scratch VALUES (1), (2)")
        assert conn.execute("SELECT count(*) FROM scratch").fetchone() == (2,)
        assert not on_replica(conn)  # pinned to its own connection while it has one
        # counted as each unit ends (the last one's count may trail its answer)
        assert routing_decisions["primary", "session_state"] >= pinned + 2
        conn.execute("DROP TABLE scratch")
        assert on_replica(conn)

        conn.execute("SET dbsight_app.tenant = 'acme'")  # a custom setting travels too
        assert conn.execute(f"{PROBE}, current_setting('dbsight_app.tenant')").fetchone() == (
            True, "acme",
        )
        conn.execute("SET ROLE pg_read_all_data")  # roles are not replayed: pinned
        assert conn.execute(f"{PROBE}, current_user").fetchone() == (False, "pg_read_all_data")
        conn.execute("RESET ROLE")
        assert on_replica(conn)

        conn.execute("DISCARD ALL")  # settings back to the defaults, on replicas too
        assert conn.execute(f"{PROBE}, count(*) FROM accounts").fetchone() == (True, 3)
        assert backend_pid(conn) == pid


@pytest.mark.usefixtures("tenants")
def test_serializable_sessions_read_on_the_primary(
    session_proxy: Any, replicated2: ReplicatedDatabase
) -> None:
    """A hot standby refuses SERIALIZABLE: a session that makes it its default reads on the
    primary until it stops (its settings are not carried to replicas)."""
    proxy = session_proxy
    with connect(proxy, replicated2) as conn:
        conn.execute("SET default_transaction_isolation = serializable")
        assert not on_replica(conn)
        conn.read_only = True
        with conn.transaction():
            assert not on_replica(conn)
        conn.read_only = False
        conn.execute("RESET default_transaction_isolation")
        assert on_replica(conn)
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        assert not on_replica(conn)


@pytest.mark.usefixtures("tenants")
def test_listen_pins_the_session_and_notifications_arrive_at_once(
    session_proxy: Any, replicated2: ReplicatedDatabase
) -> None:
    proxy = session_proxy
    with connect(proxy, replicated2) as conn, connect(proxy, replicated2) as other:
        conn.execute("LISTEN dbsight_news")
        assert not on_replica(conn)

        def notify() -> None:
            other.execute("NOTIFY dbsight_news, 'hello'")

        timer = threading.Timer(0.3, notify)
        timer.start()
        try:  # the client is idle: the notification reaches it without a statement of its own
            received = [n.payload for n in conn.notifies(timeout=10, stop_after=1)]
        finally:
            timer.join()
        assert received == ["hello"]
        conn.execute("UNLISTEN *")
        assert on_replica(conn)


@pytest.mark.usefixtures("tenants")
def test_asyncpg_pools_prepared_statements_and_their_reset_keep_routing(
    session_proxy: Any, replicated2: ReplicatedDatabase
) -> None:
    proxy = session_proxy
    dsn = proxy.dsn(replicated2.primary_dsn)

    async def work() -> list[tuple[bool, int]]:
        # asyncpg's pool resets a connection on release (advisory unlocks, CLOSE ALL,
        # UNLISTEN *, RESET ALL): none of that may pin the session to the primary
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        seen = []
        try:
            for _ in range(3):
                async with pool.acquire() as conn:
                    await conn.execute("SET search_path = tenant")
                    row = await conn.fetchrow(f"{PROBE} AS replica, count(*) FROM accounts")
                    seen.append((row["replica"], row["count"]))
                    await conn.execute("INSERT INTO accounts VALUES ($1)", 11)
            async with pool.acquire() as conn:  # after RESET ALL: the default search_path
                row = await conn.fetchrow(f"{PROBE} AS replica, count(*) FROM accounts")
                seen.append((row["replica"], row["count"]))
        finally:
            await pool.close()
        return seen

    seen = asyncio.run(work())
    assert [replica for replica, _ in seen] == [True] * 4
    assert seen[-1][1] == 3  # public.accounts again
    assert [count for _, count in seen[:3]][0] == 1  # tenant.accounts, as SET


def test_session_mode_needs_a_primary_connection_per_client(
    routing_proxy: Any, replicated2: ReplicatedDatabase
) -> None:
    """Each client holds its primary connection from its first statement there to its end;
    a client that only reads never takes one."""
    proxy = routing_proxy(pool_mode="session", pool_size=2, pool_timeout_s=0.5)
    proxy.wait_replicas_in_rotation(2)
    with connect(proxy, replicated2) as a, connect(proxy, replicated2) as b:
        backend_pid(a)
        backend_pid(b)
        with connect(proxy, replicated2) as reader:
            proxy.wait_replicas_in_rotation(2)  # (a loaded machine may have let one lag)
            assert on_replica(reader)  # no primary connection needed
            with pytest.raises(psycopg.OperationalError) as waited:
                backend_pid(reader)
            assert "53300" in str(waited.value) or "pool" in str(waited.value)
    with connect(proxy, replicated2) as c:  # a and b have given theirs back
        backend_pid(c)
