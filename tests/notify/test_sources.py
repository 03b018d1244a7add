"""dbsight's own events become alerts, through the runtime configured from settings: a slow
statement and an N+1 pattern in an instrumented app on real PostgreSQL, a failing check (an
advice event) and a failing health check — and their resolution. No literal leaves the
process unless include_query_bodies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from notify_helpers import posted, wait_for
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import dbsight
from dbsight.advise import AdviceEvent, emit
from dbsight.instrument import uninstrument_all
from dbsight.notify import notifier_sink
from dbsight.ops import HealthCheck, run_checks

SECRET = "s3cr3t-literal"


@pytest.fixture
async def engine(pg_dsn: str) -> AsyncIterator[Any]:
    engine = create_async_engine(pg_dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)"))
        await conn.execute(
            text("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 20) g")
        )
    yield engine
    await engine.dispose()


@pytest.fixture
def serve(fresh_runtime: Any, engine: Any, httpserver: Any) -> Iterator[Any]:
    """``serve(**settings) -> app``: dbsight configured with a webhook at ``/hook`` (and
    ``settings``), the engine and a small app instrumented."""
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")

    def serve(**settings: Any) -> FastAPI:
        settings = {
            "alert_webhook_url": httpserver.url_for("/hook"), "alert_group_wait_s": 0,
            "alert_group_interval_s": 0.2, "alert_slow_query_ms": 200,
            "explain_slow_queries": False, "service_name": "shop", **settings,
        }  # fmt: skip
        dbsight.configure(dbsight.Settings(**settings))
        dbsight.instrument(engine)
        app = FastAPI()

        @app.get("/slow")
        async def slow() -> str:
            async with engine.connect() as conn:
                await conn.execute(text(f"SELECT pg_sleep(0.3), '{SECRET}'"))
            return "slow"

        @app.get("/fast")
        async def fast() -> int:
            async with engine.connect() as conn:
                return int((await conn.execute(text("SELECT 1"))).scalar_one())

        @app.get("/orders/{count}")
        async def orders(count: int) -> int:
            async with engine.connect() as conn:
                for item_id in range(1, count + 1):
                    await conn.execute(
                        text("SELECT name FROM items WHERE id = :id"), {"id": item_id}
                    )
            return count

        dbsight.instrument(app)
        return app

    yield serve
    uninstrument_all()


async def get(app: FastAPI, path: str) -> None:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get(path)).status_code == 200


def alerts_named(httpserver: Any, name: str, status: str = "firing") -> list[dict[str, Any]]:
    return [
        alert for body in posted(httpserver, "/hook") for alert in body["alerts"]
        if alert["labels"]["alertname"] == name and alert["status"] == status
    ]  # fmt: skip


async def test_a_slow_statement_alerts_with_its_normalized_text_only(
    serve: Any, httpserver: Any
) -> None:
    app = serve()
    await get(app, "/fast")
    await get(app, "/slow")
    found = await asyncio.to_thread(
        wait_for, lambda: alerts_named(httpserver, "DbsightSlowQuery"), 10, "the slow alert"
    )
    (alert,) = found
    labels, annotations = alert["labels"], alert["annotations"]
    assert labels["service"] == "shop" and labels["severity"] == "warning"
    assert labels["route"] == "/slow" and len(labels["query_fingerprint"]) == 16
    assert "pg_sleep" in annotations["statement"]
    assert float(annotations["duration_ms"]) >= 300
    assert "threshold 200 ms" in annotations["summary"]
    assert SECRET not in str(posted(httpserver, "/hook"))
    assert "query_text" not in annotations


async def test_with_include_query_bodies_the_statement_text_is_there(
    serve: Any, httpserver: Any
) -> None:
    app = serve(include_query_bodies=True)
    await get(app, "/slow")
    found = await asyncio.to_thread(
        wait_for, lambda: alerts_named(httpserver, "DbsightSlowQuery"), 10, "the slow alert"
    )
    assert SECRET in found[0]["annotations"]["query_text"]


async def test_an_n_plus_one_pattern_alerts(serve: Any, httpserver: Any) -> None:
    app = serve(n_plus_one_min_total_ms=0)
    await get(app, "/orders/10")
    found = await asyncio.to_thread(
        wait_for, lambda: alerts_named(httpserver, "DbsightNPlusOne"), 10, "the N+1 alert"
    )
    (alert,) = found
    assert alert["labels"]["route"] == "/orders/{count}"
    assert "10 times" in alert["annotations"]["summary"]
    assert "items" in alert["annotations"]["statement"]


async def test_a_failing_check_alerts_and_its_resolution_resolves(
    serve: Any, httpserver: Any
) -> None:
    serve()
    details = {"relation": "public.orders", "dead_ratio": 0.4}
    key = "check:bloat:public.orders"
    emit(AdviceEvent("check", "warning", key, "public.orders is 40 % dead rows", details))
    (alert,) = await asyncio.to_thread(
        wait_for, lambda: alerts_named(httpserver, "DbsightCheckFailing"), 10, "the check alert"
    )
    assert alert["labels"]["key"] == key and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert "dead_ratio: 0.4" in alert["annotations"]["description"]
    emit(AdviceEvent("check", "warning", key, "public.orders is fine", details, resolved=True))
    (resolved,) = await asyncio.to_thread(
        wait_for, lambda: alerts_named(httpserver, "DbsightCheckFailing", "resolved"), 10,
        "the resolution",
    )  # fmt: skip
    assert resolved["fingerprint"] == alert["fingerprint"]


async def test_a_plan_finding_alerts(serve: Any, httpserver: Any) -> None:
    serve()
    emit(AdviceEvent("plan", "info", "plan:seq_scan:items:abc", "Seq Scan on items", {}))
    (alert,) = await asyncio.to_thread(
        wait_for, lambda: alerts_named(httpserver, "DbsightPlanFinding"), 10, "the plan alert"
    )
    assert alert["labels"]["severity"] == "info"


async def test_a_failing_health_check_alerts_then_resolves(serve: Any, httpserver: Any) -> None:
    serve()
    healthy = False

    def probe() -> bool:
        return healthy

    check = HealthCheck("payments", probe, critical=True)
    await run_checks([check])
    (alert,) = await asyncio.to_thread(
        wait_for, lambda: alerts_named(httpserver, "DbsightHealthCheckFailing"), 10, "the alert"
    )
    assert alert["labels"]["check"] == "payments" and alert["labels"]["severity"] == "critical"
    healthy = True
    await run_checks([check])
    await asyncio.to_thread(
        wait_for, lambda: alerts_named(httpserver, "DbsightHealthCheckFailing", "resolved"), 10,
        "the resolution",
    )  # fmt: skip


async def test_requests_return_while_the_receiver_hangs(serve: Any, hanging_url: str) -> None:
    app = serve(alert_webhook_url=hanging_url)
    sink = notifier_sink(dbsight.get_runtime().sinks)
    assert sink is not None
    await get(app, "/slow")
    (sender,) = sink.notifier.senders
    await asyncio.to_thread(wait_for, lambda: sender.attempts == 1, 10, "the hanging delivery")
    # the receiver now holds a notification without answering; the application goes on
    for _ in range(3):
        await asyncio.wait_for(get(app, "/fast"), 5)
        await asyncio.wait_for(get(app, "/slow"), 5)
    assert not sender.idle() and sender.attempts == 1  # still blocked on the first one


async def test_nothing_is_built_without_a_destination(fresh_runtime: Any) -> None:
    runtime = dbsight.configure(dbsight.Settings())
    assert notifier_sink(runtime.sinks) is None


async def test_the_alerts_endpoint_shows_alerts_and_silences(serve: Any) -> None:
    from dbsight.notify import silences

    app = serve(alert_group_wait_s=3600)
    silence = silences.add(['route="/elsewhere"'], 60, "test")
    try:
        await get(app, "/slow")
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

            async def fetch() -> dict[str, Any]:
                return dict((await client.get("/metrics/alerts")).json())

            document = await fetch()
            for _ in range(100):  # the dispatcher thread files the alert in a moment
                if document["alerts"]:
                    break
                await asyncio.sleep(0.02)
                document = await fetch()
        assert document["configured"] is True
        (alert,) = document["alerts"]
        assert alert["labels"]["alertname"] == "DbsightSlowQuery"
        assert alert["status"] == "firing" and SECRET not in str(document)
        assert [s["id"] for s in document["silences"]] == [silence.id]
    finally:
        silences.expire(silence.id)
