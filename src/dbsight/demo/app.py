"""The sample service ``dbsight demo`` runs: a small shop API on FastAPI and asyncpg.

    app = create_app("postgresql://postgres@127.0.0.1:5432/shop")
    uvicorn.run(app)

    # or, for several workers (each builds its own app from the environment):
    DBSIGHT_DEMO_DSN=postgresql://... uvicorn --factory dbsight.demo.app:app_from_env --workers 2

It is instrumented the way an application would be: ``dbsight.instrument(app)`` once, which
also serves ``/metrics``, ``/metrics/summary`` and ``/health/ready``, and
``dbsight.instrument(pool)`` for the database. Its endpoints are the usual mix, each
there to show one thing dbsight finds (tables from `dbsight.demo.load_sample_data`):

    GET  /ping                          no database at all
    GET  /customers/{id}                one primary-key query            (fast)
    GET  /customers/{id}/orders         an indexed lookup                (fast)
    GET  /customers/lookup?email=       customers.email has no index     (sequential scan)
    GET  /products/{id}                 one primary-key query            (fast)
    GET  /products/{id}/sales           order_items.product_id, a foreign key without an
                                        index                            (slow: sequential scan)
    GET  /coupons/{code}                orders.coupon_code has no index  (sequential scan)
    GET  /orders/recent?limit=20        N+1: the orders, then one query per order for its items
    GET  /orders/{id}                   an order and its items           (two fast queries)
    POST /orders                        a transaction: prices, the order, its items
    GET  /reports/revenue?days=30       an aggregate over orders and items (slow)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

import dbsight

__all__ = ["ENV_DSN", "ENV_INSTRUMENT", "Database", "OrderIn", "app_from_env", "create_app"]

ENV_DSN = "DBSIGHT_DEMO_DSN"
ENV_INSTRUMENT = "DBSIGHT_DEMO_INSTRUMENT"


class OrderLineIn(BaseModel):
    product_id: int = Field(gt=0)
    quantity: int = Field(1, gt=0, le=100)


class OrderIn(BaseModel):
    customer_id: int = Field(gt=0)
    coupon_code: str | None = Field(None, max_length=40)
    items: list[OrderLineIn] = Field(min_length=1, max_length=50)


class Database:
    """Holds the app's pool (``app.state.db.pool`` while the app runs): the pool is made at
    start-up, after the routes that use it are defined."""

    pool: asyncpg.Pool


def _row(record: asyncpg.Record | None, what: str) -> dict[str, Any]:
    if record is None:
        raise HTTPException(status_code=404, detail=f"{what} not found")
    return dict(record)


def _rows(records: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(record) for record in records]


def create_app(
    dsn: str, *, instrument: bool = True, pool_min_size: int = 2, pool_max_size: int = 10
) -> FastAPI:
    """The sample shop service on the database at ``dsn`` (loaded by `load_sample_data`).

    With ``instrument`` (the default) the app and its pool are instrumented by dbsight;
    without, it is the same service with no dbsight at all (the benchmark's baseline).
    """
    db = Database()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db.pool = await asyncpg.create_pool(dsn, min_size=pool_min_size, max_size=pool_max_size)
        handle = dbsight.instrument(db.pool) if instrument else None
        try:
            yield
        finally:
            if handle is not None:
                handle.uninstrument()
            await db.pool.close()

    app = FastAPI(title="dbsight demo shop", lifespan=lifespan)
    app.state.db = db
    _add_routes(app, db)
    app.state.dbsight_handle = dbsight.instrument(app) if instrument else None
    return app


def app_from_env() -> FastAPI:
    """`create_app` from ``$DBSIGHT_DEMO_DSN`` (and ``$DBSIGHT_DEMO_INSTRUMENT=0`` for the
    uninstrumented service): what ``uvicorn --factory`` calls in every worker."""
    dsn = os.environ.get(ENV_DSN)
    if not dsn:
        raise RuntimeError(f"set {ENV_DSN} to the PostgreSQL DSN of the sample database")
    instrument = os.environ.get(ENV_INSTRUMENT, "1").strip().lower() not in ("0", "false", "no")
    return create_app(dsn, instrument=instrument)


def _add_routes(app: FastAPI, db: Database) -> None:
    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/customers/lookup")
    async def customer_by_email(email: str = Query(min_length=3, max_length=200)) -> dict[str, Any]:
        # customers.email has no index: a sequential scan over every customer
        record = await db.pool.fetchrow(
            "SELECT id, email, name, country FROM customers WHERE email = $1", email
        )
        return _row(record, "customer")

    @app.get("/customers/{customer_id}")
    async def customer(customer_id: int) -> dict[str, Any]:
        record = await db.pool.fetchrow(
            "SELECT id, email, name, country, created_at FROM customers WHERE id = $1",
            customer_id,
        )
        return _row(record, "customer")

    @app.get("/customers/{customer_id}/orders")
    async def customer_orders(customer_id: int) -> list[dict[str, Any]]:
        return _rows(
            await db.pool.fetch(
                "SELECT id, status, total, created_at FROM orders WHERE customer_id = $1 "
                "ORDER BY created_at DESC LIMIT 10",
                customer_id,
            )
        )

    @app.get("/products/{product_id}")
    async def product(product_id: int) -> dict[str, Any]:
        record = await db.pool.fetchrow(
            "SELECT id, sku, name, category, price FROM products WHERE id = $1", product_id
        )
        return _row(record, "product")

    @app.get("/products/{product_id}/sales")
    async def product_sales(product_id: int) -> dict[str, Any]:
        # order_items.product_id is a foreign key without an index: a sequential scan of
        # every order line, the classic missing index
        record = await db.pool.fetchrow(
            "SELECT count(*) AS lines, coalesce(sum(quantity), 0) AS units, "
            "coalesce(sum(quantity * unit_price), 0) AS revenue "
            "FROM order_items WHERE product_id = $1",
            product_id,
        )
        return {"product_id": product_id, **_row(record, "product")}

    @app.get("/coupons/{code}")
    async def coupon_usage(code: str) -> dict[str, Any]:
        # orders.coupon_code has no index: a sequential scan of every order
        record = await db.pool.fetchrow(
            "SELECT count(*) AS orders, coalesce(sum(total), 0) AS revenue FROM orders "
            "WHERE coupon_code = $1",
            code,
        )
        return {"code": code, **_row(record, "coupon")}

    @app.get("/orders/recent")
    async def recent_orders(limit: int = Query(20, ge=1, le=100)) -> list[dict[str, Any]]:
        # N+1 on purpose: one query for the orders, then one more per order for its items
        # (a join or `order_id = ANY($1)` would be one round trip)
        orders = _rows(
            await db.pool.fetch(
                "SELECT id, customer_id, status, total, created_at FROM orders "
                "ORDER BY created_at DESC LIMIT $1",
                limit,
            )
        )
        for order in orders:
            order["items"] = _rows(
                await db.pool.fetch(
                    "SELECT line, product_id, quantity, unit_price FROM order_items "
                    "WHERE order_id = $1 ORDER BY line",
                    order["id"],
                )
            )
        return orders

    @app.get("/orders/{order_id}")
    async def order(order_id: int) -> dict[str, Any]:
        async with db.pool.acquire() as conn:
            found = _row(
                await conn.fetchrow(
                    "SELECT id, customer_id, status, coupon_code, total, created_at "
                    "FROM orders WHERE id = $1",
                    order_id,
                ),
                "order",
            )
            found["items"] = _rows(
                await conn.fetch(
                    "SELECT line, product_id, quantity, unit_price FROM order_items "
                    "WHERE order_id = $1 ORDER BY line",
                    order_id,
                )
            )
        return found

    @app.post("/orders", status_code=201)
    async def create_order(body: OrderIn) -> dict[str, Any]:
        try:
            return await _insert_order(db.pool, body)
        except asyncpg.ForeignKeyViolationError:
            raise HTTPException(status_code=422, detail="unknown customer") from None

    @app.get("/reports/revenue")
    async def revenue_report(days: int = Query(30, ge=1, le=3650)) -> list[dict[str, Any]]:
        # deliberately heavy: joins and aggregates a good part of both big tables
        return _rows(
            await db.pool.fetch(
                "SELECT p.category, count(DISTINCT o.id) AS orders, "
                "sum(i.quantity * i.unit_price) AS revenue "
                "FROM orders o JOIN order_items i ON i.order_id = o.id "
                "JOIN products p ON p.id = i.product_id "
                "WHERE o.status <> 'cancelled' "
                "AND o.created_at > now() - make_interval(days => $1) "
                "GROUP BY p.category ORDER BY revenue DESC",
                days,
            )
        )


async def _insert_order(pool: asyncpg.Pool, body: OrderIn) -> dict[str, Any]:
    """One order in one transaction: prices from the products, the order, its lines."""
    product_ids = sorted({line.product_id for line in body.items})
    async with pool.acquire() as conn, conn.transaction():
        prices = {
            r["id"]: r["price"]
            for r in await conn.fetch(
                "SELECT id, price FROM products WHERE id = ANY($1::int[])", product_ids
            )
        }
        missing = [pid for pid in product_ids if pid not in prices]
        if missing:
            raise HTTPException(status_code=422, detail=f"unknown products: {missing}")
        total = sum(prices[line.product_id] * line.quantity for line in body.items)
        order_id = await conn.fetchval(
            "INSERT INTO orders (customer_id, status, coupon_code, total, created_at) "
            "VALUES ($1, 'new', $2, $3, now()) RETURNING id",
            body.customer_id,
            body.coupon_code,
            total,
        )
        await conn.executemany(
            "INSERT INTO order_items (order_id, line, product_id, quantity, unit_price) "
            "VALUES ($1, $2, $3, $4, $5)",
            [
                (order_id, n, line.product_id, line.quantity, prices[line.product_id])
                for n, line in enumerate(body.items, start=1)
            ],
        )
    return {"id": order_id, "total": total}
