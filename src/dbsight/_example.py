"""`dbsight example`: the whole in-process pipeline, end to end, on a throw-away PostgreSQL.

It starts an embedded PostgreSQL (or uses ``--dsn``), loads a small shop schema, instruments
three real clients (SQLAlchemy, asyncpg, psycopg), runs a workload shaped like a web service
(primary-key lookups, a filter on a column without an index, an N+1 loop, a failing query)
inside request scopes, and prints what dbsight saw: the statistics table, the slow-query log
with its EXPLAIN plans and the Prometheus exposition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psycopg
from prometheus_client import generate_latest
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from . import _runtime
from .core import Settings, request_scope
from .embedded.postgres import EmbeddedPostgres
from .instrument import instrument
from .stats import top

SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, country text NOT NULL);
CREATE TABLE orders (
    id int PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers (id),
    status text NOT NULL,
    total numeric(10, 2) NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO customers
    SELECT g, 'customer ' || g, (ARRAY['de', 'fr', 'us', 'jp'])[1 + g %% 4]
    FROM generate_series(1, %(customers)s) g;
INSERT INTO orders
    SELECT g, 1 + (g * 7919) %% %(customers)s, (ARRAY['new', 'paid', 'shipped'])[1 + g %% 3],
           (g %% 500) + 0.99, now() - make_interval(mins => g)
    FROM generate_series(1, %(orders)s) g;
ANALYZE customers;
ANALYZE orders;
"""


@dataclass
class ExampleConfig:
    dsn: str | None = None
    customers: int = 20_000
    orders: int = 200_000
    slow_query_threshold_ms: float = 10.0
    requests: int = 60


@contextlib.contextmanager
def _database(dsn: str | None) -> Iterator[str]:
    if dsn is not None:
        yield dsn
        return
    with EmbeddedPostgres() as server:
        yield server.create_database("dbsight_example")


async def _workload(dsn: str, config: ExampleConfig, console: Console) -> None:
    engine = create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=4)
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
    conn = psycopg.connect(dsn, autocommit=True)
    handles = [instrument(engine), instrument(pool), instrument(conn)]
    try:
        for i in range(config.requests):
            customer = random.randint(1, config.customers)
            with request_scope(route="/customers/{id}"):
                await pool.fetchrow("SELECT id, name, country FROM customers WHERE id = $1", customer)
            if i % 6 == 0:
                # orders.customer_id has no index: a sequential scan, slow and in the slow log.
                with request_scope(route="/customers/{id}/orders"), engine.connect() as sa:
                    sa.execute(
                        text("SELECT id, status, total FROM orders WHERE customer_id = :c "
                             "ORDER BY created_at DESC LIMIT 20"),
                        {"c": customer},
                    ).all()
            if i % 10 == 0:
                # N+1: one query for the orders, then one per order for its customer.
                with request_scope(route="/orders/recent"):
                    recent = conn.execute(
                        "SELECT id, customer_id FROM orders ORDER BY id DESC LIMIT 10"
                    ).fetchall()
                    for _, customer_id in recent:
                        conn.execute(
                            "SELECT name FROM customers WHERE id = %s", (customer_id,)
                        ).fetchone()
        with request_scope(route="/reports/broken"), contextlib.suppress(asyncpg.PostgresError):
            await pool.fetch("SELECT * FROM order_archive WHERE id = $1", 1)
        await asyncio.sleep(0.5)  # let background EXPLAINs finish
        deadline = time.monotonic() + 5
        slowlog = _slow_sink()
        while slowlog is not None and slowlog.pending_plans and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        for handle in handles:
            handle.uninstrument()
        conn.close()
        await pool.close()
        engine.dispose()


def _slow_sink():  # type: ignore[no-untyped-def]
    from .export.slowlog import SlowQuerySink

    for sink in _runtime.get_runtime().sinks:
        if isinstance(sink, SlowQuerySink):
            return sink
    return None


def _print_stats(console: Console) -> None:
    table = Table(title="Top statements by total time (dbsight.stats.top)")
    for column in ("calls", "total ms", "mean ms", "p95 ms", "rows", "errors", "statement"):
        table.add_column(column, justify="right" if column != "statement" else "left")
    for row in top(8):
        table.add_row(
            str(row.calls),
            f"{row.total_time_s * 1e3:.1f}",
            f"{row.mean_time_s * 1e3:.2f}",
            f"{row.p95_s * 1e3:.2f}",
            str(row.rows),
            str(row.errors),
            row.normalized[:90],
        )
    console.print(table)


def _print_slow_log(console: Console, path: Path) -> None:
    table = Table(title=f"Slow-query log ({path})")
    for column in ("ms", "route", "statement", "plan"):
        table.add_column(column)
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines[-6:]:
        record = json.loads(line)
        summary = record.get("plan_summary") or {}
        plan = ", ".join(f"{k}={v}" for k, v in summary.items() if v) or record.get("plan_error", "")
        table.add_row(
            f"{record['duration_ms']:.1f}", str(record.get("route")), record["normalized"][:100],
            str(plan)[:70],
        )
    console.print(table)
    console.print(f"{len(lines)} slow statements logged")


def _print_metrics(console: Console) -> None:
    exposition = generate_latest(_runtime.get_runtime().registry).decode()
    wanted = ("db_client_operations_total{", "db_client_slow_operations_total{", "db_client_connections{")
    lines = [line for line in exposition.splitlines() if line.startswith(wanted)]
    console.print("[bold]Prometheus exposition (excerpt)[/bold]")
    for line in lines[:14]:
        console.print(f"  {line}", markup=False, highlight=False)


def run_example(config: ExampleConfig, console: Console | None = None) -> None:
    console = console or Console(width=160)
    with tempfile.TemporaryDirectory(prefix="dbsight-example-") as tmp:
        slow_log = Path(tmp) / "slow-queries.jsonl"
        _runtime.configure(
            Settings(
                service_name="example",
                slow_query_threshold_ms=config.slow_query_threshold_ms,
                slow_query_log=slow_log,
                explain_interval_s=0,
            )
        )
        with _database(config.dsn) as dsn:
            console.print(f"PostgreSQL ready: {dsn}")
            with psycopg.connect(dsn, autocommit=True) as setup:
                started = time.perf_counter()
                setup.execute("DROP TABLE IF EXISTS orders, customers")
                setup.execute(SCHEMA % {"customers": config.customers, "orders": config.orders})
                console.print(
                    f"loaded {config.customers} customers and {config.orders} orders "
                    f"in {time.perf_counter() - started:.1f}s"
                )
            asyncio.run(_workload(dsn, config, console))
        _print_stats(console)
        _print_slow_log(console, slow_log)
        _print_metrics(console)
        _runtime.configure(Settings())
