"""dbsight's endpoints through httpx: metrics, summary, health, liveness and readiness,
against real PostgreSQL (and a private cluster stopped and started again for readiness)."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy
from prometheus_client.parser import text_string_to_metric_families

import dbsight
from dbsight.core import request_scope
from dbsight.instrument import live_handles
from dbsight.ops import HealthCheck, health_checks
from dbsight.stats import report_n_plus_one
from dbsight.web import Endpoints


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture
def configured(fresh_runtime: Any) -> Iterator[Any]:
    runtime = dbsight.configure(
        dbsight.Settings(
            service_name="shop",
            explain_slow_queries=False,
            slow_query_threshold_ms=0.001,  # every statement is "slow": the summary shows them
            n_plus_one_threshold=3,
            n_plus_one_min_total_ms=0,
        )
    )
    before = set(map(id, live_handles()))
    yield runtime
    health_checks.clear()
    for handle in live_handles():
        if id(handle) not in before:
            handle.uninstrument()


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[Any]:
    created = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    yield created
    await created.close()


# -- metrics and summary -----------------------------------------------------------------------
async def test_metrics_exposes_the_runtime_registry(configured: Any, pool: Any) -> None:
    dbsight.instrument(pool)
    for n in range(3):
        await pool.fetchval("SELECT $1::int", n)
    async with _client(Endpoints()) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert response.headers["cache-control"] == "no-store"
    ops = _samples(response.text, "db_client_operations_total")
    key = (("operation", "select"), ("outcome", "ok"), ("system", "postgresql"), ("table", ""))
    assert ops[key] == 3


async def test_metrics_speaks_openmetrics_when_asked(configured: Any) -> None:
    async with _client(Endpoints()) as client:
        response = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


async def test_summary_shows_top_slow_and_n_plus_one(configured: Any, pool: Any) -> None:
    dbsight.instrument(pool)
    with request_scope(route="/orders/{id}") as request:
        for n in range(4):  # the same shape, once per "row": an N+1
            await pool.fetchval("SELECT $1::int + 1", n)
        report_n_plus_one(configured, request)
    async with _client(Endpoints()) as client:
        response = await client.get("/metrics/summary")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    summary = response.json()
    assert set(summary) == {
        "service", "generated_at", "workers", "totals", "top", "slow", "n_plus_one",
    }  # fmt: skip
    assert summary["service"] == "shop" and summary["workers"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", summary["generated_at"])
    [top] = [t for t in summary["top"] if t["normalized"] == "SELECT $1::int + $2"]
    assert top["calls"] == 4 and top["routes"] == {"/orders/{id}": 4}
    totals = summary["totals"]
    assert set(totals) == {"fingerprints", "calls", "errors", "rows", "total_time_s"}
    assert totals["fingerprints"] == len(summary["top"])
    assert totals["calls"] == sum(t["calls"] for t in summary["top"])
    assert len(summary["slow"]) == 4
    assert {"ts", "threshold_ms", "duration_ms", "fingerprint", "route"} <= set(summary["slow"][0])
    assert summary["slow"][0]["ts"] >= summary["slow"][-1]["ts"]  # newest first
    [finding] = summary["n_plus_one"]
    assert (finding["route"], finding["count"], finding["requests"]) == ("/orders/{id}", 4, 1)
    assert finding["fingerprint"] == top["fingerprint"]
    assert finding["last_request_id"] == request.request_id


async def test_summary_totals_count_every_statement_whatever_the_limit(
    configured: Any, pool: Any
) -> None:
    dbsight.instrument(pool)
    shapes = (("SELECT $1::int", 5), ("SELECT $1::int + 1", 3), ("SELECT abs($1::int)", 1))
    for shape, calls in shapes:
        for n in range(calls):
            await pool.fetchval(shape, n)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await pool.fetchval("SELECT 1 / $1::int", 0)
    async with _client(Endpoints()) as client:
        everything = (await client.get("/metrics/summary")).json()
        one = (await client.get("/metrics/summary", params={"limit": "1"})).json()
    assert len(one["top"]) == 1
    assert one["totals"]["fingerprints"] == len(everything["top"]) >= 4
    assert one["totals"]["calls"] == sum(t["calls"] for t in everything["top"]) >= 10
    assert one["totals"]["errors"] == 1
    assert one["totals"]["total_time_s"] > one["top"][0]["total_time_s"]


async def test_endpoints_follow_a_new_configure(fresh_runtime: Any) -> None:
    endpoints = Endpoints()
    async with _client(endpoints) as client:
        dbsight.configure(dbsight.Settings(service_name="first"))
        assert (await client.get("/metrics/summary")).json()["service"] == "first"
        dbsight.configure(dbsight.Settings(service_name="second"))
        assert (await client.get("/metrics/summary")).json()["service"] == "second"


# -- health ------------------------------------------------------------------------------------
async def test_health_liveness_and_readiness(configured: Any) -> None:
    dbsight.add_health_check(HealthCheck("queue", lambda: True))
    dbsight.add_health_check(HealthCheck("search", lambda: False, critical=False))
    async with _client(Endpoints(handle_checks=False)) as client:
        health = await client.get("/health")
        ready = await client.get("/health/ready")
        live = await client.get("/healthz")
        assert health.status_code == 200 and ready.status_code == 200
        assert set(health.json()["checks"]) == {"queue", "search"}
        assert health.json()["checks"]["search"]["status"] == "fail"
        assert set(ready.json()["checks"]) == {"queue"}  # readiness: critical checks only
        assert ready.json()["checks"]["queue"]["latency_ms"] >= 0
        assert live.json() == {"status": "ok"}

        dbsight.add_health_check(HealthCheck("payments", lambda: 1 / 0))
        health = await client.get("/health")
        ready = await client.get("/health/ready")
        assert health.status_code == 503 and ready.status_code == 503
        assert ready.json()["status"] == "fail"
        payments = ready.json()["checks"]["payments"]
        assert payments == {
            "status": "fail",
            "latency_ms": payments["latency_ms"],
            "critical": True,
            "error": "ZeroDivisionError: division by zero",
        }
        assert (await client.get("/healthz")).status_code == 200  # liveness checks nothing


async def test_checks_given_to_the_endpoints(configured: Any) -> None:
    dbsight.add_health_check(HealthCheck("global", lambda: True))
    registry = dbsight.ops.HealthRegistry()
    own = Endpoints(checks=[HealthCheck("app", lambda: True)], handle_checks=False)
    dynamic = Endpoints(checks=registry, handle_checks=False)
    async with _client(own) as client:
        assert set((await client.get("/health")).json()["checks"]) == {"global", "app"}
    async with _client(dynamic) as client:
        assert set((await client.get("/health")).json()["checks"]) == {"global"}
        registry.add(HealthCheck("later", lambda: False))
        later = await client.get("/health")
        assert later.status_code == 503 and set(later.json()["checks"]) == {"global", "later"}
    with pytest.raises(TypeError, match="HealthCheck"):
        Endpoints(checks=[lambda: True])  # type: ignore[list-item]


async def test_readiness_includes_instrumented_databases(configured: Any, pool: Any) -> None:
    dbsight.instrument(pool)
    async with _client(Endpoints()) as client:
        ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["postgresql:asyncpg"]["status"] == "ok"


# -- HTTP details ------------------------------------------------------------------------------
async def test_only_get_and_head(configured: Any) -> None:
    async with _client(Endpoints()) as client:
        posted = await client.post("/metrics")
        assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
        head = await client.head("/healthz")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(b'{"status":"ok"}')


async def test_prefix_and_switches(configured: Any) -> None:
    endpoints = Endpoints("/_dbsight/", summary=False, readiness=False)
    assert endpoints.paths == ("/_dbsight/metrics", "/_dbsight/health", "/_dbsight/healthz")
    assert endpoints.matches("/_dbsight/metrics") and not endpoints.matches("/metrics")
    async with _client(endpoints) as client:
        assert (await client.get("/_dbsight/metrics")).status_code == 200
        assert (await client.get("/_dbsight/metrics/summary")).status_code == 404
        assert (await client.get("/_dbsight/health/ready")).status_code == 404
    assert Endpoints(health=False).paths == (
        "/metrics", "/metrics/summary", "/metrics/alerts",
        "/metrics/statement", "/metrics/timeline", "/metrics/insights",  # the dashboard's
    )
    with pytest.raises(ValueError, match="prefix"):
        Endpoints("metrics")


async def test_in_front_of_another_asgi_app(configured: Any) -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"inner"})

    async with _client(Endpoints(app=inner)) as client:
        assert (await client.get("/orders")).text == "inner"
        assert (await client.post("/metrics")).status_code == 405
        assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert seen == ["http"]


# -- readiness follows the database (a private cluster, stopped and started) ----------------------
@pytest.fixture(scope="module")
def private_pg() -> Iterator[Any]:
    from dbsight.embedded import BinariesNotFoundError
    from dbsight.embedded.postgres import EmbeddedPostgres

    server = EmbeddedPostgres(name="dbsight-test-health")
    try:
        server.start()
    except BinariesNotFoundError as exc:
        pytest.skip(f"no PostgreSQL binaries: {exc}")
    try:
        yield server
    finally:
        server.stop()


async def _ready(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/health/ready")


async def test_readiness_503_while_the_database_is_down(configured: Any, private_pg: Any) -> None:
    dsn = private_pg.dsn()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    engine = sqlalchemy.create_engine(dsn.replace("postgresql://", "postgresql+psycopg://"))
    try:
        dbsight.instrument(pool)
        dbsight.instrument(engine, pool_name="orders")
        async with _client(Endpoints()) as client:
            up = await _ready(client)
            assert up.status_code == 200, up.json()
            assert set(up.json()["checks"]) == {"postgresql:asyncpg", "postgresql:orders"}

            private_pg.pause()
            try:
                down = await _ready(client)
                assert down.status_code == 503
                for check in down.json()["checks"].values():
                    assert check["status"] in ("fail", "timeout") and check["error"]
                assert (await client.get("/healthz")).status_code == 200
            finally:
                private_pg.resume()

            # stale pooled connections are found broken and replaced: ready again
            for _ in range(50):
                back = await _ready(client)
                if back.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert back.status_code == 200, back.json()
    finally:
        await pool.close()
        engine.dispose()


async def test_summary_takes_limit_and_order_by(fresh_runtime: Any) -> None:
    from dbsight._runtime import recorder

    dbsight.configure(dbsight.Settings(tracing_enabled=False))
    for i in range(5):
        for _ in range(i + 1):  # statement i runs i + 1 times
            recorder.finish(recorder.start(f"SELECT {i} FROM t{i}x", "postgresql", "test"), 1)
    transport = httpx.ASGITransport(app=Endpoints())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        top = (await client.get("/metrics/summary?limit=2&order_by=calls")).json()["top"]
        assert [entry["calls"] for entry in top] == [5, 4]
        assert (await client.get("/metrics/summary?limit=0")).status_code == 400
        bad = await client.get("/metrics/summary?order_by=nonsense")
        assert bad.status_code == 400 and "order_by" in bad.json()["error"]
