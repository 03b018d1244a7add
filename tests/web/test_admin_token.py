"""``admin_token``: dbsight's endpoints want the bearer token, the probes stay open."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import dbsight
from dbsight.core import ConfigError, load_settings
from dbsight.web import Endpoints

TOKEN = "s3cret-token-123"


def _client(app: Any, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app", headers=headers
    )


async def test_every_endpoint_but_the_probes_wants_the_token(fresh_runtime: Any) -> None:
    dbsight.configure(dbsight.Settings(admin_token=TOKEN, explain_slow_queries=False))
    endpoints = Endpoints("/dbsight")
    async with _client(endpoints) as anonymous:
        for path in ("/dbsight/metrics", "/dbsight/metrics/summary", "/dbsight/metrics/alerts",
                     "/dbsight/health"):
            response = await anonymous.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
        assert (await anonymous.get("/dbsight/healthz")).status_code == 200
        assert (await anonymous.get("/dbsight/health/ready")).status_code == 200
    async with _client(endpoints, {"Authorization": "Bearer wrong-token-xx"}) as wrong:
        assert (await wrong.get("/dbsight/metrics")).status_code == 401
    async with _client(endpoints, {"Authorization": f"Bearer {TOKEN}"}) as holder:
        assert (await holder.get("/dbsight/metrics")).status_code == 200
        assert (await holder.get("/dbsight/metrics/summary")).json()["top"] == []


async def test_without_a_token_everything_is_open(fresh_runtime: Any) -> None:
    dbsight.configure(dbsight.Settings(explain_slow_queries=False))
    async with _client(Endpoints()) as anonymous:
        assert (await anonymous.get("/metrics")).status_code == 200


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="admin_token"):
        load_settings(admin_token="short")
