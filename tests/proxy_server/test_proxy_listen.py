"""LISTEN/NOTIFY through transaction pooling: a client's LISTEN moves to the proxy's LISTEN
connection of its database and user, its notifications arrive in order with the sender's pid
and payload while its own transactions land on any pooled connection, and no pooled
connection is left listening. Real asyncpg and psycopg clients, a real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import psycopg
import pytest

from dbsight.proxy._listen_statements import ListenOp, listen_ops, may_listen
from dbsight.proxy._listener import after_overlap


def pooled(proxy_factory: Any, pg_dsn: str, **options: Any) -> tuple[Any, str]:
    options.setdefault("pool_size", 2)
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", **options)
    return proxy, str(proxy.dsn(pg_dsn))


async def wait_for(predicate: Any, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_asyncpg_listener_gets_notifications_between_its_transactions(
    proxy_factory: Any, pg_dsn: str
) -> None:
    proxy, dsn = pooled(proxy_factory, pg_dsn)
    listener = await asyncpg.connect(dsn)
    others = [await asyncpg.connect(dsn) for _ in range(3)]
    sender = await asyncpg.connect(pg_dsn)  # straight to the server: its pid is the sender's
    received: list[tuple[int, str, str]] = []
    try:
        await listener.add_listener("orders", lambda _c, pid, ch, payload: received.append(
            (pid, ch, payload)))  # fmt: skip
        sender_pid = await sender.fetchval("SELECT pg_backend_pid()")
        for n in range(5):
            await sender.execute(f"NOTIFY orders, 'order {n}'")
        await wait_for(lambda: len(received) == 5, f"5 notifications, got {received}")
        assert received == [(sender_pid, "orders", f"order {n}") for n in range(5)]

        # the listener's own transactions land on either pooled connection: the other two
        # clients hold both in transactions, and the one that ends first frees its own
        pids: set[int] = set()
        for n in range(5, 25):
            held = [others[0].transaction(), others[1].transaction()]
            holders = []
            for conn, transaction in zip(others, held):
                await transaction.start()
                holders.append(await conn.fetchval("SELECT pg_backend_pid()"))
            await held[n % 2].commit()
            pid = await listener.fetchval("SELECT pg_backend_pid()")
            assert pid == holders[n % 2]
            pids.add(pid)
            await held[1 - n % 2].commit()
            await sender.execute("SELECT pg_notify('orders', $1)", f"order {n}")
        assert len(pids) == 2  # its transactions ran on both pooled connections
        await wait_for(lambda: len(received) == 25, f"25 notifications, got {len(received)}")
        assert [payload for _, _, payload in received] == [f"order {n}" for n in range(25)]

        # a NOTIFY in the listener's own transaction reaches it after the commit
        async with listener.transaction():
            await listener.execute("NOTIFY orders, 'mine'")
            await asyncio.sleep(0.1)
            assert received[-1][2] == "order 24"  # not inside its transaction
        await wait_for(lambda: received[-1][2] == "mine", "its own notification")

        # no pooled connection listens: only the proxy's LISTEN connection does
        stats = proxy.server.pooling.listener_stats()
        assert stats[0]["channels"] == {"orders": 1}
        # both pooled connections at once (each client holds one in its transaction): neither
        # listens
        async with others[0].transaction(), others[1].transaction():
            held = [await conn.fetchrow("SELECT pg_backend_pid() AS pid, "
                                        "array(SELECT pg_listening_channels()) AS channels")
                    for conn in others[:2]]  # fmt: skip
        assert len({row["pid"] for row in held}) == 2
        assert [row["channels"] for row in held] == [[], []]

        # UNLISTEN stops them; the LISTEN connection stops listening too
        await listener.remove_listener("orders", lambda *_: None)  # (another callback: kept)
        await listener.execute("UNLISTEN orders")
        await wait_for(lambda: proxy.server.pooling.listener_stats()[0]["channels"] == {},
                       "the LISTEN connection to stop listening")  # fmt: skip
        await sender.execute("NOTIFY orders, 'after'")
        await asyncio.sleep(0.3)
        assert received[-1][2] == "mine"
    finally:
        for conn in (listener, sender, *others):
            await conn.close()


def test_psycopg_notifies_across_pooled_connections(proxy_factory: Any, pg_dsn: str) -> None:
    proxy, dsn = pooled(proxy_factory, pg_dsn, pool_size=1)
    with psycopg.connect(dsn, autocommit=True) as listener, \
            psycopg.connect(dsn, autocommit=True) as other, \
            psycopg.connect(pg_dsn, autocommit=True) as sender:  # fmt: skip
        listener.execute('LISTEN "Mixed Case"')
        listener.execute("LISTEN plain")
        sender_pid = sender.info.backend_pid
        other.execute("SELECT 1")  # the one pooled connection serves the other client too
        sender.execute("""NOTIFY "Mixed Case", 'a'""")
        sender.execute("SELECT pg_notify('plain', 'b')")
        sender.execute("SELECT pg_notify('PLAIN', 'not ours')")  # a channel of another name
        got = []
        for notify in listener.notifies(timeout=5, stop_after=2):
            got.append((notify.pid, notify.channel, notify.payload))
        assert got == [(sender_pid, "Mixed Case", "a"), (sender_pid, "plain", "b")]

        # a LISTEN in a transaction that rolls back listens to nothing
        listener.execute("BEGIN")
        listener.execute("LISTEN rolled")
        listener.execute("ROLLBACK")
        # a LISTEN in a transaction that commits listens from the commit on
        with listener.transaction():
            listener.execute("LISTEN committed")
        # (the commit has returned; the LISTEN connection takes it over right after)
        sender.execute("NOTIFY rolled, 'x'")
        sender.execute("NOTIFY committed, 'y'")
        got = [n.channel for n in listener.notifies(timeout=5, stop_after=1)]
        assert got == ["committed"]
        assert proxy.server.pooling.listener_stats()[0]["channels"] == {
            "Mixed Case": 1, "plain": 1, "committed": 1}  # fmt: skip


async def test_disconnect_and_failed_listen_leave_nothing_behind(
    proxy_factory: Any, pg_dsn: str
) -> None:
    proxy, dsn = pooled(proxy_factory, pg_dsn)
    first = await asyncpg.connect(dsn)
    second = await asyncpg.connect(dsn)
    try:
        await first.add_listener("shared", lambda *_: None)
        await second.add_listener("shared", lambda *_: None)
        # (the LISTEN connection takes a LISTEN over right after its transaction's answer)
        await wait_for(lambda: proxy.server.pooling.listener_stats()[0]["channels"]
                       == {"shared": 2}, "both clients' LISTEN")  # fmt: skip
        await first.close()
        await wait_for(lambda: proxy.server.pooling.listener_stats()[0]["channels"]
                       == {"shared": 1}, "the first client's LISTEN to go")  # fmt: skip
        with pytest.raises(asyncpg.PostgresSyntaxError):  # the server's own error, as always
            await second.execute("LISTEN 1bad")
        await second.close()
        await wait_for(lambda: proxy.server.pooling.listener_stats()[0]["channels"] == {},
                       "the LISTEN connection to stop listening")  # fmt: skip
    finally:
        for conn in (first, second):
            if not conn.is_closed():
                await conn.close()


def test_statements_that_listen() -> None:
    assert may_listen("LISTEN a") and may_listen("  /* c */ unlisten *")
    assert may_listen("-- why\nLISTEN b")
    assert not may_listen("SELECT 'LISTEN a'") and not may_listen("listener()")
    assert listen_ops('LISTEN Foo; LISTEN "Bar"; UNLISTEN *') == (
        ListenOp(True, "foo"), ListenOp(True, "Bar"), ListenOp(False, None))
    assert listen_ops("LISTEN (") == ()


def test_notifications_received_twice_during_the_move_go_once() -> None:
    a, b, c, d = (bytes([n]) for n in range(4))
    assert after_overlap([a, b], [b, c]) == [c]
    assert after_overlap([a, b, c], [b, c, d]) == [d]
    assert after_overlap([a], [b]) == [b]
    assert after_overlap([], [a]) == [a]
    assert after_overlap([a, a], [a, a, a]) == [a]


async def test_the_listen_connection_comes_back_after_it_breaks(
    proxy_factory: Any, pg_dsn: str
) -> None:
    _, dsn = pooled(proxy_factory, pg_dsn)
    listener = await asyncpg.connect(dsn)
    admin = await asyncpg.connect(pg_dsn)
    received: list[str] = []
    find = ("SELECT pid FROM pg_stat_activity WHERE application_name = 'dbsight-proxy-listen' "
            "AND datname = current_database()")  # fmt: skip
    try:
        await listener.add_listener("jobs", lambda *args: received.append(args[3]))
        deadline = time.monotonic() + 15  # (it takes the LISTEN over right after its answer)
        while (old := await admin.fetchval(find)) is None:
            assert time.monotonic() < deadline, "no LISTEN connection"
            await asyncio.sleep(0.05)
        await admin.execute("SELECT pg_terminate_backend($1)", old)
        # back once the new connection has run its LISTEN (it shows before it has)
        listening = find + " AND state = 'idle' AND query ILIKE 'LISTEN%'"
        deadline = time.monotonic() + 15
        while (new := await admin.fetchval(listening)) in (None, old):
            assert time.monotonic() < deadline, "the LISTEN connection did not come back"
            await asyncio.sleep(0.05)
        await admin.execute("NOTIFY jobs, 'after the break'")
        await wait_for(lambda: received == ["after the break"], f"got {received}")
        assert await listener.fetchval("SELECT 1") == 1  # the client's session went on
    finally:
        await listener.close()
        await admin.close()
