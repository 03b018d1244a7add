"""The dashboard of a service under traffic, in Chromium: the sample shop (dbsight.demo.app)
served by two uvicorn workers sharing a multiprocess directory, on a real PostgreSQL, with an
admin token. The page asks for the token, shows the top statement and the N+1 route, opens
a statement's page with its latency histogram and a slow run's plan tree, updates without a
reload, sorts from the keyboard, keeps to its Content-Security-Policy, and never shows a
literal of the traffic. Screenshots (light and dark) go to the artifacts directory."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dbsight.demo import load_sample_data
from dbsight.testing import PgServer

TOKEN = "web-ui-token-4821"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COUPON = "SPRING10"  # a literal of the traffic: never on the page
N_PLUS_ONE_ROUTE = "/orders/recent"


@dataclass
class Shop:
    url: str
    stop: threading.Event


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(probe: Any, what: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {log.read_text(errors='replace')[-2000:]}")


def _requests(client: httpx.Client, i: int) -> None:
    client.get(f"/customers/{1 + i % 12}")
    client.get(f"/customers/{1 + i % 12}/orders")
    client.get("/orders/recent", params={"limit": 12})  # the N+1 route
    client.get(f"/coupons/{COUPON}")
    client.get(f"/products/{1 + i % 7}/sales")
    if i % 5 == 0:
        client.get("/reports/revenue", params={"days": 60})


SALES = "FROM order_items WHERE product_id"  # the missing index: Aggregate over a Seq Scan


def _planned_sales(url: str) -> dict[str, Any] | None:
    """The product-sales statement's page document once one of its slow runs has a plan. An
    order's lines (Sort over a Bitmap Heap Scan) are slow too at times, so it is named."""
    summary = httpx.get(url + "/metrics/summary?limit=200", headers=AUTH, timeout=10).json()
    fingerprint = next((s["fingerprint"] for s in summary["top"] if SALES in s["normalized"]), None)
    if fingerprint is None:
        return None
    doc = httpx.get(
        url + "/metrics/statement", params={"fingerprint": fingerprint}, headers=AUTH, timeout=10
    ).json()
    return doc if any(run.get("plan") for run in doc["slow"]) else None


def _ready(url: str) -> bool:
    summary = httpx.get(url + "/metrics/summary", headers=AUTH, timeout=10).json()
    return (
        summary["workers"] == 2
        and bool(summary["n_plus_one"])
        and _planned_sales(url) is not None
    )


@pytest.fixture(scope="module")
def shop(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    directory = tmp_path_factory.mktemp("shop")
    workers_dir = directory / "workers"
    workers_dir.mkdir()
    log = directory / "service.log"
    with pg_server.temporary_database() as dsn:
        with ThreadPoolExecutor(1) as pool:  # Playwright's sync API may own this thread's loop
            pool.submit(asyncio.run, load_sample_data(dsn, 0.05)).result()
        port = _free_port()
        env = {
            **os.environ,
            "DBSIGHT_DEMO_DSN": dsn,
            "DBSIGHT_SERVICE_NAME": "web-ui-shop",
            "DBSIGHT_ADMIN_TOKEN": TOKEN,
            "DBSIGHT_MULTIPROCESS_DIR": str(workers_dir),
            "DBSIGHT_SLOW_QUERY_THRESHOLD_MS": "1",
            "DBSIGHT_N_PLUS_ONE_MIN_TOTAL_MS": "0",
            "DBSIGHT_EXPLAIN_INTERVAL_S": "0",
            "DBSIGHT_TRACING_ENABLED": "false",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "dbsight.demo.app:app_from_env",
                 "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
                 "--log-level", "warning"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        stop = threading.Event()
        traffic: threading.Thread | None = None
        try:
            _wait(lambda: httpx.get(url + "/ping", timeout=5).status_code == 200, "the shop", log)
            # a connection per request: the kernel spreads them over both workers
            fresh = httpx.Limits(max_keepalive_connections=0)
            with httpx.Client(base_url=url, timeout=30, limits=fresh) as client:
                for i in range(40):
                    _requests(client, i)
            _wait(lambda: _ready(url), "a slow query's plan and an N+1 finding", log)

            def keep_going() -> None:  # traffic while the page is open: it must update
                with httpx.Client(base_url=url, timeout=30, limits=fresh) as client:
                    i = 0
                    while not stop.wait(0.15):
                        client.get(f"/products/{1 + i % 7}/sales")  # slow, with a plan
                        i += 1

            traffic = threading.Thread(target=keep_going, daemon=True)
            traffic.start()
            yield Shop(url, stop)
        finally:
            stop.set()
            if traffic is not None:
                traffic.join(10)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _luminance(rgb: str) -> float:
    channels = [int(x) / 255 for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(page: Any, selector: str) -> float:
    fg, bg = page.evaluate(
        """(sel) => [getComputedStyle(document.querySelector(sel)).color,
                     getComputedStyle(document.body).backgroundColor]""",
        selector,
    )
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def test_the_service_dashboard_in_chromium(shop: Shop, chromium: Any, artifacts: Path) -> None:
    summary = httpx.get(shop.url + "/metrics/summary?limit=200", headers=AUTH, timeout=10).json()
    assert summary["workers"] == 2
    sales = _planned_sales(shop.url)
    assert sales is not None

    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    foreign: list[str] = []
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(shop.url) else None)

    page.goto(shop.url + "/dbsight/")
    # the JSON wants the token: the page asks for it once
    page.wait_for_selector("#token-form")
    page.fill("#token", TOKEN)
    page.keyboard.press("Enter")
    page.wait_for_selector("#statements table tbody tr")
    page.wait_for_selector("#rates .card")
    assert page.evaluate("sessionStorage.getItem('dbsight-token')") == TOKEN
    errors.clear()  # the 401s before the token was given
    # the top statement leads the table (ordered by total time, as the summary); traffic goes
    # on meanwhile, so the two are compared until one poll and one summary agree
    deadline = time.monotonic() + 20
    while True:
        first = page.locator("#statements tbody tr").first.locator("a.sql").inner_text()
        top = httpx.get(shop.url + "/metrics/summary", headers=AUTH, timeout=10).json()["top"][0]
        if first == top["normalized"]:
            break
        assert time.monotonic() < deadline, (first, top["normalized"])
        page.wait_for_timeout(500)
    assert "2 workers" in page.inner_text("#service")
    # the rates of the last interval, with their sparklines once the timeline has two points
    page.wait_for_function(
        "() => document.querySelectorAll('#rates svg.spark path.line').length >= 4",
        timeout=20_000,
    )
    assert page.locator("#rates .card .value").first.inner_text() != "–"
    page.screenshot(path=str(artifacts / "service-overview.png"), full_page=True)

    # live: the counts change while the page stays the same document (no reload)
    page.evaluate("window.__sameDocument = true")
    calls_text = page.inner_text("#statements-count")
    page.wait_for_function(
        "(before) => document.querySelector('#statements-count').textContent !== before",
        arg=calls_text, timeout=20_000,
    )
    assert page.evaluate("window.__sameDocument") is True

    # sorting from the keyboard: focus the Calls header's button, Enter
    page.focus('th button[data-key="calls"]')
    page.keyboard.press("Enter")
    assert page.get_attribute('th:has(button[data-key="calls"])', "aria-sort") == "descending"
    cells = page.locator("#statements tbody tr td:nth-child(2)").all_inner_texts()
    counts = [int(t.replace(",", "")) for t in cells]
    assert counts == sorted(counts, reverse=True)
    # filtering by text
    page.fill("#filter-text", "p.category")
    page.wait_for_function("() => document.querySelectorAll('#statements tbody tr').length >= 1")
    assert all("p.category" in t for t in page.locator("#statements tbody a.sql").all_inner_texts())
    page.fill("#filter-text", "")

    # the N+1 route
    page.click('#nav a[data-view="n-plus-one"]')
    page.wait_for_selector("#n-plus-one table")
    assert N_PLUS_ONE_ROUTE in page.inner_text("#n-plus-one")
    page.screenshot(path=str(artifacts / "service-n-plus-one.png"), full_page=True)

    # a statement's page, deep-linked: its histogram and the slow run's plan as a tree
    page.goto(shop.url + f"/dbsight/#/statements/{sales['statement']['fingerprint']}")
    page.wait_for_selector("#statement-sql")
    assert page.inner_text("#statement-sql") == sales["statement"]["normalized"]
    page.wait_for_selector("#latency svg.plot rect.bar")
    page.wait_for_selector("#slow-runs ul.plan-root li")
    nodes = page.locator("#slow-runs ul.plan-root").first.locator(".node").all_inner_texts()
    assert nodes[:2] == ["Aggregate", "Seq Scan on order_items"]
    # a plan node opens and closes from the keyboard (a <details> summary)
    node = page.locator("#slow-runs ul.plan-root details").first
    assert node.get_attribute("open") is not None
    node.locator("summary").first.focus()
    page.keyboard.press("Enter")
    assert node.get_attribute("open") is None
    page.keyboard.press("Enter")
    assert node.get_attribute("open") is not None
    # the plan analyzer's finding, on its node and in the list
    assert "seq scan" in page.inner_text("#slow-runs ul.plan-root")
    assert "order_items" in page.inner_text("#plan-findings")
    page.screenshot(path=str(artifacts / "service-statement.png"), full_page=True)

    # dark theme, readable
    page.emulate_media(color_scheme="dark")
    page.evaluate("() => window.scrollTo(0, 0)")  # the sticky header at the top of the shot
    page.wait_for_timeout(200)
    assert _contrast(page, "#statement-sql") >= 7
    page.screenshot(path=str(artifacts / "service-statement-dark.png"), full_page=True)
    assert _contrast(page, "#statement .kv") >= 4.5  # muted text
    page.emulate_media(color_scheme="light")
    assert _contrast(page, "#statement-sql") >= 7
    assert _contrast(page, "#statement .kv") >= 4.5

    # privacy: no literal of the traffic anywhere the page shows
    page.goto(shop.url + "/dbsight/#/slow")
    page.wait_for_selector("#slow table")
    assert COUPON not in page.content()
    assert not errors, errors
    assert not foreign, foreign
    context.close()
