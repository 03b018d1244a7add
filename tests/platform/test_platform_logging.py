"""Request logs with their trace: JSON lines in production (the access line's trace_id is the
envelope's), readable lines ending in the trace id in development."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from platform_helpers import serve_in_process


async def test_json_logs_in_production(
    platform_pg_url: str,
    platform_settings_factory: Callable[..., Any],
    fresh_runtime: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dbsight_platform.main import create_app

    settings = platform_settings_factory(
        platform_pg_url,
        environment="production",
        jwt_secret="p" * 40,
        log_level="INFO",
        log_sample_rate=1.0,
    )
    async with serve_in_process(create_app(settings)) as client:
        response = await client.get("/v1/app-a/accounts/2147483647")
    trace_id = response.json()["trace_id"]
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    access = [line for line in lines if line["logger"] == "dbsight.access"]
    assert access, lines
    assert any(line["trace_id"] == trace_id and line["status"] == 404 for line in access)
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert all(line["service.name"] == "dbsight-platform" for line in lines)


async def test_readable_logs_in_development(
    platform_pg_url: str,
    platform_settings_factory: Callable[..., Any],
    fresh_runtime: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dbsight_platform.main import create_app

    settings = platform_settings_factory(platform_pg_url, log_level="INFO")
    async with serve_in_process(create_app(settings)) as client:
        response = await client.get("/v1/app-b/products")
    trace_id = response.json()["trace_id"]
    lines = capsys.readouterr().err.splitlines()
    assert any(
        "dbsight.access: GET /v1/app-b/products 200" in line
        and line.endswith(f"[trace={trace_id}]")
        for line in lines
    ), lines
