"""Inside an instrumented FastAPI request, audit records carry the request's trace id (the
one its traceparent answers with, or continues), request id, route and service name: also a
failure record, written on another connection."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

import dbsight
from dbsight import audit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]")


def build_app(engine: AsyncEngine) -> FastAPI:
    app = FastAPI()

    @app.post("/users/{user_id}/rename")
    async def rename(user_id: int, name: str) -> dict[str, Any]:
        async with AsyncSession(engine) as session:
            await audit.arecord(session, actor="alice", operation="update", entity_type="user",
                                entity_id=user_id, details={"name": name, "password": "x"})
            await session.commit()
        return {"id": user_id}

    @app.delete("/users/{user_id}")
    async def delete(user_id: int) -> None:
        async with AsyncSession(engine) as session:
            async with audit.aaudited(session, actor="alice", operation="delete",
                                      entity_type="user", entity_id=user_id, commit=True):
                raise HTTPException(status_code=409, detail="user has open orders")

    return app


@pytest.fixture
def app(async_engine: AsyncEngine, fresh_runtime: Any) -> FastAPI:
    dbsight.configure(dbsight.Settings(service_name="accounts", explain_slow_queries=False))
    app = build_app(async_engine)
    handle = dbsight.instrument(app)
    yield app
    handle.uninstrument()


async def test_records_carry_the_request(app: FastAPI, async_engine: AsyncEngine) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        started = await client.post("/users/7/rename", params={"name": "Al"})
        continued = await client.post(
            "/users/8/rename", params={"name": "Bo"},
            headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
        )  # fmt: skip
        refused = await client.delete("/users/9")
    assert (started.status_code, continued.status_code, refused.status_code) == (200, 200, 409)

    records = {r.entity_id: r for r in
               await audit.AsyncAuditLogQueryBuilder(async_engine).by_entity("user")}  # fmt: skip
    match = TRACEPARENT.fullmatch(started.headers["traceparent"])
    assert match is not None
    assert records["7"].trace_id == match.group(1)
    assert records["7"].request_id == started.headers["x-request-id"]
    assert (records["7"].route, records["7"].app) == ("/users/{user_id}/rename", "accounts")
    assert records["7"].details == {"name": "Al", "password": audit.REDACTED}
    assert records["8"].trace_id == TRACE_ID
    failure = records["9"]
    assert (failure.result, failure.route) == ("failure", "/users/{user_id}")
    refused_trace = TRACEPARENT.fullmatch(refused.headers["traceparent"])
    assert refused_trace is not None and failure.trace_id == refused_trace.group(1)
    assert failure.error == "HTTPException: ?: user has open orders"
