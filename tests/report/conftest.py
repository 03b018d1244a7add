"""Real inputs for the report: the sample shop service (dbsight.demo.app) running twice, as
two uvicorn processes instrumented by dbsight against one real PostgreSQL, the second one
through a ``dbsight proxy`` writing a capture; traffic with slow statements (and their
plans), an N+1 route and failing inserts. Started once for the module that asks for it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dbsight.demo import load_sample_data
from dbsight.proxy._config import ProxyConfig
from dbsight.testing import PgServer
from dbsight.testing.proxy import RunningProxy
from report_helpers import Shops

SCALE = 0.05
SLOW_MS = 1.0  # low enough for the sample data's sequential scans to be slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(name: str, dsn: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "DBSIGHT_DEMO_DSN": dsn,
        "DBSIGHT_SERVICE_NAME": name,
        "DBSIGHT_SLOW_QUERY_THRESHOLD_MS": str(SLOW_MS),
        "DBSIGHT_N_PLUS_ONE_MIN_TOTAL_MS": "0",
        "DBSIGHT_EXPLAIN_INTERVAL_S": "0",  # every slow run explained: the last ones have plans
        "DBSIGHT_TRACING_ENABLED": "false",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "dbsight.demo.app:app_from_env",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


def _wait(probe: Any, what: str, log: Path | None = None, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except httpx.HTTPError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    output = log.read_text(errors="replace")[-2000:] if log is not None else ""
    raise AssertionError(f"timed out waiting for {what} (last: {last!r}) {output}")


def _traffic(client: httpx.Client) -> None:
    for round_ in range(3):
        for customer in range(1, 15):
            assert client.get(f"/customers/{customer}").status_code == 200
            assert client.get(f"/customers/{customer}/orders").status_code == 200
        assert client.get("/orders/recent", params={"limit": 12}).status_code == 200
        assert client.get("/coupons/SPRING10").status_code == 200
        assert client.get("/reports/revenue", params={"days": 60}).status_code == 200
        # an unknown customer: the INSERT fails with a foreign-key violation
        response = client.post(
            "/orders", json={"customer_id": 10_000_000 + round_, "items": [{"product_id": 1}]}
        )
        assert response.status_code == 422
        for product in range(1, 8):  # the classic missing index
            assert client.get(f"/products/{product}/sales").status_code == 200
    # last, so that they are among the recent slow queries the summary keeps, with plans
    time.sleep(0.2)
    assert client.get("/reports/revenue", params={"days": 90}).status_code == 200
    assert client.get("/products/3/sales").status_code == 200


def _slow_with_plan(url: str) -> bool:
    """The revenue report's slow run has its plan, and the N+1 route was seen."""
    document = httpx.get(url + "/metrics/summary", timeout=10).json()
    return any(
        record.get("plan") and "p.category" in record["normalized"] for record in document["slow"]
    ) and bool(document["n_plus_one"])


def _captured_all(url: str, capture: Path) -> bool:
    if not capture.exists():
        return False
    document = httpx.get(url + "/metrics/summary?limit=500", timeout=10).json()
    captured = Counter(
        json.loads(line).get("fingerprint")
        for line in capture.read_text().splitlines()
        if '"statement"' in line
    )
    return all(captured[entry["fingerprint"]] >= entry["calls"] for entry in document["top"])


@pytest.fixture(scope="module")
def shops(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shops]:
    directory = tmp_path_factory.mktemp("shops")
    capture = directory / "capture.jsonl"
    with pg_server.temporary_database() as dsn:
        # in a thread of its own: Playwright's sync API may run an event loop in this one
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, load_sample_data(dsn, SCALE)).result()
        proxy = RunningProxy(ProxyConfig(listen="127.0.0.1:0", upstream=dsn, capture=capture))
        procs: list[subprocess.Popen[bytes]] = []
        try:
            urls = []
            for name, target in (("shop-a", dsn), ("shop-b", proxy.dsn(dsn))):
                log = directory / f"{name}.log"
                proc, url = _serve(name, target, log)
                procs.append(proc)
                _wait(lambda url=url: httpx.get(url + "/ping", timeout=5).status_code == 200,
                      f"{name} to serve", log)  # fmt: skip
                urls.append(url)
            for url in urls:
                with httpx.Client(base_url=url, timeout=30) as client:
                    _traffic(client)
            for url in urls:
                _wait(lambda url=url: _slow_with_plan(url), f"a slow query's plan at {url}")
            # the proxy writes its capture every second: wait until it holds every run of
            # shop-b's statements
            _wait(lambda: _captured_all(urls[1], capture), "the capture of shop-b's traffic")
            yield Shops(urls, capture, dsn, proxy)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            proxy.close()
