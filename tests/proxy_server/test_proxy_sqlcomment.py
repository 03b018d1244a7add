"""The proxy joins statements to the request that sent them, from their sqlcommenter comment:
an application instrumented with ``sqlcommenter=full`` (FastAPI + asyncpg) talking through a
real `dbsight proxy`, and comments written by hand in psql. The route, request id and trace
reach the proxy's events, statistics, workload capture and spans."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psycopg
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dbsight
from dbsight.core import QueryObserver
from dbsight.embedded.postgres import pg_program
from dbsight.instrument import uninstrument_all

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


class Events(QueryObserver):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def after_query(self, ctx: Any, event: Any) -> None:
        self.events.append(event)

    on_error = after_query

    def proxy(self, text: str) -> list[Any]:
        """The proxy's events of statements containing ``text``."""
        return [e for e in self.events if e.source == "proxy" and text in e.sql]


def settle(condition: Any, timeout: float = 10.0) -> None:
    """The proxy forwards the server's answer before it records it."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the proxy never recorded the statements"
        time.sleep(0.01)


@pytest.fixture
def traced(fresh_runtime: Any) -> Iterator[tuple[Events, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    dbsight.configure(
        dbsight.Settings(sqlcommenter="full", explain_slow_queries=False),
        tracer_provider=provider,
    )
    events = Events()
    dbsight.add_observer(events)
    yield events, exporter
    uninstrument_all()
    provider.shutdown()


def captured(proxy: Any, path: Path) -> list[dict[str, Any]]:
    """The statement records of the proxy's capture, its buffer flushed first."""

    async def flush() -> None:
        proxy.server.capture.flush()

    proxy.call(flush())
    return [
        record
        for record in (json.loads(line) for line in path.read_text().splitlines())
        if record["type"] == "statement"
    ]


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
async def test_an_app_with_sqlcommenter_full_is_joined_through_the_proxy(
    proxy_factory: Any, pg_dsn: str, traced: Any, tmp_path: Path, pool_mode: str
) -> None:
    events, exporter = traced
    capture = tmp_path / "workload.jsonl"
    proxy = proxy_factory(pg_dsn, pool_mode=pool_mode, capture=capture)
    pool = await asyncpg.create_pool(proxy.dsn(pg_dsn), min_size=1, max_size=2)
    try:
        dbsight.instrument(pool)
        app = FastAPI()

        @app.get("/orders/{order_id}")
        async def order(order_id: int) -> int:
            return int(await pool.fetchval("SELECT $1::int + 1 AS next_order", order_id))

        dbsight.instrument(app)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            response = await client.get("/orders/41", headers={"X-Request-ID": "req-41"})
        assert response.json() == 42
    finally:
        await pool.close()
    settle(lambda: events.proxy("next_order"))
    trace_id = response.headers["traceparent"].split("-")[1]

    [relayed] = events.proxy("next_order")
    assert (relayed.route, relayed.request_id, relayed.trace_id) == (
        "/orders/{order_id}", "req-41", trace_id,
    )
    [own] = [e for e in events.events if e.source == "asyncpg" and "next_order" in e.sql]
    assert relayed.fingerprint == own.fingerprint  # the comment is not part of the statement
    assert relayed.normalized == own.normalized == "SELECT $1::int + $2 AS next_order"
    assert "/*" not in relayed.sql

    # the proxy's span is a child of the application's span for the statement
    spans = exporter.get_finished_spans()
    [app_span] = [s for s in spans if s.attributes.get("dbsight.source") == "asyncpg"
                  and s.attributes.get("dbsight.fingerprint") == own.fingerprint]
    [proxy_span] = [s for s in spans if s.attributes.get("dbsight.source") == "proxy"
                    and s.attributes.get("dbsight.fingerprint") == own.fingerprint]
    assert proxy_span.parent is not None
    assert proxy_span.parent.span_id == app_span.context.span_id
    assert proxy_span.context.trace_id == app_span.context.trace_id == int(trace_id, 16)
    assert relayed.span_id == f"{proxy_span.context.span_id:016x}"

    [record] = [r for r in captured(proxy, capture) if r["fingerprint"] == own.fingerprint]
    assert (record["route"], record["request_id"], record["trace_id"]) == (
        "/orders/{order_id}", "req-41", trace_id,
    )


def psql(proxy: Any, pg_dsn: str, *statements: str) -> None:
    command = [pg_program("psql"), proxy.dsn(pg_dsn), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    for statement in statements:
        command += ["-c", statement]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_comments_written_by_hand_in_psql(
    proxy_factory: Any, pg_dsn: str, fresh_runtime: Any, tmp_path: Path
) -> None:
    dbsight.configure(dbsight.Settings(tracing_enabled=False, explain_slow_queries=False))
    events = Events()
    dbsight.add_observer(events)
    capture = tmp_path / "workload.jsonl"
    proxy = proxy_factory(pg_dsn, capture=capture)
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    psql(
        proxy, pg_dsn,
        f"SELECT 1 AS trailing /*request_id='abc',route='%2Fx',traceparent='{traceparent}'*/",
        f"SELECT 2 AS trailing /*route='%2Fx'*/;",
        "/*controller='reports',action='daily',application='billing'*/ SELECT count(*) AS leading FROM pg_class",
        "SELECT count(*) AS spaced FROM pg_type /* route = 'it\\'s%20here' , framework='flask%3A3.0' */",
        "SELECT count(*) AS other FROM pg_proc /* not a sqlcommenter comment */",
        "SELECT count(*) AS forged FROM pg_am /*request_id='a b',traceparent='00-zz-01'*/",
    )
    settle(lambda: events.proxy("forged"))

    [first] = events.proxy("SELECT 1")
    assert (first.route, first.request_id, first.trace_id, first.span_id) == (
        "/x", "abc", TRACE_ID, PARENT_ID,
    )
    assert first.normalized == "SELECT $1 AS trailing"
    [second] = events.proxy("SELECT 2")
    assert (second.route, second.request_id, second.trace_id) == ("/x", None, None)
    assert first.fingerprint == second.fingerprint
    [leading] = events.proxy("leading")
    assert (leading.route, leading.app) == ("reports#daily", "billing")
    assert leading.normalized == "SELECT count(*) AS leading FROM pg_class"
    [spaced] = events.proxy("spaced")
    assert spaced.route == "it's here"
    [other] = events.proxy("other")
    assert other.route is None and other.request_id is None
    [forged] = events.proxy("forged")  # values of the wrong shape are not taken
    assert forged.request_id is None and forged.trace_id is None

    [stats] = [s for s in dbsight.stats.top(50) if s.fingerprint == first.fingerprint]
    assert stats.routes == {"/x": 2}

    records = {r["fingerprint"]: r for r in captured(proxy, capture)}
    assert records[first.fingerprint]["route"] == "/x"
    assert records[leading.fingerprint]["route"] == "reports#daily"
    assert "route" not in records[other.fingerprint]


def test_a_pyformat_client_sending_a_comment(
    proxy_factory: Any, pg_dsn: str, fresh_runtime: Any
) -> None:
    """psycopg with parameters (server-side binding), the comment's ``%`` written as ``%%``
    by an application that escapes it for the driver."""
    dbsight.configure(dbsight.Settings(tracing_enabled=False, explain_slow_queries=False))
    events = Events()
    dbsight.add_observer(events)
    proxy = proxy_factory(pg_dsn)
    with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
        conn.execute(
            "SELECT %s::int AS bound /*request_id='r-1',route='%%2Fitems%%2F%%7Bid%%7D'*/", (7,)
        )
    settle(lambda: events.proxy("bound"))
    [event] = events.proxy("bound")
    assert (event.route, event.request_id) == ("/items/{id}", "r-1")
