"""What a client sees when the platform's dependencies fail: the database or Redis down
answers 503 with 5001 / 5003 and readiness fails; an unexpected exception answers 500 with
9000 and never its text. A closed loopback port stands in for the server that is down."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from platform_helpers import closed_port, serve_in_process

SECRET = "s3cret-detail-4711"


def check_envelope(response: Any, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["data"] is None
    assert body["trace_id"] == response.headers["traceparent"].split("-")[1]
    assert response.headers["x-content-type-options"] == "nosniff"
    return body


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
async def test_database_down(
    backend: str, platform_settings_factory: Callable[..., Any], fresh_runtime: Any
) -> None:
    from dbsight_platform.main import create_app

    scheme = (
        "postgresql+asyncpg://app:pw@" if backend == "postgresql" else "mysql+aiomysql://app:pw@"
    )
    settings = platform_settings_factory(f"{scheme}127.0.0.1:{closed_port()}/platform")
    async with serve_in_process(create_app(settings)) as client:
        body = check_envelope(await client.get("/v1/app-a/accounts"), 503, 5001)
        assert body["message"] == "Database unavailable"
        assert "127.0.0.1" not in body["message"]
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        failing = [
            name for name, check in ready.json()["checks"].items() if check["status"] != "ok"
        ]
        assert failing and all(name.startswith(backend) for name in failing)


async def test_redis_down(
    platform_database_url: str, platform_settings_factory: Callable[..., Any], fresh_runtime: Any
) -> None:
    from dbsight_platform.main import create_app

    settings = platform_settings_factory(
        platform_database_url, redis_url=f"redis://127.0.0.1:{closed_port()}/0"
    )
    async with serve_in_process(create_app(settings)) as client:
        order = {"account_id": 1, "product_id": 1, "quantity": 1}
        response = await client.post(
            "/v1/app-a/orders", json=order, headers={"Idempotency-Key": "retry-key-0001"}
        )
        check_envelope(response, 503, 5003)
        assert (await client.get("/health/ready")).status_code == 503
        # What does not need Redis keeps working.
        assert (await client.get("/v1/app-b/products")).status_code == 200


async def test_unhandled_exception(
    platform_settings: Any, fresh_runtime: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from dbsight_platform.main import create_app

    app = create_app(platform_settings)

    async def broken() -> None:
        raise RuntimeError(SECRET)

    app.add_api_route("/v1/app-a/broken", broken)
    with caplog.at_level(logging.ERROR, logger="dbsight_platform.errors"):
        async with serve_in_process(app) as client:
            response = await client.get("/v1/app-a/broken")
    body = check_envelope(response, 500, 9000)
    assert body["message"] == "Internal server error"
    assert SECRET not in response.text
    logged = [record for record in caplog.records if record.name == "dbsight_platform.errors"]
    assert logged and logged[0].exc_info is not None
    assert logged[0].trace_id == body["trace_id"]
