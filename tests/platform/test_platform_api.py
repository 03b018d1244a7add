"""The platform's applications over HTTP, on PostgreSQL and on MariaDB with real Redis: the
envelope on success and on every kind of error, business codes and their HTTP statuses,
pagination and filters, the cross-application order transaction, idempotent retries."""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from platform_helpers import serve_in_process

import dbsight

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$")


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def envelope(response: httpx.Response) -> dict[str, Any]:
    """The body, checked to be the envelope whose trace id is the response's traceparent's."""
    body = response.json()
    assert set(body) == {"code", "message", "data", "trace_id", "timestamp"}, body
    match = TRACEPARENT.match(response.headers["traceparent"])
    assert match is not None
    assert body["trace_id"] == match.group(1)
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    assert isinstance(body["message"], str) and body["message"]
    if body["code"] != 0:
        assert body["data"] is None
    return body


async def make_account(client: httpx.AsyncClient, balance: str = "100.00") -> dict[str, Any]:
    response = await client.post(
        "/v1/app-a/accounts",
        json={"username": unique("u"), "email": "someone@example.com", "balance": balance},
    )
    assert response.status_code == 201, response.text
    return envelope(response)["data"]


async def make_product(
    client: httpx.AsyncClient, price: str = "10.00", stock: int = 5, name: str = "Lamp"
) -> dict[str, Any]:
    response = await client.post(
        "/v1/app-b/products",
        json={"sku": unique("SKU-"), "name": name, "price": price, "stock": stock},
    )
    assert response.status_code == 201, response.text
    return envelope(response)["data"]


async def test_success_envelope(platform_client: httpx.AsyncClient) -> None:
    account = await make_account(platform_client, "12.50")
    assert account["balance"] == "12.50"
    response = await platform_client.get(f"/v1/app-a/accounts/{account['id']}")
    assert response.status_code == 200
    body = envelope(response)
    assert body["code"] == 0 and body["message"] == "Success"
    assert body["data"]["username"] == account["username"]
    assert body["data"]["created_at"].endswith(("Z", "+00:00"))


async def test_incoming_trace_is_continued(platform_client: httpx.AsyncClient) -> None:
    trace_id = secrets.token_hex(16)
    response = await platform_client.get(
        "/v1/app-b/products/2147483647",
        headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
    )
    assert response.status_code == 404
    assert envelope(response)["trace_id"] == trace_id


async def test_pagination_and_filters(platform_client: httpx.AsyncClient) -> None:
    token = unique("lamp")
    for price in ("5.00", "15.00", "25.00"):
        await make_product(platform_client, price=price, name=f"Desk {token.upper()} {price}")
    response = await platform_client.get(
        "/v1/app-b/products", params={"name": token, "page_size": 2}
    )
    page = envelope(response)["data"]
    assert (page["total"], page["page"], page["page_size"], page["total_pages"]) == (3, 1, 2, 2)
    assert len(page["items"]) == 2
    page2 = envelope(
        await platform_client.get(
            "/v1/app-b/products", params={"name": token, "page_size": 2, "page": 2}
        )
    )["data"]
    assert len(page2["items"]) == 1
    ids = {item["id"] for item in page["items"]} | {item["id"] for item in page2["items"]}
    assert len(ids) == 3
    ranged = envelope(
        await platform_client.get(
            "/v1/app-b/products", params={"name": token, "min_price": "10", "max_price": "20"}
        )
    )["data"]
    assert [item["price"] for item in ranged["items"]] == ["15.00"]
    beyond = envelope(
        await platform_client.get("/v1/app-b/products", params={"name": token, "page": 9})
    )["data"]
    assert beyond["items"] == [] and beyond["total"] == 3


async def test_order_transaction_and_business_codes(platform_client: httpx.AsyncClient) -> None:
    account = await make_account(platform_client, "25.00")
    product = await make_product(platform_client, price="10.00", stock=5)
    order_body = {"account_id": account["id"], "product_id": product["id"]}

    placed = await platform_client.post("/v1/app-a/orders", json={**order_body, "quantity": 2})
    assert placed.status_code == 201
    order = envelope(placed)["data"]
    assert (order["total"], order["status"]) == ("20.00", "placed")

    async def balance() -> Decimal:
        response = await platform_client.get(f"/v1/app-a/accounts/{account['id']}")
        return Decimal(envelope(response)["data"]["balance"])

    async def stock() -> int:
        response = await platform_client.get(f"/v1/app-b/inventory/{product['id']}")
        return int(envelope(response)["data"]["quantity"])

    assert (await balance(), await stock()) == (Decimal("5.00"), 3)

    # Business refusals: HTTP 200, their code, nothing changed (the transaction rolled back).
    poor = await platform_client.post("/v1/app-a/orders", json={**order_body, "quantity": 1})
    assert poor.status_code == 200
    assert envelope(poor)["code"] == 2003
    short = await platform_client.post("/v1/app-a/orders", json={**order_body, "quantity": 4})
    assert short.status_code == 200
    assert envelope(short)["code"] == 2001
    assert (await balance(), await stock()) == (Decimal("5.00"), 3)

    cancelled = await platform_client.post(f"/v1/app-a/orders/{order['id']}/cancel")
    assert envelope(cancelled)["data"]["status"] == "cancelled"
    assert (await balance(), await stock()) == (Decimal("25.00"), 5)
    again = await platform_client.post(f"/v1/app-a/orders/{order['id']}/cancel")
    assert again.status_code == 200 and envelope(again)["code"] == 10001

    listed = envelope(
        await platform_client.get(
            "/v1/app-a/orders", params={"account_id": account["id"], "status": "cancelled"}
        )
    )["data"]
    assert [item["id"] for item in listed["items"]] == [order["id"]]

    # An account with orders cannot be deleted; a product with orders neither.
    refused = await platform_client.delete(f"/v1/app-a/accounts/{account['id']}")
    assert refused.status_code == 409 and envelope(refused)["code"] == 10004
    refused = await platform_client.delete(f"/v1/app-b/products/{product['id']}")
    assert refused.status_code == 409 and envelope(refused)["code"] == 4003


async def test_stock_adjustment_below_zero(platform_client: httpx.AsyncClient) -> None:
    product = await make_product(platform_client, stock=2)
    url = f"/v1/app-b/inventory/{product['id']}/adjust"
    response = await platform_client.post(url, json={"delta": -3})
    assert response.status_code == 200 and envelope(response)["code"] == 20001
    response = await platform_client.post(url, json={"delta": 4})
    assert envelope(response)["data"]["quantity"] == 6


async def test_idempotent_order(
    platform_client: httpx.AsyncClient, redis_server: Any, redis_prefix: str
) -> None:
    account = await make_account(platform_client)
    product = await make_product(platform_client, stock=10)
    key = secrets.token_hex(8)
    body = {"account_id": account["id"], "product_id": product["id"], "quantity": 1}
    first = await platform_client.post(
        "/v1/app-a/orders", json=body, headers={"Idempotency-Key": key}
    )
    second = await platform_client.post(
        "/v1/app-a/orders", json=body, headers={"Idempotency-Key": key}
    )
    assert first.status_code == 201 and second.status_code == 200
    assert envelope(second)["message"] == "Order already placed"
    assert envelope(first)["data"]["id"] == envelope(second)["data"]["id"]
    stock = envelope(await platform_client.get(f"/v1/app-b/inventory/{product['id']}"))["data"]
    assert stock["quantity"] == 9
    import redis

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        stored = client.get(f"{redis_prefix}app-a:idempotency:{key}")
    finally:
        client.close()
    assert stored == str(envelope(first)["data"]["id"])


async def test_resource_errors(platform_client: httpx.AsyncClient) -> None:
    missing = await platform_client.get("/v1/app-a/accounts/2147483647")
    assert missing.status_code == 404 and envelope(missing)["code"] == 4001

    account = await make_account(platform_client)
    duplicate = await platform_client.post(
        "/v1/app-a/accounts", json={"username": account["username"], "email": "x@example.com"}
    )
    assert duplicate.status_code == 409 and envelope(duplicate)["code"] == 4002

    deleted = await platform_client.delete(f"/v1/app-a/accounts/{account['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    gone = await platform_client.get(f"/v1/app-a/accounts/{account['id']}")
    assert gone.status_code == 404 and envelope(gone)["code"] == 4001


async def test_protocol_errors(platform_client: httpx.AsyncClient) -> None:
    unknown = await platform_client.get("/v1/app-c/things")
    assert unknown.status_code == 404 and envelope(unknown)["code"] == 4004
    assert envelope(unknown)["message"] == "Endpoint not found"
    method = await platform_client.put("/v1/app-a/accounts")
    assert method.status_code == 405 and envelope(method)["code"] == 4005
    assert method.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"email": "a@example.com"}, 3002),
        ({"username": "ab", "email": "a@example.com"}, 3001),
        ({"username": "abc", "email": "a@example.com", "balance": "-1"}, 3001),
        ({"username": "abc", "email": "a@example.com", "extra": 1}, 3001),
        ({"username": "ab\x00c", "email": "a@example.com"}, 3001),
        ({"username": "abc", "email": "a@ex\ud800.com"}, 3001),
    ],
)
async def test_validation_errors(
    platform_client: httpx.AsyncClient, body: dict[str, Any], code: int
) -> None:
    # json.dumps escapes a lone surrogate as JSON allows (\ud800); httpx would refuse it.
    response = await platform_client.post(
        "/v1/app-a/accounts", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    result = envelope(response)
    assert result["code"] == code
    assert "body." in result["message"]


async def test_malformed_json(platform_client: httpx.AsyncClient) -> None:
    response = await platform_client.post(
        "/v1/app-b/products", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and envelope(response)["code"] == 3003


async def test_security_headers_and_gzip(platform_client: httpx.AsyncClient) -> None:
    for path in ("/v1/app-b/products", "/health/ready", "/v1/app-z"):
        response = await platform_client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src" in response.headers["content-security-policy"]
        assert "strict-transport-security" not in response.headers
    docs = await platform_client.get("/docs")
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]

    token = unique("gz")
    for _ in range(8):
        await make_product(platform_client, name=f"Gzip {token} " + "x" * 100)
    big = await platform_client.get(
        "/v1/app-b/products", params={"name": token}, headers={"accept-encoding": "gzip"}
    )
    assert big.headers.get("content-encoding") == "gzip"
    assert envelope(big)["data"]["total"] == 8
    small = await platform_client.get(
        "/v1/app-b/products/2147483647", headers={"accept-encoding": "gzip"}
    )
    assert "content-encoding" not in small.headers


async def test_readiness(platform_client: httpx.AsyncClient, platform_database_url: str) -> None:
    response = await platform_client.get("/health/ready")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert any(name.startswith(("postgresql", "mysql")) for name in checks)
    assert any(name.startswith("redis") for name in checks)
    assert (await platform_client.get("/healthz")).status_code == 200


async def test_hsts_only_over_https(platform_client: httpx.AsyncClient) -> None:
    plain = await platform_client.get("/healthz")
    assert "strict-transport-security" not in plain.headers
    secure = await platform_client.get("https://platform/healthz")
    assert secure.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_contains_filter_matches_wildcards_literally(
    platform_client: httpx.AsyncClient,
) -> None:
    token = unique("wild")
    await make_product(platform_client, name=f"{token}abc")
    for pattern in (f"{token}%", f"{token}_bc", f"{token.upper()}ABC"):
        response = await platform_client.get("/v1/app-b/products", params={"name": pattern})
        total = envelope(response)["data"]["total"]
        assert total == (1 if pattern.endswith("ABC") else 0), pattern


async def test_outside_calls_are_instrumented(
    platform_settings: Any, fresh_runtime: Any, httpserver: Any
) -> None:
    from dbsight_platform.main import create_app

    httpserver.expect_request("/ping").respond_with_data("pong")
    app = create_app(platform_settings)
    async with serve_in_process(app) as client:
        with dbsight.request_scope(route="/jobs/ping") as scope:
            answer = await app.state.http.get(httpserver.url_for("/ping"))
        assert answer.text == "pong"
        metrics = (await client.get("/metrics")).text
    sent = httpserver.log[-1][0]
    assert sent.headers["traceparent"].split("-")[1] == scope.trace_id
    assert "external_api_requests_total" in metrics


async def test_idempotency_key_in_flight(
    platform_client: httpx.AsyncClient, redis_server: Any, redis_prefix: str
) -> None:
    import redis

    key = secrets.token_hex(8)
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        client.set(f"{redis_prefix}app-a:idempotency:{key}", "pending", ex=60)
    finally:
        client.close()
    body = {"account_id": 1, "product_id": 1, "quantity": 1}
    response = await platform_client.post(
        "/v1/app-a/orders", json=body, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 409 and envelope(response)["code"] == 10003


async def test_cors_from_settings(
    platform_database_url: str, platform_settings_factory: Any, fresh_runtime: Any
) -> None:
    from dbsight_platform.main import create_app

    settings = platform_settings_factory(
        platform_database_url, cors_origins=["http://shop.example"]
    )
    async with serve_in_process(create_app(settings)) as client:
        preflight = await client.options(
            "/v1/app-a/orders",
            headers={
                "origin": "http://shop.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type,idempotency-key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://shop.example"
        assert preflight.headers["x-frame-options"] == "DENY"
        other = await client.get("/v1/app-b/products", headers={"origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        allowed = await client.get("/v1/app-b/products", headers={"origin": "http://shop.example"})
        assert allowed.headers["access-control-allow-origin"] == "http://shop.example"
        assert "traceparent" in allowed.headers["access-control-expose-headers"].lower()
