"""Schemas and workloads the advisor tests share: small tables with known missing and
existing indexes, and workload statements built the way the loaders build them (normalized
and fingerprinted by dbsight.sql, with real samples)."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from dbsight.sql import analyze
from dbsight.workload import Sample, Workload, WorkloadStatement

SHOP = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, country text NOT NULL,
                        created_at timestamptz NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,
                     total numeric NOT NULL, created_at timestamptz NOT NULL, note text);
CREATE TABLE events (id bigserial PRIMARY KEY, kind text NOT NULL, payload text,
                     at timestamptz NOT NULL);
CREATE TABLE line_items (order_id int NOT NULL, product text NOT NULL, qty int NOT NULL);
INSERT INTO customers
SELECT i, 'user' || i || '@example.com', (ARRAY['fr','de','us','jp'])[1 + i % 4],
       -- spread over the heap: a range of created_at is not a run of neighbouring pages
       now() - ((i * 7919) % 20000) * interval '1 minute'
FROM generate_series(1, 20000) i;
INSERT INTO orders
SELECT i, 1 + (i * 7919) % 20000,
       CASE WHEN i % 50 = 0 THEN 'pending' WHEN i % 7 = 0 THEN 'cancelled' ELSE 'shipped' END,
       (i % 1000) / 10.0, now() - i * interval '1 second', NULL
FROM generate_series(1, 60000) i;
INSERT INTO events (kind, payload, at)
SELECT 'k' || (i % 500), 'p', now() - i * interval '1 second' FROM generate_series(1, 20000) i;
INSERT INTO line_items SELECT 1 + i % 60000, 'p' || (i % 300), 1 + i % 5
FROM generate_series(1, 120000) i;
VACUUM ANALYZE;
"""


def setup(dsn: str, script: str = SHOP) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for part in script.split(";\n"):
            if part.strip():
                conn.execute(part)
        # A second pass: the first one, right after the loads, leaves some pages not yet
        # all-visible, and index-only scans are costed by the visibility map.
        conn.execute("VACUUM ANALYZE")


def statement(
    sql: str,
    *,
    calls: int = 100,
    total_ms: float = 1000.0,
    samples: Sequence[Sample] = (),
    rows: int | None = None,
) -> WorkloadStatement:
    info = analyze(sql, "postgresql")
    return WorkloadStatement(
        fingerprint=info.fingerprint, normalized=info.normalized, operation=info.operation,
        tables=info.tables, calls=calls, total_time_s=total_ms / 1000.0, rows=rows,
        samples=list(samples), sources=("test",),
    )  # fmt: skip


def workload(*statements: WorkloadStatement, window_s: float | None = 60.0) -> Workload:
    return Workload.of(statements, window_s=window_s)


def index_defs(dsn: str, table: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", (table,)
        ).fetchall()
    return [r[0] for r in rows]


def params(sql: str, *values: Sequence[str | None]) -> list[Sample]:
    """Samples of ``sql`` (with ``$n``) with each tuple of parameter values."""
    return [Sample(sql, tuple(v)) for v in values]


def advised(advice, table: str) -> list:  # type: ignore[no-untyped-def]
    return [i for i in advice.indexes if i.index.table == table]
