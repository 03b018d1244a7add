"""The sample shop as the platform's third application (what ``dbsight demo`` serves), on a
PostgreSQL database holding the sample tables and the platform's migrations: the envelope,
its intentional N+1 listing seen by dbsight, and its order written with an audit row (a
refused one with a failure row)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from platform_helpers import serve_in_process
from sqlalchemy.ext.asyncio import create_async_engine

from dbsight import audit
from dbsight.demo import load_sample_data


@pytest.fixture(scope="module")
def shop_database(pg_server: Any) -> Any:
    """A database with the shop's sample tables (small) and the platform's tables."""
    import asyncio

    from dbsight_platform.core.config import load_settings
    from dbsight_platform.migrations import runner

    with pg_server.temporary_database() as dsn:
        asyncio.run(load_sample_data(dsn, 0.01))
        url = load_settings(database_url=dsn, redis_url="redis://127.0.0.1:1/0").database_url
        runner.upgrade(load_settings(database_url=url, redis_url="redis://127.0.0.1:1/0"))
        yield url


@pytest.fixture
async def shop_client(
    shop_database: str, platform_settings_factory: Callable[..., Any], fresh_runtime: Any
) -> AsyncIterator[httpx.AsyncClient]:
    from dbsight_platform.apps.shop.router import TAG
    from dbsight_platform.apps.shop.router import router as shop_router
    from dbsight_platform.main import create_app

    app = create_app(
        platform_settings_factory(shop_database),
        routers=[shop_router],
        tags=[TAG],
        dbsight_overrides={"n_plus_one_min_total_ms": 0.0},
    )
    async with serve_in_process(app) as client:
        yield client


async def audit_rows(url: str, **where: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        table = audit.add_audit_table(sa.MetaData())
        query = sa.select(table).where(*(table.c[k] == v for k, v in where.items()))
        async with engine.connect() as connection:
            return list((await connection.execute(query.order_by(table.c.id))).mappings())
    finally:
        await engine.dispose()


async def test_shop_answers_in_the_envelope(shop_client: httpx.AsyncClient) -> None:
    found = (await shop_client.get("/v1/shop/customers/7")).json()
    assert found["code"] == 0 and found["data"]["email"] == "customer7@example.com"
    by_email = await shop_client.get(
        "/v1/shop/customers/lookup", params={"email": "customer7@example.com"}
    )
    assert by_email.json()["data"]["id"] == 7
    missing = await shop_client.get("/v1/shop/customers/999999")
    assert missing.status_code == 404
    assert missing.json()["code"] != 0 and missing.json()["data"] is None
    sales = (await shop_client.get("/v1/shop/products/3/sales")).json()["data"]
    assert sales["product_id"] == 3 and sales["lines"] > 0
    report = (await shop_client.get("/v1/shop/reports/revenue")).json()["data"]
    assert report and {"category", "orders", "revenue"} <= set(report[0])
    schema = (await shop_client.get("/openapi.json")).json()
    assert "/v1/shop/orders/recent" in schema["paths"]
    assert {"name": "Shop"}.items() <= next(
        t for t in schema["tags"] if t["name"] == "Shop"
    ).items()


async def test_recent_orders_is_an_n_plus_one(shop_client: httpx.AsyncClient) -> None:
    recent = (await shop_client.get("/v1/shop/orders/recent", params={"limit": 5})).json()
    assert len(recent["data"]) == 5 and all(order["items"] for order in recent["data"])
    summary = (await shop_client.get("/metrics/summary")).json()
    findings = [f for f in summary["n_plus_one"] if f["route"] == "/v1/shop/orders/recent"]
    assert findings and findings[0]["count"] == 5


async def test_order_is_written_with_its_audit_row(
    shop_client: httpx.AsyncClient, shop_database: str
) -> None:
    body = {"customer_id": 7, "items": [{"product_id": 1, "quantity": 2}, {"product_id": 2}]}
    placed = await shop_client.post("/v1/shop/orders", json=body)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["data"]["id"]
    order = (await shop_client.get(f"/v1/shop/orders/{order_id}")).json()["data"]
    assert [(i["product_id"], i["quantity"]) for i in order["items"]] == [(1, 2), (2, 1)]
    [row] = await audit_rows(shop_database, entity_type="shop_order", entity_id=str(order_id))
    assert (row["operation"], row["result"], row["actor"]) == ("create", "success", "anonymous")
    assert row["trace_id"] == placed.json()["trace_id"]

    unknown = await shop_client.post(
        "/v1/shop/orders", json={"customer_id": 999_999, "items": [{"product_id": 1}]}
    )
    assert unknown.status_code == 400 and unknown.json()["code"] != 0
    failures = await audit_rows(shop_database, entity_type="shop_order", result="failure")
    assert [f["trace_id"] for f in failures] == [unknown.json()["trace_id"]]
    assert "999999" not in (failures[0]["error"] or "")
