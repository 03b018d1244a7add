"""Real clients through `dbsight proxy` in transaction-pooling mode, against a real PostgreSQL.

Each test gives the proxy fewer server connections than it has clients, so statements of
different clients share connections: prepared statements must be re-prepared on whichever
connection runs them, and nothing a client sets may reach another.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psycopg
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dbsight._runtime import get_runtime

# The session-mode tests' statement collector and wait (the same checks apply here).
from test_proxy_session import events, settle  # noqa: F401  (a fixture; F811 below is its use)


def pooled(proxy_factory: Any, pg_dsn: str, **options: Any) -> str:
    """A transaction-pooling proxy in front of ``pg_dsn``; the DSN to reach it."""
    options.setdefault("pool_size", 2)
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", **options)
    return str(proxy.dsn(pg_dsn))


async def backend_pids(conns: list[asyncpg.Connection]) -> set[int]:
    return {await conn.fetchval("SELECT pg_backend_pid()") for conn in conns}


async def test_many_asyncpg_clients_share_two_connections(
    proxy_factory: Any, pg_dsn: str, events: Any  # noqa: F811
) -> None:
    dsn = pooled(proxy_factory, pg_dsn)
    conns = [await asyncpg.connect(dsn) for _ in range(6)]
    try:
        await conns[0].execute("CREATE TABLE nums (n int)")
        await conns[0].execute("INSERT INTO nums SELECT generate_series(1, 10)")

        # Every client's statement cache names its statements __asyncpg_stmt_1__, 2, ...: the
        # same names for different queries, on the same two server connections.
        async def work(conn: asyncpg.Connection, k: int) -> None:
            for i in range(15):
                if k % 2:
                    assert await conn.fetchval("SELECT $1::int * $2::int", i, k) == i * k
                    rows = await conn.fetch("SELECT n FROM nums WHERE n <= $1 ORDER BY n", k)
                    assert [r["n"] for r in rows] == list(range(1, k + 1))
                else:
                    assert await conn.fetchval("SELECT $1::text || 'x'", str(i)) == f"{i}x"
                    assert await conn.fetchval("SELECT count(*) FROM nums WHERE n > $1", k) == 10 - k
            stmt = await conn.prepare("SELECT n + $1::int FROM nums WHERE n = 1")
            assert await stmt.fetchval(k) == 1 + k
            assert await stmt.fetchval(k + 1) == 2 + k  # executed again, maybe elsewhere
            await conn.executemany("SELECT $1::int", [(i,) for i in range(5)])

        await asyncio.gather(*(work(conn, k) for k, conn in enumerate(conns)))
        assert len(await backend_pids(conns)) <= 2
    finally:
        for conn in conns:
            await conn.close()
    settle(lambda: len([e for e in events.ok if e.normalized.startswith("SELECT n FROM")]) == 45)
    selects = [e for e in events.ok if e.normalized.startswith("SELECT n FROM nums WHERE n <=")]
    assert sorted({e.rows for e in selects}) == [1, 3, 5]
    assert all(e.source == "proxy" and e.duration_s > 0 for e in selects)
    assert not events.errors


def test_psycopg_named_prepared_statements_and_pipeline(proxy_factory: Any, pg_dsn: str) -> None:
    dsn = pooled(proxy_factory, pg_dsn, pool_size=1)
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as a, \
            psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as b:
        a.execute("CREATE TABLE kv (k int PRIMARY KEY, v text)")
        for i in range(5):  # _pg3_0, _pg3_1 ... in both clients, one server connection
            a.execute("INSERT INTO kv VALUES (%s, %s)", (i, f"a{i}"))
            assert b.execute("SELECT v FROM kv WHERE k = %s", (i,)).fetchone() == (f"a{i}",)
            assert a.execute("SELECT count(*) FROM kv WHERE k <= %s", (i,)).fetchone() == (i + 1,)
        with b.pipeline():
            cursors = [b.execute("SELECT v FROM kv WHERE k = %s", (i,)) for i in range(5)]
            b.execute("UPDATE kv SET v = upper(v) WHERE k = %s", (0,))
        assert [c.fetchone() for c in cursors] == [(f"a{i}",) for i in range(5)]
        with a.pipeline(), a.transaction():
            a.execute("INSERT INTO kv VALUES (%s, %s)", (10, "t"))
            a.execute("INSERT INTO kv VALUES (%s, %s)", (11, "t"))
        assert b.execute("SELECT count(*) FROM kv WHERE v = %s", ("t",)).fetchone() == (2,)
        assert a.execute("SELECT v FROM kv WHERE k = %s", (0,)).fetchone() == ("A0",)


def test_a_pipeline_fetched_before_its_sync_stays_one_transaction(
    proxy_factory: Any, pg_dsn: str
) -> None:
    """psycopg's pipeline mode asks for results with a Flush before the Sync: everything up to
    the Sync is one implicit transaction on one server connection, which fails whole."""
    dsn = pooled(proxy_factory, pg_dsn, pool_size=2)
    with psycopg.connect(dsn, autocommit=True) as conn, \
            psycopg.connect(dsn, autocommit=True) as other:
        conn.execute("CREATE TABLE piped (n int)")
        with pytest.raises(psycopg.errors.DivisionByZero), conn.pipeline():
            conn.execute("INSERT INTO piped VALUES (1)")
            assert conn.execute("SELECT count(*) FROM piped").fetchone() == (1,)  # Flush
            assert conn.execute("SELECT txid_current_if_assigned() IS NOT NULL").fetchone() == (
                True,  # ... in the INSERT's transaction, still open
            )
            assert other.execute("SELECT count(*) FROM piped").fetchone() == (0,)
            conn.execute("INSERT INTO piped VALUES (2)")
            conn.execute("SELECT 1 / 0")
        assert conn.execute("SELECT count(*) FROM piped").fetchone() == (0,)  # none committed
        assert other.execute("SELECT count(*) FROM piped").fetchone() == (0,)


async def test_a_transaction_keeps_its_connection_and_others_wait(
    proxy_factory: Any, pg_dsn: str
) -> None:
    dsn = pooled(proxy_factory, pg_dsn, pool_size=1)
    a, b = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        await a.execute("CREATE TABLE t (id int)")
        tx = a.transaction()
        await tx.start()
        pid = await a.fetchval("SELECT pg_backend_pid()")
        await a.execute("INSERT INTO t VALUES (1)")
        waiting = asyncio.create_task(b.fetchval("SELECT count(*) FROM t"))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the only server connection is in a's transaction
        assert await a.fetchval("SELECT pg_backend_pid()") == pid
        await tx.commit()
        assert await waiting == 1  # served after the commit, and sees it
    finally:
        await a.close()
        await b.close()


async def test_a_second_connection_serves_others_during_a_transaction(
    proxy_factory: Any, pg_dsn: str
) -> None:
    dsn = pooled(proxy_factory, pg_dsn, pool_size=2)
    a, b = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        async with a.transaction():
            pid = await a.fetchval("SELECT pg_backend_pid()")
            others = {await b.fetchval("SELECT pg_backend_pid()") for _ in range(5)}
            assert pid not in others
            assert await a.fetchval("SELECT pg_backend_pid()") == pid
    finally:
        await a.close()
        await b.close()


def test_session_state_does_not_leak_to_another_client(proxy_factory: Any, pg_dsn: str) -> None:
    dsn = pooled(proxy_factory, pg_dsn, pool_size=1)
    with psycopg.connect(dsn, autocommit=True) as a, psycopg.connect(dsn, autocommit=True) as b:
        a.execute("SET statement_timeout = '1234ms'")
        a.execute("CREATE TEMP TABLE scratch (x int)")
        a.execute("SELECT pg_advisory_lock(42)")
        assert b.execute("SHOW statement_timeout").fetchone() == ("0",)
        assert b.execute("SELECT to_regclass('pg_temp.scratch')").fetchone() == (None,)
        assert b.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (True,)


def test_pool_timeout_gives_53300(proxy_factory: Any, pg_dsn: str) -> None:
    dsn = pooled(proxy_factory, pg_dsn, pool_size=1, pool_timeout_s=0.5)
    with (
        psycopg.connect(dsn, autocommit=True) as a,
        psycopg.connect(dsn, autocommit=True) as b,
        a.transaction(),
    ):
        a.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError) as failure:
            b.execute("SELECT 2")
        assert failure.value.sqlstate == "53300"
        assert a.execute("SELECT 3").fetchone() == (3,)  # the holder is unaffected
    with psycopg.connect(dsn, autocommit=True) as c:  # and the connection came back
        assert c.execute("SELECT 4").fetchone() == (4,)


async def test_cancel_reaches_the_connection_running_the_statement(
    proxy_factory: Any, pg_dsn: str, events: Any  # noqa: F811
) -> None:
    dsn = pooled(proxy_factory, pg_dsn, pool_size=2)
    a, b = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        sleeper = asyncio.create_task(a.execute("SELECT pg_sleep(30)"))
        other = asyncio.create_task(b.fetchval("SELECT 7 FROM pg_sleep(1)"))
        await asyncio.sleep(0.5)
        sleeper.cancel()  # asyncpg sends a CancelRequest with the proxy's key for a
        with pytest.raises(asyncio.CancelledError):
            await sleeper
        assert await other == 7  # b's statement, on the other connection, was not cancelled
        assert await a.fetchval("SELECT 1") == 1
    finally:
        await a.close()
        await b.close()
    settle(lambda: any(e.error.sqlstate == "57014" for e in events.errors))
    assert [e.normalized for e in events.errors] == ["SELECT pg_sleep($1)"]


def _user(pg_dsn: str) -> str:
    return urlsplit(pg_dsn).username or "postgres"


@pytest.mark.parametrize("auth_type", ["scram-sha-256", "md5", "password"])
async def test_pooled_mode_authenticates_clients_from_a_users_file(
    proxy_factory: Any, pg_dsn: str, tmp_path: Path, auth_type: str
) -> None:
    user = _user(pg_dsn)
    users = tmp_path / "userlist.txt"
    users.write_text(f'; proxy users\n"{user}" "right horse"\n')
    dsn = pooled(proxy_factory, pg_dsn, auth_type=auth_type, auth_file=users)
    conn = await asyncpg.connect(dsn, password="right horse")
    try:
        assert await conn.fetchval("SELECT current_user") == user
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(dsn, password="wrong horse")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(dsn, user="nobody_here", password="right horse")


def test_pooled_mode_authenticates_with_an_auth_query(
    proxy_factory: Any, pg_dsn: str
) -> None:
    user = _user(pg_dsn)
    secret = "md5" + hashlib.md5(f"sesame{user}".encode()).hexdigest()
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("CREATE TABLE proxy_users (usename text, passwd text)")
        admin.execute("INSERT INTO proxy_users VALUES (%s, %s)", (user, secret))
    dsn = pooled(
        proxy_factory, pg_dsn, auth_type="scram-sha-256",
        auth_query="SELECT usename, passwd FROM proxy_users WHERE usename = $1",
    )
    # an md5 hash cannot serve SCRAM: PostgreSQL's rule, so the right password fails too
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn, password="sesame")
    dsn = pooled(
        proxy_factory, pg_dsn, auth_type="md5",
        auth_query="SELECT usename, passwd FROM proxy_users WHERE usename = $1",
    )
    with psycopg.connect(dsn, password="sesame") as conn:
        assert conn.execute("SELECT current_user").fetchone() == (user,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn, password="open barley")


def pool_stats(proxy: Any) -> dict[str, Any]:
    """The one pool's /stats/pools entry (read in the proxy's own loop): one pool per
    database and user, whatever startup settings its clients send."""

    async def read() -> list[dict[str, Any]]:
        return proxy.server.pooling.stats()

    (stats,) = proxy.call(read())
    return stats


def server_statements(dsn: str, text: str | None = None) -> int:
    """Statements the proxy prepared (with ``text``, when given) on the (single) server
    connection, asked through the proxy with the simple protocol (which prepares nothing)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE '\\_dbs\\_%%'"
            " AND statement = coalesce(%s, statement)",
            (text,),
            prepare=False,
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_clean_transactions_keep_the_connection_and_its_prepared_statements(
    proxy_factory: Any, pg_dsn: str
) -> None:
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1)
    dsn = proxy.dsn(pg_dsn)
    text = "SELECT $1::int + 1"
    conns = [await asyncpg.connect(dsn) for _ in range(3)]
    try:
        for i in range(10):
            for conn in conns:  # the same text under each client's __asyncpg_stmt_1__
                assert await conn.fetchval(text, i) == i + 1
        async with conns[0].transaction():
            await conns[0].execute("SELECT 1")
        # one server statement for the text, whoever prepared it how often
        prepared = await conns[1].fetchval(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", text
        )
        assert prepared == 1
    finally:
        for conn in conns:
            await conn.close()
    stats = pool_stats(proxy)
    assert stats["total_resets"] == 0, "nothing was left in the session: no reset query"
    assert stats["total_clean_releases"] >= 30


async def test_a_client_keeps_its_clean_connection_until_another_needs_it(
    proxy_factory: Any, pg_dsn: str
) -> None:
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1)
    dsn = proxy.dsn(pg_dsn)
    first, second = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    direct = await asyncpg.connect(pg_dsn)
    try:
        pid = await first.fetchval("SELECT pg_backend_pid()")
        assert await first.fetchval("SELECT pg_backend_pid()") == pid
        stats = pool_stats(proxy)  # parked by the first client: idle all the same
        assert (stats["parked"], stats["idle"], stats["used"]) == (1, 1, 0)
        assert await second.fetchval("SELECT pg_backend_pid()") == pid  # taken from it
        assert await first.fetchval("SELECT pg_backend_pid()") == pid  # and back
        # the server ends the parked connection (its FATAL, then its close): the client's
        # next transaction runs on a new one, with no error
        await direct.execute("SELECT pg_terminate_backend($1)", pid)
        deadline = asyncio.get_running_loop().time() + 10
        while pool_stats(proxy)["size"] > 0:
            assert asyncio.get_running_loop().time() < deadline, pool_stats(proxy)
            await asyncio.sleep(0.05)
        assert await first.fetchval("SELECT pg_backend_pid()") not in (pid, None)
        assert await second.fetchval("SELECT 1") == 1
    finally:
        for conn in (first, second, direct):
            await conn.close()
    stats = pool_stats(proxy)  # the clients have gone: their connection with them, clean
    assert (stats["parked"], stats["idle"], stats["used"]) == (0, 1, 0)


def test_session_state_is_reset_and_prepared_statements_survive_the_light_reset(
    proxy_factory: Any, pg_dsn: str
) -> None:
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1)
    dsn = proxy.dsn(pg_dsn)
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as a, \
            psycopg.connect(dsn, autocommit=True) as b:
        assert a.execute("SELECT %s::int * 2", (21,)).fetchone() == (42,)  # prepared
        before = pool_stats(proxy)["total_resets"]
        a.execute("SET search_path = nowhere, public")
        assert b.execute("SHOW search_path").fetchone() == ('"$user", public',)
        assert pool_stats(proxy)["total_resets"] == before + 1
        assert a.execute("SELECT %s::int * 2", (5,)).fetchone() == (10,)
        assert server_statements(dsn, "SELECT $1::int * 2") == 1  # kept by the light reset
        a.execute("DEALLOCATE ALL")  # the client drops its statements: DISCARD ALL after it
        assert server_statements(dsn, "SELECT $1::int * 2") == 0
        assert a.execute("SELECT %s::int * 2", (7,)).fetchone() == (14,)  # prepared anew


async def test_a_failing_prepared_statement_leaves_the_pipeline_in_step(
    proxy_factory: Any, pg_dsn: str, events: Any  # noqa: F811
) -> None:
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1)
    dsn = proxy.dsn(pg_dsn)
    a, b = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        stmt = await a.prepare("SELECT 10 / $1::int")
        assert await stmt.fetchval(2) == 5
        with pytest.raises(asyncpg.DivisionByZeroError):
            await stmt.fetchval(0)
        assert await b.fetchval("SELECT 10 / $1::int", 5) == 2  # same text, other client
        assert await stmt.fetchval(1) == 10
        with pytest.raises(asyncpg.PostgresSyntaxError):
            await a.prepare("SELEC 1")
        assert await a.fetchval("SELECT 'still in step'") == "still in step"
    finally:
        await a.close()
        await b.close()
    settle(lambda: any(e.error is not None for e in events.errors))
    (failed,) = [e for e in events.errors if " / " in e.normalized]
    assert getattr(failed.error, "sqlstate", None) == "22012"
    assert pool_stats(proxy)["total_resets"] == 0


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_the_proxy_reaches_the_server_through_its_unix_socket(
    proxy_factory: Any, pg_dsn: str, mode: str
) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        directory = str(conn.execute("SHOW unix_socket_directories").fetchone()[0]).split(",")[0]
        port = conn.execute("SHOW port").fetchone()[0]
    if not directory or not Path(directory, f".s.PGSQL.{port}").exists():
        pytest.skip("the test server has no Unix socket in reach")
    parts = urlsplit(pg_dsn)
    user = parts.username or "postgres"
    upstream = f"postgresql://{user}@{parts.path}?host={directory.strip()}&port={port}"
    proxy = proxy_factory(upstream, pool_mode=mode, pool_size=2)
    with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as client:
        row = client.execute(
            "SELECT inet_server_addr() IS NULL, current_database()"
        ).fetchone()
    assert row == (True, parts.path.lstrip("/"))  # no server address: a Unix socket


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_proxy_metrics_show_pools_clients_resets_and_refusals(
    proxy_factory: Any, pg_dsn: str
) -> None:
    registry = get_runtime().registry
    before = generate_latest(registry).decode()
    dsn = pooled(proxy_factory, pg_dsn, pool_size=1, pool_timeout_s=0.3)
    user, database = urlsplit(pg_dsn).username or "postgres", urlsplit(pg_dsn).path[1:]
    pool = f"{user}@{database}"
    with psycopg.connect(dsn, autocommit=True) as a, psycopg.connect(dsn, autocommit=True) as b:
        for i in range(5):
            assert a.execute("SELECT %s::int", (i,)).fetchone() == (i,)
        a.execute("SET work_mem = '8MB'")  # left in the session: a reset follows
        with a.transaction():
            a.execute("SELECT 1")
            with pytest.raises(psycopg.OperationalError):
                b.execute("SELECT 2")  # waits 0.3 s for the one server connection: 53300
            during = generate_latest(registry).decode()
    after = generate_latest(registry).decode()

    assert metric(during, "proxy_client_connections", state="active") >= 1
    assert metric(during, "db_client_connections", pool=f"proxy:{pool}", state="used") == 1
    assert metric(during, "proxy_server_connections", pool=pool, state="used") == 1
    assert metric(after, "proxy_server_resets_total", pool=pool) == 1
    assert metric(after, "proxy_server_clean_releases_total", pool=pool) >= 5
    assert metric(after, "proxy_pool_timeouts_total", pool=pool) == 1
    assert metric(after, "proxy_pool_max_size", pool=pool) == 1
    for name, labels in (
        ("proxy_clients_accepted_total", {}),
        ("proxy_client_errors_total", {"sqlstate": "53300"}),
    ):
        assert metric(after, name, **labels) - metric(before, name, **labels) >= (
            2 if name == "proxy_clients_accepted_total" else 1
        )


async def test_idle_and_old_server_connections_are_replaced(
    proxy_factory: Any, pg_dsn: str
) -> None:
    proxy = proxy_factory(
        pg_dsn, pool_mode="transaction", pool_size=2, idle_timeout_s=0.3, max_lifetime_s=0.6
    )
    client = await asyncpg.connect(proxy.dsn(pg_dsn))
    try:
        first = await client.fetchval("SELECT pg_backend_pid()")
        deadline = asyncio.get_running_loop().time() + 10
        while pool_stats(proxy)["size"] > 0:  # idle past 0.3 s: closed by the maintenance
            assert asyncio.get_running_loop().time() < deadline, pool_stats(proxy)
            await asyncio.sleep(0.1)
        second = await client.fetchval("SELECT pg_backend_pid()")  # a new one, transparently
        assert second != first
        async with client.transaction():  # held past its lifetime: closed at release
            await asyncio.sleep(0.7)
            assert await client.fetchval("SELECT pg_backend_pid()") == second
        assert await client.fetchval("SELECT pg_backend_pid()") not in (first, second)
    finally:
        await client.close()
    assert pool_stats(proxy)["total_closed"] >= 2


def test_a_client_that_sends_while_it_waits_for_a_connection_is_paused_then_answered_in_order(
    proxy_factory: Any, pg_dsn: str
) -> None:
    """One server connection, held by a client's open transaction; another client sends
    three statements meanwhile: its reading is paused while it waits (on uvloop, the relay's
    own `Receiver` of its socket), and once the transaction ends it gets the three answers
    in order."""
    import time

    from test_proxy_session import _logged_in

    from dbsight.proxy import protocol as p

    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1)
    holder = psycopg.connect(proxy.dsn(pg_dsn))
    holder.execute("SELECT 1")  # a transaction open: the one connection is held
    sock = _logged_in(proxy, pg_dsn, timeout=20)
    uvloop = type(proxy.loop).__module__.startswith("uvloop")
    (waiter,) = [s for s in list(proxy.server.sessions) if s.lease.conn is None]
    if uvloop:  # (from the start of its relay, a moment after its login's ReadyForQuery)
        settle(lambda: bool(waiter._receivers))
    sock.sendall(p.encode(p.Query("SELECT 'first'")))
    time.sleep(0.2)  # waiting for the connection now
    sock.sendall(p.encode(p.Query("SELECT 'second'")) + p.encode(p.Query("SELECT 'third'")))
    settle(lambda: waiter.lease.paused)
    if uvloop:
        assert waiter._receivers[0].paused
    holder.commit()
    parser = p.BackendParser()
    rows: list[bytes] = []
    ready = 0
    while ready < 3:
        data = sock.recv(65536)
        assert data, "the proxy closed the connection"
        parser.feed(data)
        while (message := parser.next_message()) is not None:
            if isinstance(message, p.DataRow):
                rows.append(bytes(message.values[0] or b""))
            elif isinstance(message, p.ReadyForQuery):
                ready += 1
    assert rows == [b"first", b"second", b"third"]
    assert not waiter.lease.paused
    if uvloop:
        assert not waiter._receivers[0].paused
    sock.close()
    holder.close()


def test_a_pooled_server_connection_is_read_by_its_receiver_for_its_whole_life(
    proxy_factory: Any, pg_dsn: str
) -> None:
    """On uvloop a pooled server connection's socket is read by a `Receiver` from its login
    on, whoever holds it: a client reading ~24 MB slowly pauses it (flow control) and gets
    every row in order; a backend terminated while its connection idles in the pool is
    noticed and replaced; a connection the pool closes takes its receiver's descriptor with
    it. On asyncio's loop the transports read, with the same results."""
    import time

    from test_proxy_session import _ask_for_large_rows, _logged_in, _read_large_rows

    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1, idle_timeout_s=2)
    uvloop = type(proxy.loop).__module__.startswith("uvloop")
    sock = _logged_in(proxy, pg_dsn, timeout=30)
    _ask_for_large_rows(sock)
    time.sleep(1.0)  # the proxy's writes to the client back up meanwhile
    (pool,) = proxy.server.pooling._pools.values()
    (conn,) = pool._used
    receiver = conn.link.receiver
    assert (receiver is not None) == uvloop
    if uvloop:  # not read until the client drains its socket
        assert receiver.fd >= 0 and receiver.paused
    _read_large_rows(sock)
    if uvloop:
        assert not receiver.paused
    sock.close()
    settle(lambda: list(pool._idle) == [conn])
    first = conn.pid
    with psycopg.connect(pg_dsn, autocommit=True) as watcher:
        watcher.execute("SELECT pg_terminate_backend(%s)", (first,))
    settle(lambda: conn.transport.is_closing() and (receiver is None or receiver.fd < 0))
    with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as client:
        second = client.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert second != first  # (the terminated one noticed, not handed out)
    settle(lambda: len(pool._idle) == 1)
    (conn,) = pool._idle
    receiver = conn.link.receiver
    assert (receiver is not None and receiver.fd >= 0) == uvloop
    stats = pool_stats(proxy)
    settle(lambda: pool_stats(proxy)["size"] == 0)  # idle past 2 s: closed by the pool
    assert pool_stats(proxy)["total_closed"] > stats["total_closed"]
    settle(lambda: receiver is None or receiver.fd < 0)
    with psycopg.connect(pg_dsn, autocommit=True) as watcher:
        assert not watcher.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (second,)
        ).fetchall()
