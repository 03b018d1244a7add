"""The service the dashboards are checked against: a FastAPI app instrumented by dbsight with
every kind of work the dashboards show, run by ``uvicorn --factory`` in a process of its
own (so its /metrics holds only what this service did).

    GET  /items/{id}      one primary-key query
    GET  /orders/recent   N+1: the orders, then one query per order for its items
    GET  /slow            a statement over the slow-query threshold
    GET  /broken          a failing statement (missing table) and a 500
    GET  /duplicate       an INSERT the server refuses with a unique violation (23505): a 409
    GET  /cache/{key}     Redis GET (a miss first, then hits) and SET
    GET  /external        calls through an instrumented httpx client: 200, 503 and refused
    POST /jobs            background work under @db_observer: one run ok, one that raises

Configured by environment: DASHBOARD_TEST_DSN, DASHBOARD_TEST_REDIS_URL,
DASHBOARD_TEST_REDIS_PREFIX, DASHBOARD_TEST_EXTERNAL_URL (a local stand-in answering /ok
and /unavailable) and DASHBOARD_TEST_REFUSED_URL (a closed port); dbsight by DBSIGHT_*.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException

import dbsight


class _State:
    pool: asyncpg.Pool
    cache: Any
    http: httpx.AsyncClient


def app_from_env() -> FastAPI:
    dsn = os.environ["DASHBOARD_TEST_DSN"]
    prefix = os.environ["DASHBOARD_TEST_REDIS_PREFIX"]
    external = os.environ["DASHBOARD_TEST_EXTERNAL_URL"]
    refused = os.environ["DASHBOARD_TEST_REFUSED_URL"]
    state = _State()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
        state.cache = aioredis.from_url(os.environ["DASHBOARD_TEST_REDIS_URL"])
        state.http = httpx.AsyncClient(timeout=5)
        handles = [dbsight.instrument(x) for x in (state.pool, state.cache, state.http)]
        try:
            yield
        finally:
            for handle in handles:
                handle.uninstrument()
            await state.http.aclose()
            await state.cache.aclose()
            await state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        row = await state.pool.fetchrow("SELECT id, name FROM items WHERE id = $1", item_id)
        if row is None:
            raise HTTPException(404)
        return dict(row)

    @app.get("/orders/recent")
    async def recent() -> list[dict[str, Any]]:
        orders = await state.pool.fetch("SELECT id FROM orders ORDER BY id LIMIT 8")
        result = []
        for order in orders:  # the N+1 on purpose
            lines = await state.pool.fetch(
                "SELECT item_id FROM order_lines WHERE order_id = $1", order["id"]
            )
            result.append({"id": order["id"], "lines": len(lines)})
        return result

    @app.get("/slow")
    async def slow() -> dict[str, Any]:
        await state.pool.fetchval("SELECT count(*) FROM items, pg_sleep(0.03)")
        return {"ok": True}

    @app.get("/broken")
    async def broken() -> None:
        try:
            await state.pool.fetchval("SELECT * FROM no_such_table")
        except asyncpg.UndefinedTableError:
            raise HTTPException(500, "the table is missing") from None

    @app.get("/duplicate")
    async def duplicate() -> None:
        try:
            await state.pool.execute("INSERT INTO items (id, name) VALUES (1, 'again')")
        except asyncpg.UniqueViolationError:
            raise HTTPException(409, "item 1 exists") from None

    @app.get("/cache/{key}")
    async def cached(key: str) -> dict[str, Any]:
        value = await state.cache.get(prefix + key)
        if value is None:
            await state.cache.set(prefix + key, "1", ex=60)
        return {"hit": value is not None}

    @app.get("/external")
    async def external_calls() -> dict[str, Any]:
        ok = await state.http.get(external + "/ok")
        unavailable = await state.http.get(external + "/unavailable")
        try:
            await state.http.get(refused)
            reached = True
        except httpx.ConnectError:
            reached = False
        return {
            "ok": ok.status_code,
            "unavailable": unavailable.status_code,
            "refused": not reached,
        }

    @dbsight.db_observer("nightly_rollup")
    async def rollup() -> int:
        return int(await state.pool.fetchval("SELECT count(*) FROM order_lines"))

    @dbsight.db_observer("invoice_export")
    async def export_invoices() -> None:
        await state.pool.fetchval("SELECT count(*) FROM orders")
        raise RuntimeError("the invoice service is down")

    @app.post("/jobs")
    async def jobs() -> dict[str, Any]:
        lines = await rollup()
        try:
            await export_invoices()
        except RuntimeError:
            pass
        return {"lines": lines}

    dbsight.instrument(app)
    return app


SCHEMA = """
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY);
CREATE TABLE order_lines (order_id int NOT NULL REFERENCES orders, item_id int NOT NULL);
CREATE INDEX ON order_lines (order_id);
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 50) g;
INSERT INTO orders SELECT g FROM generate_series(1, 20) g;
INSERT INTO order_lines SELECT o, i FROM generate_series(1, 20) o, generate_series(1, 3) i;
"""
