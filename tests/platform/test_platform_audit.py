"""Every mutation of the platform writes a dbsight audit row in its own transaction, on
PostgreSQL and MariaDB: a placed order leaves its success rows, a refused one (rolled back)
none of its own but one failure row; `dbsight audit recent` lists them."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from dbsight import audit
from dbsight.cli import app


async def audit_rows(database_url: str, entity_type: str, entity_id: str) -> list[Any]:
    engine = create_async_engine(database_url)
    try:
        table = audit.add_audit_table(sa.MetaData())
        query = (
            sa.select(table)
            .where(table.c.entity_type == entity_type, table.c.entity_id == entity_id)
            .order_by(table.c.id)
        )
        async with engine.connect() as connection:
            return list((await connection.execute(query)).mappings())
    finally:
        await engine.dispose()


async def failures_since(database_url: str, after_id: int) -> list[Any]:
    engine = create_async_engine(database_url)
    try:
        table = audit.add_audit_table(sa.MetaData())
        query = sa.select(table).where(table.c.id > after_id, table.c.result == "failure")
        async with engine.connect() as connection:
            return list((await connection.execute(query)).mappings())
    finally:
        await engine.dispose()


async def last_id(database_url: str) -> int:
    engine = create_async_engine(database_url)
    try:
        table = audit.add_audit_table(sa.MetaData())
        async with engine.connect() as connection:
            return int((await connection.execute(sa.select(sa.func.max(table.c.id)))).scalar() or 0)
    finally:
        await engine.dispose()


async def test_order_placement_is_audited(
    platform_client: httpx.AsyncClient, platform_database_url: str
) -> None:
    account = (
        await platform_client.post(
            "/v1/app-a/accounts",
            json={
                "username": f"audit{secrets.token_hex(4)}",
                "email": "someone@example.com",
                "balance": "15.00",
            },
        )
    ).json()["data"]
    product = (
        await platform_client.post(
            "/v1/app-b/products",
            json={
                "sku": f"SKU-{secrets.token_hex(4)}",
                "name": "Lamp",
                "price": "10.00",
                "stock": 5,
            },
        )
    ).json()["data"]
    body = {"account_id": account["id"], "product_id": product["id"], "quantity": 1}
    placed = await platform_client.post("/v1/app-a/orders", json=body)
    assert placed.status_code == 201, placed.text
    order = placed.json()

    rows = await audit_rows(platform_database_url, "order", str(order["data"]["id"]))
    assert len(rows) == 1
    row = rows[0]
    # the actor: the subject of the token the test client sends
    assert (row["actor"], row["operation"], row["result"]) == ("tester", "create", "success")
    assert row["trace_id"] == order["trace_id"]
    assert row["details"]["app"] == "app-a"
    assert set(row["details"]["fields"]) == {"account_id", "product_id", "quantity"}
    assert row["occurred_at"] is not None
    account_rows = await audit_rows(platform_database_url, "account", str(account["id"]))
    assert [r["operation"] for r in account_rows] == ["create"]

    # Refused (balance 5.00 < 10.00): rolled back, so no success row; one failure row.
    before = await last_id(platform_database_url)
    refused = await platform_client.post("/v1/app-a/orders", json=body)
    assert refused.json()["code"] == 2003
    after = await audit_rows(platform_database_url, "order", str(order["data"]["id"]))
    assert len(after) == 1
    failures = await failures_since(platform_database_url, before)
    assert len(failures) == 1
    failure = failures[0]
    assert (failure["operation"], failure["entity_type"]) == ("create", "order")
    assert failure["actor"] == "tester"
    assert failure["trace_id"] == refused.json()["trace_id"]
    assert failure["details"]["code"] == 2003
    assert "InsufficientBalance" in failure["error"]
    assert "15.00" not in failure["error"] and "10.00" not in failure["error"]

    # The CLI reads them from the platform's own database.
    result = CliRunner().invoke(
        app, ["audit", "recent", "--dsn", platform_database_url, "--limit", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    recent = json.loads(result.output)
    assert any(
        (r["entity_type"], r["entity_id"], r["result"]) == ("order", None, "failure")
        for r in recent
    ), recent
    assert any(
        (r["entity_type"], r["entity_id"]) == ("order", str(order["data"]["id"])) for r in recent
    ), recent
