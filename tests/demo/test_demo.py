"""``dbsight demo``: the sample data, the sample service's endpoints against a real PostgreSQL
(served by uvicorn on loopback, instrumented by dbsight), and the command itself run end to
end in a subprocess, including a Ctrl-C in the middle of its traffic."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import re
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from rich.console import Console

import dbsight
from dbsight.core import QueryObserver
from dbsight.demo import COUPONS, MIX, SampleSize, load_sample_data
from dbsight.demo._server import serve_app
from dbsight.demo._summary import describe_plan, slow_table, top_table
from dbsight.demo.app import create_app
from dbsight.export.slowlog import summarize_plan

# Small enough to load in well under a second, big enough that the planner uses the
# indexes that exist.
TEST_SCALE = 0.05
DEMO = [sys.executable, "-c", "from dbsight.cli import main; main()", "demo"]


class Statements(QueryObserver):
    """Every statement the instrumented pool ran: its SQL text and parameters."""

    name = "tests.demo.statements"

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def after_query(self, ctx: Any, event: Any) -> None:
        self.seen.append((ctx.sql, ctx.params))

    def matching(self, fragment: str) -> list[tuple[str, Any]]:
        return [(sql, params) for sql, params in self.seen if fragment in sql]


@dataclass
class Shop:
    client: httpx.AsyncClient
    dsn: str
    size: SampleSize
    statements: Statements


@pytest.fixture
async def shop(pg_dsn: str, fresh_runtime: Any) -> AsyncIterator[Shop]:
    """The sample service on its own database, served over loopback, instrumented."""
    dbsight.configure(
        dbsight.Settings(
            tracing_enabled=False,
            slow_query_threshold_ms=60_000,
            n_plus_one_min_total_ms=0,
            include_query_bodies=True,  # observers see the parameters
        )
    )
    statements = Statements()
    dbsight.add_observer(statements)
    size = await load_sample_data(pg_dsn, TEST_SCALE)
    app = create_app(pg_dsn)
    try:
        async with serve_app(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
            yield Shop(client, pg_dsn, size, statements)
    finally:
        app.state.dbsight_handle.uninstrument()
        dbsight.remove_observer(statements)


# -- the sample data ---------------------------------------------------------------------
async def test_sample_data_has_the_requested_size_and_its_missing_indexes(pg_dsn: str) -> None:
    for _ in range(2):  # loading again replaces the tables
        size = await load_sample_data(pg_dsn, 0.01)
    assert (size.customers, size.products, size.orders) == (200, 20, 1000)
    conn = await asyncpg.connect(pg_dsn)
    try:
        counts = {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("customers", "products", "orders", "order_items")
        }
        indexed = {
            row["indexdef"].split(" USING btree ")[1]
            for row in await conn.fetch("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'")
            if " USING btree " in row["indexdef"]
        }
        coupons = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE coupon_code = ANY($1::text[])", list(COUPONS)
        )
        totals_match = await conn.fetchval(
            "SELECT bool_and(o.total = i.total) FROM orders o JOIN (SELECT order_id, "
            "sum(quantity * unit_price) AS total FROM order_items GROUP BY order_id) i "
            "ON i.order_id = o.id"
        )
    finally:
        await conn.close()
    assert counts == {
        "customers": 200, "products": 20, "orders": 1000, "order_items": size.order_items,
    }  # fmt: skip
    assert 2 * size.orders <= size.order_items <= 4 * size.orders
    assert size.total_rows == sum(counts.values())
    assert 0 < coupons < size.orders // 10
    assert totals_match
    assert "(customer_id)" in indexed and "(order_id, line)" in indexed
    # missing on purpose: the endpoints filtering on these columns scan the whole table
    assert not {"(coupon_code)", "(email)", "(product_id)"} & indexed


def test_the_default_scale_is_over_100k_rows() -> None:
    size = SampleSize.at_scale(1.0)
    assert size.customers + size.products + size.orders >= 100_000


# -- the sample service ----------------------------------------------------------------
async def test_every_endpoint_of_the_traffic_mix_answers(shop: Shop) -> None:
    rng = random.Random(3)
    for endpoint in MIX:
        for _ in range(3):
            method, path, body = endpoint.make(rng, shop.size)
            response = await shop.client.request(method, path, json=body)
            assert response.status_code in (200, 201), (path, response.text)


async def test_endpoints_return_the_rows_they_look_up(shop: Shop) -> None:
    customer = (await shop.client.get("/customers/7")).json()
    assert customer["email"] == "customer7@example.com"
    found = (await shop.client.get("/customers/lookup", params={"email": customer["email"]}))
    assert found.json()["id"] == 7
    assert (await shop.client.get("/customers/999999")).status_code == 404
    used = [(await shop.client.get(f"/coupons/{code}")).json()["orders"] for code in COUPONS]
    assert sum(used) > 0

    created = await shop.client.post(
        "/orders",
        json={"customer_id": 7, "items": [{"product_id": 1, "quantity": 2},
                                          {"product_id": 2, "quantity": 1}]},
    )  # fmt: skip
    assert created.status_code == 201
    order = (await shop.client.get(f"/orders/{created.json()['id']}")).json()
    assert order["customer_id"] == 7
    assert [(i["product_id"], i["quantity"]) for i in order["items"]] == [(1, 2), (2, 1)]
    mine = (await shop.client.get("/customers/7/orders")).json()
    assert order["id"] in [o["id"] for o in mine]
    unknown = await shop.client.post(
        "/orders", json={"customer_id": 999_999, "items": [{"product_id": 1}]}
    )
    assert unknown.status_code == 422


async def test_recent_orders_runs_one_query_per_order(shop: Shop) -> None:
    shop.statements.seen.clear()
    response = await shop.client.get("/orders/recent", params={"limit": 7})
    orders = response.json()
    assert len(orders) == 7
    per_order = shop.statements.matching("FROM order_items WHERE order_id = $1")
    assert len(per_order) == 7
    assert [params[0] for _, params in per_order] == [o["id"] for o in orders]
    assert len(shop.statements.seen) == 8  # the list, then one per order

    # and dbsight reports it as N+1, through the service's own summary
    summary = (await shop.client.get("/metrics/summary")).json()
    findings = [f for f in summary["n_plus_one"] if f["route"] == "/orders/recent"]
    assert findings and findings[0]["count"] == 7


async def _plan(dsn: str, sql: str, params: Any) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return summarize_plan(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *params))
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("path", "fragment", "scanned"),
    [
        ("/coupons/SPRING3", "WHERE coupon_code = $1", "orders"),
        ("/customers/lookup?email=customer5%40example.com", "WHERE email = $1", "customers"),
        ("/products/3/sales", "WHERE product_id = $1", "order_items"),
    ],
)
async def test_missing_index_endpoints_scan_the_whole_table(
    shop: Shop, path: str, fragment: str, scanned: str
) -> None:
    shop.statements.seen.clear()
    assert (await shop.client.get(path)).status_code == 200
    [(sql, params)] = shop.statements.matching(fragment)
    plan = await _plan(shop.dsn, sql, params)
    assert scanned in plan["seq_scans"]
    assert describe_plan(plan).startswith(f"Seq Scan on {scanned}")


async def test_the_slow_query_table_shows_the_plan_finding(shop: Shop) -> None:
    """The product-sales scan as the demo's explainer sees it (EXPLAIN ANALYZE plus the
    table's statistics): the slow-query table prints the analyzer's first finding."""
    shop.statements.seen.clear()
    assert (await shop.client.get("/products/3/sales")).status_code == 200
    [(sql, params)] = shop.statements.matching("WHERE product_id = $1")
    conn = await asyncpg.connect(shop.dsn)
    try:
        raw = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *params)
    finally:
        await conn.close()
    plan = summarize_plan(json.loads(raw))
    first = plan["findings"][0]
    assert first["kind"] == "seq_scan" and first["relation"] == "order_items"
    assert re.fullmatch(r"Seq Scan on order_items removes 99\.\d % of 1\d,\d{3} rows",
                        first["message"])  # fmt: skip
    record = {"fingerprint": "f", "normalized": sql, "duration_ms": 40.0, "route": "/sales"}
    console = Console(file=io.StringIO(), width=250, color_system=None)
    console.print(slow_table([{**record, "findings": plan["findings"]}], 10.0))
    console.print(slow_table([record], 10.0, {"f": plan}))  # the statement's plan fills in
    assert console.file.getvalue().count(first["message"]) == 2  # type: ignore[attr-defined]


async def test_indexed_lookup_does_not_scan_the_table(shop: Shop) -> None:
    shop.statements.seen.clear()
    assert (await shop.client.get("/customers/3/orders")).status_code == 200
    [(sql, params)] = shop.statements.matching("WHERE customer_id = $1")
    assert (await _plan(shop.dsn, sql, params))["seq_scans"] == []


async def test_dbsight_endpoints_are_served(shop: Shop) -> None:
    await shop.client.get("/customers/1")
    assert (await shop.client.get("/health/ready")).status_code == 200
    metrics = (await shop.client.get("/metrics")).text
    assert "db_client_operations_total" in metrics
    summary = (await shop.client.get("/metrics/summary")).json()
    assert any("FROM customers WHERE id = $1" in row["normalized"] for row in summary["top"])


# -- the command ----------------------------------------------------------------------
def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _marked_processes(marker: str) -> set[int]:
    """PIDs of processes whose environment carries ``marker``: the demo and the processes
    it started (the embedded PostgreSQL inherits the demo's environment)."""
    needle = marker.encode()
    found = set()
    for pid in _pids():
        with contextlib.suppress(OSError):
            if needle in Path(f"/proc/{pid}/environ").read_bytes():
                found.add(pid)
    return found


def _processes_in(directories: set[str]) -> set[int]:
    """PIDs of processes working inside one of ``directories`` (PostgreSQL's backends and
    helpers rewrite their environment for their process titles, but stay in the data dir)."""
    found = set()
    for pid in _pids():
        with contextlib.suppress(OSError):
            cwd = os.readlink(f"/proc/{pid}/cwd")
            if any(cwd == d or cwd.startswith(d + os.sep) for d in directories):
                found.add(pid)
    return found


def _demo_processes(marker: str) -> set[int]:
    """The demo's processes: marked ones, and all that work in their private directories."""
    marked = _marked_processes(marker)
    private = set()
    for pid in marked:
        with contextlib.suppress(OSError):
            cwd = os.readlink(f"/proc/{pid}/cwd")
            if "dbsight-" in cwd:  # the embedded server's work directory, not the test's cwd
                private.add(cwd)
    return marked | _processes_in(private)


def _still_alive(pids: set[int], marker: str, timeout: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = {pid for pid in pids if Path(f"/proc/{pid}").exists()} | _marked_processes(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _postgres_port(output: str) -> int:
    match = re.search(r"postgresql://[^@]+@127\.0\.0\.1:(\d+)/", output)
    assert match, output
    return int(match.group(1))


def _redis_port(output: str) -> int:
    match = re.search(r"Redis ready: redis://127\.0\.0\.1:(\d+)/", output)
    assert match, output
    return int(match.group(1))


def _demo_env(marker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBSIGHT_")}
    env.update(PYTHONUNBUFFERED="1", DBSIGHT_DEMO_TEST_MARKER=marker, COLUMNS="200")
    return env


def _temp_dir_of(output: str) -> Path:
    match = re.search(r"(/\S*dbsight-demo-[^/\s]+)", output)
    assert match, output
    return Path(match.group(1).rstrip("/"))


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_demo_runs_unattended_prints_the_summary_and_leaves_nothing_behind(
    pg_server: Any,  # skips the test where no PostgreSQL binaries are installed
    tmp_path: Path,
) -> None:
    marker = uuid.uuid4().hex
    report = tmp_path / "demo-report.html"
    args = ["--duration", "10", "--scale", str(TEST_SCALE), "--slow-ms", "2", "--report", str(report)]
    done = subprocess.run(
        DEMO + args, env=_demo_env(marker), capture_output=True, text=True, timeout=180
    )
    output = done.stdout
    assert done.returncode == 0, output + done.stderr
    for title in ("Traffic:", "Top statements by total time", "Slow queries", "N+1 patterns"):
        assert title in output
    assert "Seq Scan on" in output
    assert "/v1/shop/orders/recent" in output  # the shop, served by the platform
    assert re.search(r"OpenAPI docs: http://127\.0\.0\.1:\d+/docs", output), output
    # the recommendations: index advice verified on the demo's database, the checks, the report
    recommendations = output[output.index("Recommendations"):]
    assert "Indexes to create" in recommendations or "no index would pay" in recommendations
    assert "database checks" in recommendations.lower()
    assert f"HTML report: {report}" in " ".join(recommendations.split())
    assert "<title>dbsight report" in report.read_text()
    # what is gone on exit is not offered as links or paths to open, but said to be gone
    assert "psql postgresql://" not in output and "/metrics/summary" not in output
    assert "slow-query log   /" not in output
    assert "stopped and removed: the platform (http://127.0.0.1:" in output
    assert "without --duration, the demo keeps them until Ctrl-C" in " ".join(output.split())
    assert _still_alive(set(), marker) == set()
    assert not _port_open(_postgres_port(output))
    assert not _port_open(_redis_port(output))
    assert not _temp_dir_of(output).exists()


class _ServingDemo:
    """``dbsight demo`` without --duration, its output read line by line as it comes."""

    def __init__(self, marker: str) -> None:
        self.proc = subprocess.Popen(
            [*DEMO, "--scale", str(TEST_SCALE)],  # traffic, the summary, then serving
            env=_demo_env(marker),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        proc = self.proc
        self._reader = threading.Thread(
            target=lambda: [self._lines.put(line) for line in proc.stdout or ()]
        )
        self._reader.start()
        self.seen: list[str] = []

    def wait_for(self, text: str, timeout: float) -> str:
        """The output until a line holds ``text``."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.seen):
            assert time.monotonic() < deadline and self.proc.poll() is None, "".join(self.seen)
            try:
                self.seen.append(self._lines.get(timeout=0.5))
            except queue.Empty:
                continue
        return "".join(self.seen)

    def stop(self) -> str:
        """Ctrl-C unless it has ended (a test that failed early still lets the demo clean
        up); all it printed."""
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reader.join(timeout=10)
        while not self._lines.empty():
            self.seen.append(self._lines.get())
        return "".join(self.seen)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_while_it_serves_the_links_and_paths_it_prints_work(pg_server: Any) -> None:
    marker = uuid.uuid4().hex
    demo = _ServingDemo(marker)
    try:
        output = demo.wait_for("serving until Ctrl-C", 180)
        [summary_url] = re.findall(r"summary \(JSON\)\s+(\S+)", output)
        assert httpx.get(summary_url, timeout=30).json()["top"]
        [docs_url] = re.findall(r"OpenAPI docs\s+(http\S+)", output)
        assert httpx.get(docs_url, timeout=30).status_code == 200
        [shop_url] = re.findall(r"sample shop\s+(http\S+)", output)
        customer = httpx.get(shop_url, timeout=30).json()  # the platform's envelope
        assert customer["code"] == 0 and customer["data"]["id"] == 1
        for label in ("slow-query log", "dbsight's log"):
            [path] = re.findall(rf"{label}\s+(\S+)", output)
            assert Path(path).is_file()
        demo.proc.send_signal(signal.SIGINT)
        returncode = demo.proc.wait(timeout=60)
    finally:
        output = demo.stop()
    assert returncode == 0, output
    assert "stopped: the platform, PostgreSQL, Redis and the temporary files are gone" in output
    assert not Path(re.findall(r"slow-query log\s+(\S+)", output)[0]).exists()
    assert _still_alive(set(), marker) == set()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_the_traffic_stops_everything(pg_server: Any, signum: int) -> None:
    marker = uuid.uuid4().hex
    demo = _ServingDemo(marker)  # serves after the traffic: only a signal ends it
    try:
        demo.wait_for("platform listening on", 120)
        running = _demo_processes(marker)
        assert len(running) > 3  # the demo, the postmaster, its helpers and backends
        time.sleep(1.5)  # in the middle of the traffic
        demo.proc.send_signal(signum)
        returncode = demo.proc.wait(timeout=60)
    finally:
        output = demo.stop()
    assert returncode == 130, output
    assert "stopped" in output and "Traceback" not in output
    assert _still_alive(running, marker) == set()
    assert not _port_open(_postgres_port(output))


def test_plan_description_names_the_scanned_tables() -> None:
    plan = {"node_type": "Aggregate", "total_cost": 2022.5, "estimated_rows": 1,
            "seq_scans": ["orders"]}  # fmt: skip
    assert describe_plan(plan) == "Seq Scan on orders (cost 2022, ~1 rows)"
    assert describe_plan({"node_type": "Index Scan", "seq_scans": []}) == "Index Scan"
    assert describe_plan(None) == ""


def test_top_table_shows_unknown_rows_as_unknown() -> None:
    import io

    from rich.console import Console

    rows = [{"calls": 3, "rows": None, "normalized": "SELECT a"},
            {"calls": 2, "rows": 0, "normalized": "SELECT b"}]  # fmt: skip
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(top_table(rows))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    cells = [[c.strip() for c in line.split("│")] for line in lines if "SELECT" in line]
    assert [row[5] for row in cells] == ["–", "0"]  # calls, total, mean, p95, rows
