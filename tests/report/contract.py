"""Index advice and database checks in the shapes of their contracts (IndexAdvice.to_dict(),
CheckReport.to_dict(): /work/notes/CONTRACTS.md), about statements a real service ran."""

from __future__ import annotations

from typing import Any


def advice_for(statement: dict[str, Any]) -> dict[str, Any]:
    """Advice of an index on order_items (product_id) for ``statement`` (a summary entry),
    verified: 4.2 ms before, 0.1 ms after; and a partial index whose predicate names a value."""
    return {
        "indexes": [
            {
                "table": "order_items",
                "columns": ["product_id"],
                "include": ["quantity", "unit_price"],
                "where": None,
                "create": "CREATE INDEX CONCURRENTLY ON order_items (product_id) "
                "INCLUDE (quantity, unit_price)",
                "statements": [
                    {
                        "fingerprint": statement["fingerprint"],
                        "normalized": statement["normalized"],
                        "calls": statement["calls"],
                        "cost_before": 5745.0,
                        "cost_after": 12.5,
                        "measured_before_ms": 4.2,
                        "measured_after_ms": 0.1,
                    }
                ],
                "write_overhead": {"writes_per_minute": 3.0, "size_bytes": 409600},
                "reason": "Seq Scan on order_items for every product lookup",
            },
            {
                "table": "orders",
                "columns": ["customer_id"],
                "include": [],
                "where": "status = 'pending-review-4711'",
                "create": "CREATE INDEX CONCURRENTLY ON orders (customer_id) "
                "WHERE status = 'pending-review-4711'",
                "statements": [],
                "write_overhead": {},
                "reason": "one status dominates the traffic",
            },
        ],
        "rejected": [
            {"table": "orders", "columns": ["status"], "reason": "written 3,000 times per read"}
        ],
        "findings": [],
    }


CHECKS: dict[str, Any] = {
    "database": "shop",
    "checked_at": "2026-12-06T00:30:00Z",
    "checks": [
        {
            "name": "cache_hit_ratio",
            "title": "Cache hit ratio",
            "severity": "warning",
            "status": "ok",
            "summary": "99.6 % of reads from the cache",
            "items": [],
            "hint": None,
        },
        {
            "name": "unused_indexes",
            "title": "Unused indexes",
            "severity": "warning",
            "status": "failed",
            "summary": "1 index never scanned since the statistics reset",
            "items": [{"index": "orders_status_idx", "table": "orders", "size_bytes": 81920}],
            "hint": "DROP INDEX CONCURRENTLY orders_status_idx",
        },
        {
            "name": "long_running_queries",
            "title": "Queries running over 60 s",
            "severity": "critical",
            "status": "failed",
            "summary": "1 query running for 75 s",
            "items": [{"pid": 4242, "seconds": 75.0,
                       "query": "SELECT * FROM customers WHERE email = 'alice@example.com'"}],
            "hint": "pg_cancel_backend(pid)",
        },  # fmt: skip
    ],
}
