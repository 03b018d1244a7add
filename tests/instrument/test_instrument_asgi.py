"""``dbsight.instrument(app)``: the ASGI middleware on a real FastAPI app, over HTTP (httpx's
ASGI transport and a real uvicorn server), with a real PostgreSQL behind an asyncpg pool."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import sys
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import APIRouter, BackgroundTasks, FastAPI, WebSocket
from fastapi.responses import StreamingResponse
from starlette.requests import Request
from starlette.responses import Response

import dbsight
from dbsight.core import RequestContext, current_request
from dbsight.export.logging import JsonFormatter
from dbsight.instrument._asgi import DbsightMiddleware, server_timing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
HEX32 = re.compile(r"[0-9a-f]{32}")
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]")


# -- dbsight's endpoints ------------------------------------------------------------------
class _StandInEndpoints:
    """Used only while ``dbsight.web`` is not importable yet: serves ``{prefix}/metrics``."""

    def __init__(self, prefix: str = "", **options: Any) -> None:
        self.prefix = prefix
        self.paths = {f"{prefix}/metrics"} if options.get("metrics", True) else set()

    def matches(self, path: str) -> bool:
        return path in self.paths

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from prometheus_client import generate_latest

        body = generate_latest(dbsight.get_runtime().registry)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain; version=0.0.4")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(autouse=True)
def endpoints_module(monkeypatch: pytest.MonkeyPatch) -> bool:
    """True when the real ``dbsight.web`` serves the endpoints, False with the stand-in."""
    try:
        import dbsight.web  # noqa: F401
        from dbsight.web import Endpoints  # noqa: F401

        return True
    except ImportError:
        stand_in = types.ModuleType("dbsight.web")
        stand_in.Endpoints = _StandInEndpoints  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "dbsight.web", stand_in)
        return False


# -- the app ---------------------------------------------------------------------------
@pytest.fixture
async def pool(pg_dsn: str, events: Any) -> AsyncIterator[Any]:
    """An instrumented asyncpg pool on a fresh database with a table ``items``."""
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    async with pool.acquire() as con:
        await con.execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);"
            "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 20) g;"
        )
    dbsight.instrument(pool)
    yield pool
    await pool.close()


class Probe:
    """What the endpoints saw from inside the request."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}
        self.background_done = asyncio.Event()
        self.gate = asyncio.Event()


def build_app(pool: Any, probe: Probe) -> FastAPI:
    app = FastAPI()

    @app.get("/users/{user_id}")
    async def get_user(user_id: int) -> dict[str, Any]:
        ctx = current_request()
        probe.seen["route"] = ctx.route if ctx else None
        probe.seen["active"] = dbsight.get_runtime().registry.get_sample_value(
            "http_server_active_requests", {"method": "GET"}
        )
        name = await pool.fetchval("SELECT name FROM items WHERE id = $1", user_id)
        return {"id": user_id, "name": name}

    @app.get("/boom")
    async def boom() -> None:
        await pool.fetchval("SELECT 1")
        raise RuntimeError("boom")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first,"
            value = await pool.fetchval("SELECT count(*) FROM items")
            yield f"count={value}".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/gated-stream")
    async def gated_stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first"
            await probe.gate.wait()  # the client has the first chunk: nothing was buffered
            yield b",second"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/background")
    async def background(tasks: BackgroundTasks) -> dict[str, str]:
        async def later() -> None:
            ctx = current_request()
            probe.seen["background_request"] = ctx.request_id if ctx else None
            await pool.fetchval("SELECT max(id) FROM items")
            probe.background_done.set()

        tasks.add_task(later)
        return {"status": "queued"}

    @app.get("/wait-for-disconnect")
    async def wait_for_disconnect(request: Request) -> Response:
        probe.seen["waiting"] = True
        while not await request.is_disconnected():
            await asyncio.sleep(0.01)
        probe.seen["disconnected"] = True
        return Response("too late")

    router = APIRouter(prefix="/api")

    @router.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, Any]:
        probe.seen["route"] = current_request().route  # type: ignore[union-attr]
        return {"name": await pool.fetchval("SELECT name FROM items WHERE id = $1", item_id)}

    app.include_router(router, prefix="/v2")

    sub = FastAPI()

    @sub.get("/things/{thing_id}")
    async def get_thing(thing_id: int) -> dict[str, Any]:
        probe.seen["route"] = current_request().route  # type: ignore[union-attr]
        return {"name": await pool.fetchval("SELECT name FROM items WHERE id = $1", thing_id)}

    app.mount("/v1", sub)
    return app


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def app(pool: Any, probe: Probe) -> FastAPI:
    return build_app(pool, probe)


def client_for(app: Any, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


class AccessLog(logging.Handler):
    """Formats ``dbsight.access`` (and ``dbsight.n_plus_one``) records with the JsonFormatter."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def of(self, path: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("path") == path]


@pytest.fixture
def access_log() -> Iterator[AccessLog]:
    handler = AccessLog()
    logger = logging.getLogger("dbsight.access")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def sample(name: str, **labels: str) -> float | None:
    return dbsight.get_runtime().registry.get_sample_value(name, labels)


def requests_total(route: str, status: int, method: str = "GET") -> float:
    value = sample("http_server_requests_total", method=method, route=route, status=str(status))
    return value or 0.0


def parse_server_timing(value: str) -> dict[str, dict[str, str]]:
    metrics: dict[str, dict[str, str]] = {}
    for item in value.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        metrics[name] = dict(param.split("=", 1) for param in params)
    return metrics


# -- headers ---------------------------------------------------------------------------
def test_server_timing_value() -> None:
    ctx = RequestContext("r", queries=1, db_time_s=0.00234, cache_time_s=0.0)
    assert server_timing(ctx, 0.01512) == b'db;dur=2.3;desc="1 query", cache;dur=0.0, app;dur=15.1'
    ctx = RequestContext("r", queries=3, db_time_s=0.0, cache_time_s=0.00096)
    assert server_timing(ctx, 0.002) == b'db;dur=0.0;desc="3 queries", cache;dur=1.0, app;dur=2.0'


async def test_request_id_kept_when_valid_and_made_otherwise(app: FastAPI) -> None:
    dbsight.instrument(app)
    async with client_for(app) as client:
        kept = await client.get("/users/1", headers={"X-Request-ID": "req-42.abc:def"})
        made = await client.get("/users/1")
        long = await client.get("/users/1", headers={"X-Request-ID": "a" * 129})
        unsafe = await client.get("/users/1", headers={"X-Request-ID": 'x"; DROP'})
    assert kept.status_code == 200
    assert kept.headers["x-request-id"] == "req-42.abc:def"
    for response in (made, long, unsafe):
        assert HEX32.fullmatch(response.headers["x-request-id"])
    assert len({made.headers["x-request-id"], long.headers["x-request-id"]}) == 2


async def test_traceparent_continued_or_started(app: FastAPI, events: Any) -> None:
    dbsight.instrument(app)
    incoming = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
    async with client_for(app) as client:
        continued = await client.get("/users/1", headers={"traceparent": incoming})
        started = await client.get("/users/2")
        invalid = [
            await client.get("/users/3", headers={"traceparent": value})
            for value in (
                f"ff-{TRACE_ID}-{PARENT_SPAN}-01",  # version ff is forbidden
                f"00-{'0' * 32}-{PARENT_SPAN}-01",  # zero trace id
                f"00-{TRACE_ID}-{'0' * 16}-01",  # zero parent id
                f"00-{TRACE_ID.upper()}-{PARENT_SPAN}-01",  # not lowercase hex
                f"00-{TRACE_ID}-{PARENT_SPAN}",  # no flags
            )
        ]
    match = TRACEPARENT.fullmatch(continued.headers["traceparent"])
    assert match is not None and match.group(1) == TRACE_ID
    assert match.group(2) != PARENT_SPAN  # this request's own span id
    # the query of that request carries the trace (tracing off: the request's ids)
    query = next(e for e in events.events if e.request_id == continued.headers["x-request-id"])
    assert (query.trace_id, query.span_id) == (TRACE_ID, match.group(2))
    new_ids = set()
    for response in (started, *invalid):
        found = TRACEPARENT.fullmatch(response.headers["traceparent"])
        assert found is not None and found.group(1) != TRACE_ID
        new_ids.add(found.group(1))
    assert len(new_ids) == 1 + len(invalid)


async def test_server_span_is_the_parent_of_the_query_spans(
    pool: Any, probe: Probe, span_exporter: Any, access_log: AccessLog
) -> None:
    exporter, _ = span_exporter
    app = build_app(pool, probe)
    dbsight.instrument(app)
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01", "tracestate": "vendor=abc"}
    async with client_for(app) as client:
        response = await client.get("/users/5?verbose=1", headers=headers)
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    server = next(s for s in spans if s.kind.name == "SERVER")
    assert server.name == "GET /users/{user_id}"
    assert server.context.trace_id == int(TRACE_ID, 16)
    assert server.parent is not None and server.parent.span_id == int(PARENT_SPAN, 16)
    assert server.context.trace_state.get("vendor") == "abc"
    assert server.attributes["http.route"] == "/users/{user_id}"
    assert server.attributes["url.path"] == "/users/5"
    assert server.attributes["http.response.status_code"] == 200
    queries = [s for s in spans if s.kind.name == "CLIENT"]
    assert queries and all(q.parent.span_id == server.context.span_id for q in queries)
    server_span_id = f"{server.context.span_id:016x}"
    assert response.headers["traceparent"] == f"00-{TRACE_ID}-{server_span_id}-01"
    [line] = access_log.of("/users/5")
    assert (line["trace_id"], line["span_id"]) == (TRACE_ID, server_span_id)


async def test_new_trace_gets_a_root_server_span(
    pool: Any, probe: Probe, span_exporter: Any
) -> None:
    exporter, _ = span_exporter
    app = build_app(pool, probe)
    dbsight.instrument(app)
    async with client_for(app, raise_app_exceptions=False) as client:
        ok = await client.get("/users/1")
        failed = await client.get("/boom")
    servers = {
        s.attributes["http.route"]: s
        for s in exporter.get_finished_spans()
        if s.kind.name == "SERVER"
    }
    assert servers["/users/{user_id}"].parent is None
    trace_id = TRACEPARENT.fullmatch(ok.headers["traceparent"]).group(1)  # type: ignore[union-attr]
    assert servers["/users/{user_id}"].context.trace_id == int(trace_id, 16)
    assert failed.status_code == 500
    assert servers["/boom"].status.status_code.name == "ERROR"
    assert servers["/boom"].attributes["error.type"] == "RuntimeError"


async def test_unsampled_new_trace_makes_no_spans_but_has_ids(
    pool: Any, probe: Probe, configure_dbsight: Any
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    events = configure_dbsight(tracer_provider=provider, trace_sample_rate=0.0)
    app = build_app(pool, probe)
    dbsight.instrument(app)
    async with client_for(app) as client:
        response = await client.get("/users/1")
        sampled_upstream = await client.get(
            "/users/2", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01"}
        )
    provider.shutdown()
    match = TRACEPARENT.fullmatch(response.headers["traceparent"])
    assert match is not None and response.headers["traceparent"].endswith("-00")
    query = next(e for e in events.events if e.request_id == response.headers["x-request-id"])
    assert (query.trace_id, query.span_id) == (match.group(1), match.group(2))
    # a caller's sampled trace is followed whatever the rate for new traces
    spans = exporter.get_finished_spans()
    assert {s.context.trace_id for s in spans} == {int(TRACE_ID, 16)}
    assert {s.kind.name for s in spans} == {"SERVER", "CLIENT"}


async def test_fastapi_native_server_span_is_used_not_nested(
    pool: Any, probe: Probe, span_exporter: Any
) -> None:
    exporter, _ = span_exporter
    from dbsight.export.tracing import TracingSink

    [tracing] = [s for s in dbsight.get_runtime().sinks if isinstance(s, TracingSink)]
    provider = tracing.provider  # the one given to configure()
    app = FastAPI(telemetry={"tracer_provider": provider, "metrics": False, "logs": False})
    native = build_app(pool, probe)
    app.router.routes.extend(native.router.routes)
    dbsight.instrument(app)
    async with client_for(app) as client:
        response = await client.get(
            "/users/1", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01"}
        )
    spans = exporter.get_finished_spans()
    [server] = [s for s in spans if s.kind.name == "SERVER"]  # FastAPI's, not a second one
    assert server.context.trace_id == int(TRACE_ID, 16)
    span_id = f"{server.context.span_id:016x}"
    assert response.headers["traceparent"] == f"00-{TRACE_ID}-{span_id}-01"
    [query] = [s for s in spans if s.kind.name == "CLIENT"]
    assert query.context.trace_id == int(TRACE_ID, 16)


async def test_server_timing_counts_the_queries_before_the_response(
    app: FastAPI, events: Any
) -> None:
    dbsight.instrument(app)
    async with client_for(app) as client:
        response = await client.get("/users/3")
    timing = parse_server_timing(response.headers["server-timing"])
    assert set(timing) == {"db", "cache", "app"}
    request_id = response.headers["x-request-id"]
    queries = [e for e in events.events if e.request_id == request_id]
    assert len(queries) >= 1
    noun = "query" if len(queries) == 1 else "queries"
    assert timing["db"]["desc"] == f'"{len(queries)} {noun}"'
    db_ms = float(timing["db"]["dur"])
    assert db_ms == pytest.approx(sum(e.duration_s for e in queries) * 1000, abs=0.051)
    assert float(timing["app"]["dur"]) >= db_ms


# -- routes and metrics ------------------------------------------------------------------
async def test_route_templates_label_metrics_and_queries(
    app: FastAPI, probe: Probe, events: Any
) -> None:
    dbsight.instrument(app)
    async with client_for(app) as client:
        user = await client.get("/users/7")
        assert probe.seen["route"] == "/users/{user_id}"
        item = await client.get("/v2/api/items/8")
        assert probe.seen["route"] == "/v2/api/items/{item_id}"
        thing = await client.get("/v1/things/9")
        assert probe.seen["route"] == "/v1/things/{thing_id}"
        not_allowed = await client.post("/users/7")
        missing = [await client.get(path) for path in ("/nope", "/v1/nope", "/users/7/x")]
    assert [r.status_code for r in (user, item, thing, not_allowed)] == [200, 200, 200, 405]
    assert {r.status_code for r in missing} == {404}
    assert requests_total("/users/{user_id}", 200) == 1
    assert requests_total("/v2/api/items/{item_id}", 200) == 1
    assert requests_total("/v1/things/{thing_id}", 200) == 1
    assert requests_total("/users/{user_id}", 405, method="POST") == 1
    assert requests_total("<unmatched>", 404) == 3
    count = sample(
        "http_server_request_duration_seconds_count", method="GET", route="/v1/things/{thing_id}"
    )
    assert count == 1
    # the queries carried the template of their request, never the raw path
    routes = {e.route for e in events.events if e.request_id is not None}
    assert routes == {"/users/{user_id}", "/v2/api/items/{item_id}", "/v1/things/{thing_id}"}


async def test_route_label_values_are_guarded(
    pool: Any, probe: Probe, configure_dbsight: Any
) -> None:
    configure_dbsight(metrics_max_label_values=2)
    app = build_app(pool, probe)
    dbsight.instrument(app)
    async with client_for(app) as client:
        for path in ("/users/1", "/v2/api/items/1", "/v1/things/1"):
            assert (await client.get(path)).status_code == 200
    assert requests_total("/users/{user_id}", 200) == 1
    assert requests_total("/v2/api/items/{item_id}", 200) == 1
    assert requests_total("other", 200) == 1


async def test_active_requests_gauge_goes_back_to_zero(app: FastAPI, probe: Probe) -> None:
    dbsight.instrument(app)
    async with client_for(app, raise_app_exceptions=False) as client:
        await client.get("/users/1")
        assert probe.seen["active"] == 1  # read inside the request
        await client.get("/boom")
        await client.get("/stream")
        await client.get("/nope")
    assert sample("http_server_active_requests", method="GET") == 0


# -- streaming, background tasks, errors ----------------------------------------------------
async def test_streaming_response_streams_and_its_queries_are_logged(
    app: FastAPI, access_log: AccessLog, events: Any
) -> None:
    dbsight.instrument(app)
    async with client_for(app) as client:
        async with client.stream("GET", "/stream") as response:
            chunks = [chunk async for chunk in response.aiter_raw()]
    assert b"".join(chunks) == b"first,count=20"
    # the query ran after the headers left: in the access log, not in Server-Timing
    assert parse_server_timing(response.headers["server-timing"])["db"]["desc"] == '"0 queries"'
    [line] = access_log.of("/stream")
    assert line["queries"] == 1 and line["status"] == 200
    [query] = [e for e in events.events if e.request_id == response.headers["x-request-id"]]
    assert query.route == "/stream"


async def test_background_task_runs_in_the_request_scope(
    app: FastAPI, probe: Probe, access_log: AccessLog
) -> None:
    dbsight.instrument(app)
    async with client_for(app) as client:
        response = await client.get("/background")
    assert response.json() == {"status": "queued"}
    await asyncio.wait_for(probe.background_done.wait(), 10)
    request_id = response.headers["x-request-id"]
    assert probe.seen["background_request"] == request_id
    [line] = access_log.of("/background")
    assert line["queries"] == 1  # the background task's query
    assert line["request_id"] == request_id


async def test_exception_propagates_and_counts_as_500(
    app: FastAPI, access_log: AccessLog
) -> None:
    dbsight.instrument(app)
    async with client_for(app) as client:
        with pytest.raises(RuntimeError, match="boom"):
            await client.get("/boom")
    async with client_for(app, raise_app_exceptions=False) as client:
        response = await client.get("/boom")
    # ServerErrorMiddleware answered 500 inside the middleware: the answer has our headers
    assert response.status_code == 500
    assert HEX32.fullmatch(response.headers["x-request-id"])
    assert requests_total("/boom", 500) == 2
    lines = access_log.of("/boom")
    assert [line["status"] for line in lines] == [500, 500]
    assert all(line["queries"] == 1 for line in lines)


async def test_access_log_line_fields(app: FastAPI, access_log: AccessLog, events: Any) -> None:
    dbsight.instrument(app)
    async with client_for(app) as client:
        response = await client.get(
            "/users/4?token=secret", headers={"X-Request-ID": "abc-123"}
        )
    [line] = [line for line in access_log.lines if line.get("request_id") == "abc-123"]
    assert line["logger"] == "dbsight.access" and line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["route"] == "/users/{user_id}"
    assert line["path"] == "/users/4"  # no query string
    assert "secret" not in json.dumps(line)
    assert line["status"] == 200
    assert line["duration_ms"] > 0
    queries = [e for e in events.events if e.request_id == "abc-123"]
    assert line["queries"] == len(queries)
    assert line["db_ms"] == pytest.approx(sum(e.duration_s for e in queries) * 1000, abs=0.01)
    assert line["cache_ms"] == 0
    match = TRACEPARENT.fullmatch(response.headers["traceparent"])
    assert match is not None
    assert (line["trace_id"], line["span_id"]) == (match.group(1), match.group(2))


async def test_access_log_is_sampled_but_never_server_errors(
    pool: Any, probe: Probe, configure_dbsight: Any, access_log: AccessLog
) -> None:
    configure_dbsight(log_sample_rate=0.0)
    app = build_app(pool, probe)
    dbsight.instrument(app)
    async with client_for(app, raise_app_exceptions=False) as client:
        for _ in range(3):
            assert (await client.get("/users/1")).status_code == 200
        assert (await client.get("/boom")).status_code == 500
    assert [line["path"] for line in access_log.lines] == ["/boom"]
    assert requests_total("/users/{user_id}", 200) == 3  # metrics are never sampled


async def test_lifespan_passes_through(events: Any) -> None:
    phases: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        phases.append("startup")
        yield {"greeting": "hello"}
        phases.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/greet")
    async def greet(request: Request) -> dict[str, str]:
        return {"greeting": request.state.greeting}

    dbsight.instrument(app)
    port, server, task = await start_uvicorn(app)
    try:
        assert phases == ["startup"]
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/greet")
        assert response.json() == {"greeting": "hello"}
        assert "x-request-id" in response.headers
    finally:
        await stop_uvicorn(server, task)
    assert phases == ["startup", "shutdown"]


# -- the endpoints ---------------------------------------------------------------------
async def test_endpoints_are_served_in_front_of_the_app(
    app: FastAPI, endpoints_module: bool
) -> None:
    handle = dbsight.instrument(app, prefix="/ops")
    async with client_for(app) as client:
        await client.get("/users/1")
        metrics = await client.get("/ops/metrics")
        app_route = await client.get("/metrics")  # not dbsight's: the app's own 404
    assert metrics.status_code == 200
    assert HEX32.fullmatch(metrics.headers["x-request-id"])
    assert TRACEPARENT.fullmatch(metrics.headers["traceparent"])
    assert "http_server_requests_total" in metrics.text
    assert app_route.status_code == 404
    assert requests_total("/ops/metrics", 200) == 1
    handle.uninstrument()


async def test_health_checks_option_reaches_the_health_endpoint(
    app: FastAPI, endpoints_module: bool
) -> None:
    if not endpoints_module:
        pytest.skip("dbsight.web is not there yet: the stand-in serves /metrics only")
    from dbsight.ops.health import HealthCheck

    calls: list[str] = []

    def custom() -> bool:
        calls.append("custom")
        return True

    dbsight.instrument(app, health_checks=[HealthCheck("custom", custom)])
    async with client_for(app) as client:
        health = await client.get("/health")
        live = await client.get("/healthz")
    assert health.status_code == 200 and live.status_code == 200
    assert health.json()["checks"]["custom"]["status"] == "ok"
    assert calls == ["custom"]
    assert HEX32.fullmatch(health.headers["x-request-id"])
    assert requests_total("/health", 200) == 1 and requests_total("/healthz", 200) == 1


async def test_no_endpoints_when_all_are_off(app: FastAPI) -> None:
    dbsight.instrument(app, metrics=False, summary=False, health=False)
    async with client_for(app) as client:
        response = await client.get("/metrics")
    assert response.status_code == 404
    assert requests_total("<unmatched>", 404) == 1


async def test_unknown_option_is_refused(app: FastAPI) -> None:
    with pytest.raises(TypeError, match="unknown option"):
        dbsight.instrument(app, explain=False)
    with pytest.raises(ValueError, match="prefix"):
        dbsight.instrument(app, prefix="ops")


# -- instrument / uninstrument -----------------------------------------------------------
async def test_uninstrument_restores_an_app_not_started_yet(app: FastAPI) -> None:
    assert app.middleware_stack is None
    handle = dbsight.instrument(app)
    assert dbsight.instrument(app) is handle
    assert app.middleware_stack is None  # add_middleware still allowed
    async with client_for(app) as client:
        assert "x-request-id" in (await client.get("/users/1")).headers
    assert isinstance(app.middleware_stack, DbsightMiddleware)
    inner = app.middleware_stack.app
    handle.uninstrument()
    assert not handle.active
    assert "build_middleware_stack" not in vars(app)
    assert app.middleware_stack is inner
    async with client_for(app) as client:
        response = await client.get("/users/1")
    assert response.status_code == 200
    assert "x-request-id" not in response.headers and "server-timing" not in response.headers


async def test_uninstrument_restores_a_started_app(app: FastAPI) -> None:
    async with client_for(app) as client:
        await client.get("/users/1")
    stack = app.middleware_stack
    assert stack is not None
    handle = dbsight.instrument(app)
    assert isinstance(app.middleware_stack, DbsightMiddleware)
    async with client_for(app) as client:
        response = await client.get("/users/1")
    assert "server-timing" in response.headers
    handle.uninstrument()
    assert app.middleware_stack is stack
    assert "build_middleware_stack" not in vars(app)
    handle.uninstrument()  # idempotent
    async with client_for(app) as client:
        assert "x-request-id" not in (await client.get("/users/1")).headers
    # and it can be instrumented again afterwards
    again = dbsight.instrument(app)
    assert again is not handle and isinstance(app.middleware_stack, DbsightMiddleware)
    again.uninstrument()


async def test_disabled_dbsight_passes_requests_through(
    pool: Any, probe: Probe, configure_dbsight: Any
) -> None:
    configure_dbsight(enabled=False)
    app = build_app(pool, probe)
    dbsight.instrument(app, metrics=False, summary=False, health=False)
    async with client_for(app) as client:
        response = await client.get("/users/1")
    assert response.status_code == 200
    assert "x-request-id" not in response.headers
    assert probe.seen["route"] is None


# -- a real server ------------------------------------------------------------------------
async def start_uvicorn(app: Any) -> tuple[int, uvicorn.Server, asyncio.Task[None]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    # the signal handlers stay the test runner's
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    assert server.started
    return port, server, task


async def stop_uvicorn(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[tuple[str, FastAPI]]:
    dbsight.instrument(app)
    port, server, task = await start_uvicorn(app)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        await stop_uvicorn(server, task)


async def test_over_a_real_uvicorn_server(
    served: tuple[str, FastAPI], probe: Probe, access_log: AccessLog, events: Any
) -> None:
    base_url, _ = served
    incoming = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
    async with httpx.AsyncClient(base_url=base_url) as client:
        user = await client.get(
            "/users/2", headers={"traceparent": incoming, "X-Request-ID": "u-1"}
        )
        thing = await client.get("/v1/things/3")
        async with client.stream("GET", "/gated-stream") as streamed:
            chunks = streamed.aiter_bytes()
            first = await anext(chunks)
            probe.gate.set()
            body = first + b"".join([chunk async for chunk in chunks])
        failed = await client.get("/boom")
    assert user.json() == {"id": 2, "name": "item 2"}
    assert user.headers["x-request-id"] == "u-1"
    assert user.headers["traceparent"].split("-")[1] == TRACE_ID
    assert "db;dur=" in user.headers["server-timing"]
    assert thing.status_code == 200
    assert first == b"first" and body == b"first,second"
    assert failed.status_code == 500 and HEX32.fullmatch(failed.headers["x-request-id"])
    assert requests_total("/users/{user_id}", 200) == 1
    assert requests_total("/v1/things/{thing_id}", 200) == 1
    assert requests_total("/boom", 500) == 1
    assert sample("http_server_active_requests", method="GET") == 0
    [line] = access_log.of("/users/2")
    assert line["request_id"] == "u-1" and line["trace_id"] == TRACE_ID
    assert [e.route for e in events.events if e.request_id == "u-1"] == ["/users/{user_id}"]


async def test_client_disconnect_over_uvicorn(
    served: tuple[str, FastAPI], probe: Probe, access_log: AccessLog
) -> None:
    base_url, _ = served
    async with httpx.AsyncClient(base_url=base_url) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/wait-for-disconnect", timeout=httpx.Timeout(5, read=0.3))
    for _ in range(500):
        if access_log.of("/wait-for-disconnect"):
            break
        await asyncio.sleep(0.01)
    assert probe.seen.get("disconnected") is True
    [line] = access_log.of("/wait-for-disconnect")
    assert line["status"] == 499 and line["client_disconnected"] is True
    assert requests_total("/wait-for-disconnect", 499) == 1
    assert sample("http_server_active_requests", method="GET") == 0


async def test_taken_metric_names_do_not_break_the_app(pool: Any, probe: Probe) -> None:
    """The application's registry already has an ``http_server_requests_total`` of its
    own: dbsight's HTTP metrics cannot register, everything else goes on."""
    from prometheus_client import CollectorRegistry, Counter

    from dbsight import _runtime

    registry = CollectorRegistry()
    Counter("http_server_requests", "the app's own", registry=registry)
    dbsight.configure(dbsight.Settings(explain_slow_queries=False), registry=registry)
    try:
        app = build_app(pool, probe)
        handle = dbsight.instrument(app, metrics=False, summary=False, health=False)
        async with client_for(app) as client:
            first = await client.get("/users/1")
            second = await client.get("/users/2")
        assert [first.status_code, second.status_code] == [200, 200]
        assert "server-timing" in first.headers and probe.seen["route"] == "/users/{user_id}"
        # tried once, not on every request
        assert _runtime.recorder.failures.counts["dbsight.asgi"] == 1
        handle.uninstrument()
    finally:
        _runtime.recorder.failures.counts.pop("dbsight.asgi", None)
        _runtime.reset()


async def test_the_apps_own_request_id_header_is_not_doubled(fresh_runtime: Any) -> None:
    app = FastAPI()

    @app.get("/own")
    async def own() -> Response:
        return Response("x", headers={"X-Request-ID": "from-the-app"})

    dbsight.instrument(app, metrics=False, summary=False, health=False)
    try:
        async with client_for(app) as client:
            response = await client.get("/own", headers={"X-Request-ID": "incoming"})
        assert response.headers.get_list("x-request-id") == ["from-the-app"]
        assert "traceparent" in response.headers
    finally:
        dbsight.instrument(app).uninstrument()


# -- websockets ------------------------------------------------------------------------------
async def test_websocket_passes_through_untouched(events: Any) -> None:
    app = FastAPI()
    seen: dict[str, Any] = {}

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        seen["request"] = current_request()
        await websocket.accept()
        await websocket.send_text("echo " + await websocket.receive_text())
        await websocket.close()

    dbsight.instrument(app)
    # an ASGI websocket session, as a server drives it
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outgoing: list[dict[str, Any]] = []
    for message in (
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "hello"},
    ):
        incoming.put_nowait(message)

    async def send(message: Any) -> None:
        outgoing.append(message)

    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "path": "/ws",
        "raw_path": b"/ws", "root_path": "", "query_string": b"", "headers": [],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000), "subprotocols": [],
    }
    await asyncio.wait_for(app(scope, incoming.get, send), 10)
    assert [m["type"] for m in outgoing] == [
        "websocket.accept", "websocket.send", "websocket.close"
    ]
    assert outgoing[0].get("headers") in (None, [])  # no headers of ours on the handshake
    assert outgoing[1]["text"] == "echo hello"
    assert seen == {"request": None}  # no request scope, no metrics
    assert not sample("http_server_active_requests", method="GET")
