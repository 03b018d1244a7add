"""Real clients through `dbsight proxy` (session mode) against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import asyncpg
import psycopg
import pytest

import dbsight
from dbsight.core import QueryObserver


class Events(QueryObserver):
    def __init__(self) -> None:
        self.ok: list[Any] = []
        self.errors: list[Any] = []

    def after_query(self, ctx: Any, event: Any) -> None:
        self.ok.append(event)

    def on_error(self, ctx: Any, event: Any) -> None:
        self.errors.append(event)


def settle(condition: Any, timeout: float = 10.0) -> None:
    """The proxy forwards the server's answer before it records it: the client may see its
    result a moment before the event exists."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the proxy never recorded the statements"
        time.sleep(0.01)


@pytest.fixture
def events(fresh_runtime: Any) -> Any:
    dbsight.configure(dbsight.Settings(tracing_enabled=False))
    collector = Events()
    dbsight.add_observer(collector)
    yield collector
    dbsight.remove_observer(collector)


def test_psycopg_simple_and_extended_through_the_proxy(proxy: Any, pg_dsn: str, events: Any) -> None:
    with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True, application_name="billing") as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        rows = conn.execute("SELECT id, name FROM items WHERE id >= %s ORDER BY id", (2,)).fetchall()
        assert rows == [(2, "b"), (3, "c")]
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM missing_table")
    settle(lambda: events.errors)
    selects = [e for e in events.ok if e.operation == "select"]
    assert selects and selects[-1].rows == 2 and selects[-1].source == "proxy"
    assert selects[-1].normalized == "SELECT id, name FROM items WHERE id >= $1 ORDER BY id"
    inserts = [e for e in events.ok if e.operation == "insert"]
    assert inserts[0].rows == 3
    assert inserts[0].application_name == "billing"
    assert inserts[0].client_addr == "127.0.0.1"
    assert inserts[0].user and inserts[0].database
    [error] = events.errors
    assert error.error.sqlstate == "42P01"
    assert all(e.duration_s > 0 for e in events.ok)


async def test_asyncpg_prepared_statements_pipelines_and_cancel(proxy: Any, pg_dsn: str, events: Any) -> None:
    conn = await asyncpg.connect(proxy.dsn(pg_dsn))
    try:
        assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
        stmt = await conn.prepare("SELECT g FROM generate_series(1, $1) g")
        assert len(await stmt.fetch(5)) == 5
        assert len(await stmt.fetch(7)) == 7
        await conn.executemany("SELECT $1::int", [(i,) for i in range(10)])
        task = asyncio.create_task(conn.execute("SELECT pg_sleep(30)"))
        await asyncio.sleep(0.5)
        task.cancel()  # asyncpg sends a CancelRequest on a new connection: through the proxy
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
    settle(lambda: any(e.error.sqlstate == "57014" for e in events.errors))
    fetched = [e.rows for e in events.ok if e.normalized.startswith("SELECT g FROM")]
    assert fetched == [5, 7]
    assert any(e.error.sqlstate == "57014" for e in events.errors)  # the cancelled sleep


def test_copy_and_notify(proxy: Any, pg_dsn: str, events: Any) -> None:
    with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
        conn.execute("CREATE TABLE c (id int, v text)")
        with conn.cursor().copy("COPY c FROM STDIN") as copy:
            for i in range(100):
                copy.write_row((i, f"v{i}"))
        with conn.cursor().copy("COPY c TO STDOUT") as copy:
            out = list(copy.rows())
        assert len(out) == 100
        conn.execute("LISTEN chan")
        with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as other:
            other.execute("NOTIFY chan, 'hello'")
        notes = []
        for note in conn.notifies(timeout=5):  # the loop closes the generator and its lock
            notes.append(note)
            break
        assert [(n.channel, n.payload) for n in notes] == [("chan", "hello")]
    settle(lambda: len([e for e in events.ok if e.sql.startswith("COPY")]) == 2)
    copies = [e for e in events.ok if e.sql.startswith("COPY")]
    assert [e.rows for e in copies] == [100, 100]


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def _fields(reply: bytes) -> dict[str, str]:
    assert reply[:1] == b"E", reply
    (length,) = struct.unpack("!I", reply[1:5])
    body = reply[5 : 1 + length]
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode()
    return out


def test_malformed_bytes_get_08P01_and_close_that_client_only(proxy: Any, pg_dsn: str) -> None:
    with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as good:
        bad_length = struct.pack("!I", 3) + b"xx"  # a startup length below its own header
        assert _fields(_raw(proxy.port, bad_length))["C"] == "08P01"
        huge = struct.pack("!II", 2**31 - 1, 196608)
        assert _fields(_raw(proxy.port, huge))["C"] in ("08P01", "54000")
        assert good.execute("SELECT 1").fetchone() == (1,)


def test_upstream_unreachable_gives_08006(proxy_factory: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    proxy = proxy_factory(f"postgresql://postgres@127.0.0.1:{closed_port}/postgres")
    with pytest.raises(psycopg.OperationalError) as raised:
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres", connect_timeout=10)
    assert "unreachable" in str(raised.value)


def test_many_concurrent_clients(proxy: Any, pg_dsn: str, events: Any) -> None:
    async def client(i: int) -> int:
        conn = await asyncpg.connect(proxy.dsn(pg_dsn))
        try:
            total = 0
            for j in range(20):
                total += await conn.fetchval("SELECT $1::int * $2::int", i, j)
            return total
        finally:
            await conn.close()

    async def all_clients() -> list[int]:
        return await asyncio.gather(*(client(i) for i in range(32)))

    results = asyncio.run(all_clients())
    assert results == [i * sum(range(20)) for i in range(32)]
    settle(lambda: len([e for e in events.ok if e.normalized.startswith("SELECT $1::int * $2::int")]) == 640)


def _read_until_ready(sock: socket.socket) -> None:
    from dbsight.proxy import protocol as p

    parser = p.BackendParser()
    while True:
        data = sock.recv(65536)
        assert data, "the proxy closed the connection"
        parser.feed(data)
        while (message := parser.next_message()) is not None:
            if isinstance(message, p.ReadyForQuery):
                return


def _logged_in(
    proxy: Any, pg_dsn: str, application_name: str | None = None, timeout: float = 10
) -> socket.socket:
    """A raw socket to the proxy, logged in as ``pg_dsn``'s user to its database (and
    ``application_name``), after the server's first ReadyForQuery."""
    from dbsight.proxy import protocol as p

    params = {
        "user": pg_dsn.split("://", 1)[1].split("@", 1)[0],
        "database": pg_dsn.rsplit("/", 1)[1],
    }
    if application_name is not None:
        params["application_name"] = application_name
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    sock.sendall(p.encode(p.StartupMessage(params)))
    _read_until_ready(sock)
    return sock


def test_a_client_that_leaves_mid_query_has_it_cancelled(proxy: Any, pg_dsn: str) -> None:
    import time

    from dbsight.proxy import protocol as p

    marker = "dbsight_cancel_marker"
    sock = _logged_in(proxy, pg_dsn)
    sock.sendall(p.encode(p.Query(f"SELECT pg_sleep(60) /* {marker} */")))
    with psycopg.connect(pg_dsn, autocommit=True) as watcher:
        query = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()"
        deadline = time.monotonic() + 10
        while watcher.execute(query, (f"%{marker}%",)).fetchone() != (1,):
            assert time.monotonic() < deadline, "the statement never started"
            time.sleep(0.05)
        sock.close()  # the client goes away with its statement running
        deadline = time.monotonic() + 10
        while watcher.execute(
            query + " AND state = 'active'", (f"%{marker}%",)
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the statement was not cancelled"
            time.sleep(0.05)


def test_shutdown_ends_idle_sessions_and_lets_transactions_finish(proxy_factory: Any, pg_dsn: str) -> None:
    proxy = proxy_factory(pg_dsn)
    idle = psycopg.connect(proxy.dsn(pg_dsn), autocommit=True)
    busy = psycopg.connect(proxy.dsn(pg_dsn))
    busy.execute("CREATE TABLE shutdown_check (id int)")  # opens a transaction
    stopping = asyncio.run_coroutine_threadsafe(proxy.server.stop(grace_s=20.0), proxy.loop)
    import time

    time.sleep(0.5)
    with pytest.raises(psycopg.OperationalError):
        idle.execute("SELECT 1")  # ended at once
    busy.execute("INSERT INTO shutdown_check VALUES (1)")  # still in its transaction
    busy.commit()  # ReadyForQuery 'I': now it is ended
    stopping.result(10)
    with pytest.raises(psycopg.OperationalError):
        busy.execute("SELECT 1")
    idle.close()
    busy.close()
    with psycopg.connect(pg_dsn) as direct:
        assert direct.execute("SELECT count(*) FROM shutdown_check").fetchone() == (1,)


def _receiving(proxy: Any) -> list[bool]:
    """For each session of the proxy: whether the relay reads both its sockets itself."""
    return [
        bool(s._receivers) and all(r.fd >= 0 for r in s._receivers)
        for s in list(proxy.server.sessions)
    ]


LARGE_ROWS = 24_000  # of 1 kB each: more than the sockets' buffers hold


def _ask_for_large_rows(sock: socket.socket) -> None:
    """Send the query whose answer `_read_large_rows` reads: ~24 MB of numbered rows."""
    from dbsight.proxy import protocol as p

    sock.sendall(p.encode(p.Query(
        f"SELECT i, repeat(chr(65 + i % 26), 1000) FROM generate_series(1, {LARGE_ROWS}) i"
    )))  # fmt: skip


def _read_large_rows(sock: socket.socket) -> None:
    """Read that answer up to its ReadyForQuery: every row, in order, whole."""
    from dbsight.proxy import protocol as p

    parser = p.BackendParser(max_message_size=1 << 20)
    seen = 0
    done = False
    while not done:
        data = sock.recv(1 << 16)
        assert data, "the proxy closed the connection"
        parser.feed(data)
        while (message := parser.next_message()) is not None:
            if isinstance(message, p.DataRow):
                seen += 1
                i = int(bytes(message.values[0]))
                assert i == seen and bytes(message.values[1]) == bytes([65 + i % 26]) * 1000
            elif isinstance(message, p.ReadyForQuery):
                done = True
    assert seen == LARGE_ROWS


def _backends(watcher: Any, application_name: str) -> int:
    row = watcher.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application_name,)
    ).fetchone()
    return int(row[0])


def test_a_client_reading_slowly_gets_a_large_result_whole_and_leaving_ends_its_backend(
    proxy: Any, pg_dsn: str
) -> None:
    """~24 MB of rows to a client that does not read for a while: the client's socket fills,
    the relay stops reading the server until it drains (flow control), and every row arrives
    in order. On uvloop the relay reads both sockets itself (`Receiver`); when the client
    leaves, the server connection is closed too (the receivers' own descriptors with it)."""
    import time

    from dbsight.proxy import protocol as p

    name = "dbsight_slow_reader"
    sock = _logged_in(proxy, pg_dsn, name, timeout=30)
    uvloop = type(proxy.loop).__module__.startswith("uvloop")
    assert _receiving(proxy) == [uvloop]
    _ask_for_large_rows(sock)
    time.sleep(1.0)  # the proxy's writes back up meanwhile
    if uvloop:  # so its server side is not read until the client's drains
        (session,) = list(proxy.server.sessions)
        (server_side,) = [r for r in session._receivers if r.transport is session._server_transport]
        assert server_side.paused
    _read_large_rows(sock)
    if uvloop:
        assert not server_side.paused
    with psycopg.connect(pg_dsn, autocommit=True) as watcher:
        assert _backends(watcher, name) == 1
        sock.close()
        deadline = time.monotonic() + 10
        while _backends(watcher, name):
            assert time.monotonic() < deadline, "the server connection outlived its client"
            time.sleep(0.05)


def test_a_server_that_ends_the_session_closes_the_clients_connection(
    proxy: Any, pg_dsn: str
) -> None:
    """The server terminates the backend: the client gets its FATAL, then the end of the
    stream (the proxy's own descriptors of the client's socket closed)."""
    from dbsight.proxy import protocol as p

    name = "dbsight_terminated"
    sock = _logged_in(proxy, pg_dsn, name)
    with psycopg.connect(pg_dsn, autocommit=True) as watcher:
        watcher.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (name,),
        )
    parser = p.BackendParser()
    errors: list[Any] = []
    while data := sock.recv(65536):  # (the 10 s timeout fails the test if it never ends)
        parser.feed(data)
        while (message := parser.next_message()) is not None:
            if isinstance(message, p.ErrorResponse):
                errors.append(message)
    sock.close()
    assert [e.fields.get("C") for e in errors] == ["57P01"]
    settle(lambda: not proxy.server.sessions)
