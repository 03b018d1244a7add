"""The proxy's statements on the recorder's lean path (dbsight's own sinks and batched
observers only), through a real proxy against the real PostgreSQL: every observer gets the
events the regular path makes, field by field, failed, slow and renamed sessions included."""

from __future__ import annotations

import dataclasses
import socket
import struct
import time
from typing import Any

import asyncpg
import psycopg
import pytest
from lean_observers import TIMING, Batched, Unbatched, fields_but_timing
from psycopg.conninfo import conninfo_to_dict
from test_proxy_session import settle

import dbsight
from dbsight import _runtime
from dbsight.core import QueryEvent
from dbsight.core._recorder import BATCH


class LeanBatched(Batched):
    """A batched observer that takes the light events dbsight's own sinks are handed."""

    name = "tests.lean_batched"
    lean_events = True


class Slow(Unbatched):
    """An unbatched observer for slow statements only (the lean path stays open below it)."""

    name = "tests.slow"
    min_duration_s = 0.2

    def on_error(self, ctx: Any, event: Any) -> None:
        self.events.append(event)


@pytest.fixture
def collector(fresh_runtime: Any) -> Any:
    dbsight.configure(dbsight.Settings(tracing_enabled=False))
    collector = Batched()
    dbsight.add_observer(collector)
    yield collector
    dbsight.remove_observer(collector)


def _sync_workload(dsn: str, collector: Batched) -> int:
    """Simple and extended protocol, text literals, errors in both, an application_name
    that changes mid-session, a pipeline whose last statement the server skips (`COUNT`
    statements). Returns how many the recorder held as lean tuples before the pipeline."""
    with psycopg.connect(dsn, autocommit=True, application_name="billing") as conn:
        conn.execute("DROP TABLE IF EXISTS lean_items")
        conn.execute("CREATE TABLE lean_items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO lean_items SELECT g, 'item ' || g FROM generate_series(1, 50) g")
        for i in (3, 7, 11):
            conn.execute("SELECT name FROM lean_items WHERE id = %s", (i,))
        client = psycopg.ClientCursor(conn)  # literals in the text, simple protocol
        for i in (4, 8):
            client.execute("SELECT name FROM lean_items WHERE id = %s", (i,))
        conn.execute("UPDATE lean_items SET name = name WHERE id <= %s", (5,))
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM lean_missing WHERE id = %s", (1,))
        with pytest.raises(psycopg.errors.SyntaxError):
            client.execute("SELEC 1")
        conn.execute("SELECT count(*) FROM lean_items")
        conn.execute("SET application_name = 'billing-batch'")
        conn.execute("SELECT name FROM lean_items WHERE id = %s", (9,))
        client.execute("SELECT count(*) FROM lean_items WHERE id > %s", (40,))
    held = _recorded(collector, COUNT - 3)
    _pipeline(dsn, lambda: _recorded(collector, COUNT))
    return held


COUNT = 18  # statements of `_sync_workload`


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def _until_ready(sock: socket.socket) -> bytes:
    answer = b""
    while not answer.endswith(b"Z\0\0\0\x05I"):  # ReadyForQuery, idle
        chunk = sock.recv(65536)
        assert chunk, answer
        answer += chunk
    return answer


def _pipeline(dsn: str, recorded: Any) -> None:
    """Three statements and one Sync, sent at once (so that all of them are on their way
    when the second fails): the server skips the third. ``recorded()`` waits until the
    proxy has recorded them (it forwards an answer before it records its statement)."""
    info = conninfo_to_dict(dsn)
    startup = struct.pack("!I", 196608) + b"".join(
        f"{key}\0{value}\0".encode()
        for key, value in (
            ("user", info["user"]), ("database", info["dbname"]), ("application_name", "pipe"),
        )
    ) + b"\0"  # fmt: skip
    data = b""
    for sql in (
        "SELECT id FROM lean_items WHERE id = 1", "SELECT 1 / 0",
        "SELECT id FROM lean_items WHERE id = 2",
    ):  # fmt: skip
        data += _message(b"P", b"\0" + sql.encode() + b"\0\0\0")
        data += _message(b"B", b"\0\0\0\0\0\0\0\0")
        data += _message(b"E", b"\0\0\0\0\0")
    data += _message(b"S", b"")
    with socket.create_connection(("127.0.0.1", int(info["port"])), timeout=10) as sock:
        sock.sendall(struct.pack("!I", len(startup) + 4) + startup)
        _until_ready(sock)
        sock.sendall(data)
        answer = _until_ready(sock)
        recorded()
        sock.sendall(_message(b"X", b""))
    assert b"C22012\0" in answer and answer.count(b"D\0") == 1


async def _asyncpg_workload(dsn: str) -> None:
    """asyncpg: fetchrow/fetchval run with a row limit (the regular path: a statement may
    span several Executes), fetch and execute without one."""
    con = await asyncpg.connect(dsn, server_settings={"application_name": "reports"})
    try:
        assert len(await con.fetch("SELECT id FROM lean_items WHERE id <= $1", 6)) == 6
        assert await con.fetchrow("SELECT name FROM lean_items WHERE id = $1", 2) is not None
        assert await con.fetchval("SELECT count(*) FROM lean_items") == 50
        assert await con.execute("UPDATE lean_items SET name = name WHERE id = 1") == "UPDATE 1"
        with pytest.raises(asyncpg.UndefinedTableError):
            await con.execute("SELECT * FROM lean_missing")  # (a Query: it runs, and fails)
    finally:
        await con.close()


def _relayed(events: list[Any]) -> list[Any]:
    return [e for e in events if e.source == "proxy"]


def _recorded(collector: Batched, count: int) -> int:
    """Until the proxy has recorded ``count`` statements (it forwards an answer before it
    records its statement): how many the recorder holds as lean tuples then."""
    pending = _runtime.recorder._pending
    settle(lambda: len(collector.events) + len(pending) >= count)
    return sum(type(held) is tuple for held in list(pending))


def _run_both_ways(collector: Batched, run: Any, count: int) -> tuple[list[Any], list[Any]]:
    """The events of ``run()`` (``count`` statements) on the lean path, then with an
    unbatched observer (which closes the lean path: every statement goes the regular way)."""
    recorder = _runtime.recorder
    assert recorder.lean
    assert run() > 0  # the lean path held statements as tuples
    _recorded(collector, count)
    lean = _relayed(collector.seen())
    collector.events.clear()
    unbatched = Unbatched()
    dbsight.add_observer(unbatched)
    try:
        assert not recorder.lean
        assert run() == 0
        _recorded(collector, count)
        regular = _relayed(collector.seen())
    finally:
        dbsight.remove_observer(unbatched)
    return lean, regular


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_relayed_statements_make_the_events_of_the_regular_path(
    proxy_factory: Any, pg_dsn: str, collector: Batched, pool_mode: str
) -> None:
    proxy = proxy_factory(pg_dsn, pool_mode=pool_mode)
    dsn = proxy.dsn(pg_dsn)
    lean, regular = _run_both_ways(collector, lambda: _sync_workload(dsn, collector), COUNT)
    assert len(lean) == len(regular) == COUNT
    assert [fields_but_timing(e) for e in lean] == [fields_but_timing(e) for e in regular]
    by_text = {e.sql: e for e in lean}
    literal = by_text["SELECT name FROM lean_items WHERE id = 4"]
    assert literal.normalized == "SELECT name FROM lean_items WHERE id = $1"
    assert literal.rows == 1 and literal.operation == "select"
    assert literal.tables == ("lean_items",) and literal.read_only
    assert (literal.application_name, literal.client_addr) == ("billing", "127.0.0.1")
    assert literal.database and literal.user and literal.error is None
    assert [e.error.sqlstate for e in lean if e.error is not None] == [
        "42P01", "42601", "22012", "25P02",
    ]  # fmt: skip
    # the name a statement ran with, though its event was made when the name had changed
    names = [e.application_name for e in lean[-7:]]
    assert names == ["billing", "billing", "billing-batch", "billing-batch", *["pipe"] * 3]
    for event in lean:
        assert event.duration_s > 0.0
        assert abs(event.started_at - time.time()) < 60


async def test_asyncpg_with_and_without_row_limits_makes_the_same_events(
    proxy: Any, pg_dsn: str, collector: Batched
) -> None:
    dsn = proxy.dsn(pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE lean_items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO lean_items SELECT g, 'item ' || g FROM generate_series(1, 50) g")
    recorder = _runtime.recorder

    def ours() -> list[Any]:
        settle(lambda: len([e for e in collector.seen() if "lean_" in e.sql]) >= 5)
        return [e for e in _relayed(collector.seen()) if "lean_" in e.sql]

    await _asyncpg_workload(dsn)
    lean = ours()
    collector.events.clear()
    unbatched = Unbatched()
    dbsight.add_observer(unbatched)
    assert not recorder.lean
    await _asyncpg_workload(dsn)
    regular = ours()
    dbsight.remove_observer(unbatched)
    assert len(lean) == len(regular) == 5
    assert [fields_but_timing(e) for e in lean] == [fields_but_timing(e) for e in regular]
    assert [e.rows for e in lean[:4]] == [6, 1, 1, 1]
    assert all(e.application_name == "reports" for e in lean)
    assert lean[4].error.sqlstate == "42P01"


def test_light_events_give_every_field_of_the_full_ones(
    proxy: Any, pg_dsn: str, fresh_runtime: Any
) -> None:
    dbsight.configure(dbsight.Settings(tracing_enabled=False))
    light = LeanBatched()
    dbsight.add_observer(light)
    try:
        assert _runtime.recorder.lean and _runtime.recorder._lean_events
        dsn = proxy.dsn(pg_dsn)
        _sync_workload(dsn, light)
        _recorded(light, COUNT)
        events = _relayed(light.seen())
        light.events.clear()
        unbatched = Unbatched()
        dbsight.add_observer(unbatched)
        _sync_workload(dsn, light)
        _recorded(light, COUNT)
        regular = _relayed(light.seen())
        dbsight.remove_observer(unbatched)
    finally:
        dbsight.remove_observer(light)
    assert any(type(e).__name__ == "LeanEvent" for e in events)
    names = [f.name for f in dataclasses.fields(QueryEvent) if f.name not in TIMING]
    assert len(events) == len(regular) == COUNT
    assert [[getattr(e, n) for n in names] for e in events] == [
        [getattr(e, n) for n in names] for e in regular
    ]


def test_every_relayed_statement_reaches_the_statistics(
    proxy: Any, pg_dsn: str, collector: Batched
) -> None:
    count = BATCH * 2 + 3
    with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
        conn.execute("CREATE TABLE lean_items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO lean_items SELECT g, 'item ' || g FROM generate_series(1, 99) g")
        client = psycopg.ClientCursor(conn)
        for i in range(count):
            client.execute("SELECT name FROM lean_items WHERE id = %s", (i % 99 + 1,))
    _recorded(collector, count + 2)
    (entry,) = [
        s for s in dbsight.stats.top(50)
        if s.normalized == "SELECT name FROM lean_items WHERE id = $1"
    ]  # fmt: skip
    assert entry.calls == count and entry.rows == count
    texts = [e.sql for e in collector.seen() if e.fingerprint == entry.fingerprint]
    assert len(texts) == count and texts[0] == "SELECT name FROM lean_items WHERE id = 1"


def test_a_slow_relayed_statement_reaches_the_slow_observers_at_once(
    proxy: Any, pg_dsn: str, collector: Batched
) -> None:
    slow = Slow()
    dbsight.add_observer(slow)
    try:
        recorder = _runtime.recorder
        assert recorder.lean and recorder.lean_cutoff == 0.2
        with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True, application_name="jobs") as conn:
            conn.execute("SELECT 1")
            conn.execute("SELECT pg_sleep(0.3)")
            settle(lambda: slow.events)  # at once, not with a batch: the one held first
            assert [e.sql for e in collector.events] == ["SELECT 1", "SELECT pg_sleep(0.3)"]
            conn.execute("SELECT 2")
            assert _recorded(collector, 3) == 1
    finally:
        dbsight.remove_observer(slow)
    (event,) = slow.events
    assert event.sql == "SELECT pg_sleep(0.3)" and event.duration_s >= 0.3
    assert event.application_name == "jobs" and event.source == "proxy"
    assert fields_but_timing(event) == fields_but_timing(collector.events[1])
    seen = [e.sql for e in _relayed(collector.seen())]
    assert seen == ["SELECT 1", "SELECT pg_sleep(0.3)", "SELECT 2"]  # in order
