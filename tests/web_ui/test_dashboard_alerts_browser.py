"""What the analysis and the notifier hold, on the page in Chromium: a verified index advice
with its measured before/after (on the Advice page and on its statement's page), a failing
database check, a resolved plan finding, and the alerts they raised — firing, resolved and
silenced — with the silence. The alerts go to a local webhook stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from asgi_server import serve_in_thread
from sqlalchemy.pool import StaticPool
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import dbsight
from dbsight.advise import AdviceEvent, emit
from dbsight.notify import silences


@pytest.fixture
def service(fresh_runtime: Any, httpserver: Any) -> Iterator[str]:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    dbsight.configure(dbsight.Settings(
        alert_webhook_url=httpserver.url_for("/hook"), alert_group_wait_s=0,
        alert_group_interval_s=0.2, explain_slow_queries=False, service_name="advised",
    ))  # fmt: skip
    # one in-memory database for the server's thread too
    engine = sqlalchemy.create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id integer primary key, customer integer)")
        conn.exec_driver_sql("INSERT INTO orders (customer) VALUES (1), (2), (3)")

    async def orders(request: Any) -> JSONResponse:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT id FROM orders WHERE customer = 2").all()
        return JSONResponse({"n": len(rows)})

    app = Starlette(routes=[Route("/orders", orders)])
    handles = [dbsight.instrument(engine), dbsight.instrument(app)]
    with serve_in_thread(app) as url:
        yield url
    for handle in handles:
        handle.uninstrument()
    for silence in silences.list():
        silences.expire(silence.id)


def test_advice_checks_and_alerts_in_chromium(service: str, chromium: Any, artifacts: Path) -> None:
    for _ in range(3):
        assert httpx.get(service + "/orders").status_code == 200
    statement = next(
        s for s in httpx.get(service + "/metrics/summary").json()["top"]
        if "FROM orders WHERE customer" in s["normalized"]
    )
    fingerprint = statement["fingerprint"]
    emit(AdviceEvent(
        kind="index", severity="warning", key="index:orders:customer",
        summary="create index on orders (customer): serves 1 statement(s), measured 4.0× faster",
        details={"table": "orders", "columns": ["customer"], "index": "orders (customer)",
                 "fingerprints": [fingerprint], "speedup": 4.0, "verified": True,
                 "statements": [{"fingerprint": fingerprint, "calls": 3, "cost_before": 35.5,
                                 "cost_after": 8.2, "measured_before_ms": 2.4,
                                 "measured_after_ms": 0.6}]},
    ))  # fmt: skip
    emit(AdviceEvent(
        kind="check", severity="warning", key="check:unused_index:public.orders_old_idx",
        summary="Unused indexes: public.orders_old_idx (1 index never scanned)",
        details={"check": "unused_index"},
    ))  # fmt: skip
    emit(AdviceEvent(
        kind="plan", severity="critical", key=f"plan:seq_scan:orders:{fingerprint}",
        summary="Seq Scan on orders would remove an estimated 99.0 % of 3 rows",
        details={"fingerprint": fingerprint}, resolved=True,
    ))  # fmt: skip
    silences.add(["alertname=DbsightIndexAdvice"], 600, comment="index being built")
    deadline = time.monotonic() + 10
    while len(httpx.get(service + "/metrics/alerts").json()["alerts"]) < 2:
        assert time.monotonic() < deadline, "the notifier did not take the events"
        time.sleep(0.1)

    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(service + "/dbsight/#/advice")
    page.wait_for_selector("#insights-index .item")
    index = page.inner_text("#insights-index")
    assert "orders (customer)" in index and "4.0×" in index
    assert "2.4 ms" in index and "0.600 ms" in index  # measured before / after
    assert "public.orders_old_idx" in page.inner_text("#insights-check")
    assert "resolved" in page.inner_text("#insights-plan")
    page.screenshot(path=str(artifacts / "advice.png"), full_page=True)

    page.click('#nav a[data-view="alerts"]')
    page.wait_for_selector("#alerts table")
    alerts = page.inner_text("#alerts")
    assert "DbsightCheckFailing" in alerts and "firing" in alerts
    assert "silenced" in alerts  # the index advice alert, under the silence
    assert "alertname" in page.inner_text("#silences") and "index being built" in page.inner_text(
        "#silences"
    )
    page.screenshot(path=str(artifacts / "alerts.png"), full_page=True)

    # the statement's page carries its index advice with the measured times
    page.goto(service + f"/dbsight/#/statements/{fingerprint}")
    page.wait_for_selector("#index-advice table")
    assert "2.4 ms" in page.inner_text("#index-advice")
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(artifacts / "statement-advice-dark.png"), full_page=True)
    assert not errors, errors
    context.close()
