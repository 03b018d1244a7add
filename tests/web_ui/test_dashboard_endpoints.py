"""The dashboard without a browser: where ``instrument(app, dashboard=...)`` serves it (and
not in prod unless asked), its files' headers (strict CSP, ETag, 304), the token rule (files
open, JSON behind the token), and the JSON it reads: one statement, the timeline, insights."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import dbsight
from dbsight.advise import AdviceEvent, emit
from dbsight.web._dashboard import CSP, Dashboard, dashboard_path
from dbsight.web._timeline import Snapshot, histogram_quantile, interval

TOKEN = "dashboard-token-123"
SECRET = "literal-7f3a9"


_handles: list[Any] = []


@pytest.fixture(autouse=True)
def _uninstrument() -> Iterator[None]:
    """The engines and apps a test instrumented are let go (their health checks with them)."""
    yield
    while _handles:
        _handles.pop().uninstrument()


def _app(**options: Any) -> tuple[Starlette, sqlalchemy.Engine]:
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id integer primary key, name text)")
        conn.exec_driver_sql(
            "INSERT INTO items (name) VALUES ('a'), ('b'), ('c'), ('d'), ('e'), ('f')"
        )

    async def items(request: Any) -> JSONResponse:
        with engine.connect() as conn:
            # a literal in the text: the JSON must show $1, never the value
            rows = conn.exec_driver_sql(f"SELECT id FROM items WHERE name <> '{SECRET}'").all()
            for row in rows:
                conn.exec_driver_sql(f"SELECT name FROM items WHERE id = {row[0]}").all()
        return JSONResponse({"n": len(rows)})

    app = Starlette(routes=[Route("/items", items)])
    _handles.append(dbsight.instrument(engine))
    _handles.append(dbsight.instrument(app, **options))
    return app, engine


def _client(app: Any, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app", headers=headers
    )


async def test_the_page_is_served_with_a_strict_policy_and_revalidated(fresh_runtime: Any) -> None:
    dbsight.configure(dbsight.Settings(explain_slow_queries=False))
    app, _ = _app(prefix="/ops")
    async with _client(app) as client:
        moved = await client.get("/dbsight", follow_redirects=False)
        assert moved.status_code == 308 and moved.headers["location"] == "/dbsight/"
        page = await client.get("/dbsight/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert page.headers["x-content-type-options"] == "nosniff"
        # the JSON lives under the endpoints' prefix; no inline script or style in the page
        assert '<meta name="dbsight-api" content="/ops">' in page.text
        assert '<meta name="dbsight-mode" content="service">' in page.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
        assert "<style" not in page.text and " style=" not in page.text
        again = await client.get("/dbsight/", headers={"If-None-Match": page.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        css = await client.get("/dbsight/dashboard.css")
        assert css.headers["content-type"].startswith("text/css")
        assert "prefers-color-scheme: dark" in css.text  # the report's themes, reused
        script = await client.get("/dbsight/dashboard.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert "from \"./render.js\"" in script.text
        assert (await client.head("/dbsight/render.js")).content == b""
        assert (await client.post("/dbsight/")).status_code == 405
        assert (await client.get("/dbsight/nothing.js")).status_code == 404  # the app's 404


async def test_dashboard_option_moves_it_turns_it_off_and_prod_keeps_it_off(
    fresh_runtime: Any,
) -> None:
    dbsight.configure(dbsight.Settings(explain_slow_queries=False))
    app, _ = _app(dashboard="/ops/db")
    async with _client(app) as client:
        assert (await client.get("/ops/db/")).status_code == 200
        assert (await client.get("/dbsight/")).status_code == 404
    app, _ = _app(dashboard=False)
    async with _client(app) as client:
        assert (await client.get("/dbsight/")).status_code == 404
        assert (await client.get("/metrics/summary")).status_code == 200

    dbsight.configure(dbsight.Settings(environment="prod", explain_slow_queries=False))
    app, _ = _app()
    async with _client(app) as client:
        assert (await client.get("/dbsight/")).status_code == 404
    app, _ = _app(dashboard=True)
    async with _client(app) as client:
        assert (await client.get("/dbsight/")).status_code == 200

    with pytest.raises(ValueError, match="dashboard"):
        _app(dashboard="no-slash")
    with pytest.raises(TypeError, match="dashboard"):
        _app(dashboard=3)
    with pytest.raises(ValueError, match="summary"):
        _app(dashboard=True, summary=False)
    assert dashboard_path(None) == "/dbsight/" and dashboard_path("/a/b") == "/a/b/"
    with pytest.raises(ValueError):
        Dashboard("/no-trailing-slash", "")


async def test_files_are_open_and_the_json_wants_the_token(fresh_runtime: Any) -> None:
    dbsight.configure(dbsight.Settings(admin_token=TOKEN, explain_slow_queries=False))
    app, _ = _app()
    async with _client(app) as anonymous:
        assert (await anonymous.get("/dbsight/")).status_code == 200  # no data in the files
        for path in ("/metrics/timeline", "/metrics/insights", "/metrics/statement?fingerprint=ab"):
            assert (await anonymous.get(path)).status_code == 401, path
    async with _client(app, {"Authorization": f"Bearer {TOKEN}"}) as holder:
        assert (await holder.get("/metrics/timeline")).status_code == 200


async def test_the_statement_the_timeline_and_insights(fresh_runtime: Any) -> None:
    dbsight.configure(dbsight.Settings(explain_slow_queries=False, n_plus_one_min_total_ms=0))
    app, _ = _app()
    async with _client(app) as client:
        first = (await client.get("/metrics/timeline")).json()  # starts the sampler
        assert first["http"] is True
        for _ in range(4):
            assert (await client.get("/items")).status_code == 200
        await asyncio.sleep(0.6)  # the timeline's last interval ends now: at least 0.5 s
        timeline = (await client.get("/metrics/timeline")).json()
        last = timeline["points"][-1]
        assert last["statements_per_s"] > 0 and last["requests_per_s"] > 0
        assert 0 < last["db_share"] <= 1 and last["error_rate"] == 0 and last["p95_s"] > 0

        summary = (await client.get("/metrics/summary")).json()
        lookup = next(s for s in summary["top"] if "WHERE name <>" in s["normalized"])
        response = await client.get(f"/metrics/statement?fingerprint={lookup['fingerprint']}")
        assert response.status_code == 200
        assert SECRET not in response.text and SECRET not in (
            await client.get("/metrics/summary")
        ).text
        document = response.json()
        assert document["statement"]["calls"] == 4
        assert document["statement"]["routes"] == {"/items": 4}
        assert sum(b["count"] for b in document["latency"]) == 4
        assert "histogram" not in document["statement"]
        per_row = next(s for s in summary["top"] if "WHERE id =" in s["normalized"])
        n_plus_one = (
            await client.get(f"/metrics/statement?fingerprint={per_row['fingerprint']}")
        ).json()["n_plus_one"]
        assert n_plus_one and n_plus_one[0]["route"] == "/items"
        assert (await client.get("/metrics/statement?fingerprint=0000")).status_code == 404
        assert (await client.get("/metrics/statement?fingerprint=a%20b")).status_code == 400
        assert (await client.get("/metrics/statement")).status_code == 400

        emit(AdviceEvent(
            kind="index", severity="warning", key="index:items:name",
            summary="create index on items (name)",
            details={"table": "items", "columns": ["name"],
                     "fingerprints": [lookup["fingerprint"]], "speedup": 3.0,
                     "statements": [{"fingerprint": lookup["fingerprint"],
                                     "measured_before_ms": 3.0, "measured_after_ms": 1.0}]},
        ))  # fmt: skip
        insights = (await client.get("/metrics/insights")).json()
        assert insights["insights"][0]["key"] == "index:items:name"
        assert insights["counts"]["index"] >= 1
        document = (
            await client.get(f"/metrics/statement?fingerprint={lookup['fingerprint']}")
        ).json()
        assert [i["key"] for i in document["insights"]] == ["index:items:name"]

        metrics = (await client.get("/metrics")).text
        assert re.search(r'http_server_request_db_seconds_total\{method="GET",route="/items"\} '
                         r"[0-9.e-]+", metrics)  # fmt: skip


def test_rates_and_the_p95_between_two_snapshots() -> None:
    before = Snapshot(
        at=100.0, statements=10, errors=1, buckets={0.01: 5, 0.1: 10, float("inf"): 10}
    )
    after = Snapshot(
        at=110.0, statements=110, errors=6, buckets={0.01: 55, 0.1: 110, float("inf"): 110},
        http=True, requests=20, request_seconds=2.0, request_db_seconds=0.5,
    )
    point = interval(before, after)
    assert point["statements_per_s"] == 10.0
    assert point["error_rate"] == 0.05
    assert point["requests_per_s"] == 2.0 and point["db_share"] == 0.25
    # 100 statements: 50 up to 10 ms, 50 more up to 100 ms; p95 is 90 % into that bucket
    assert point["p95_s"] == pytest.approx(0.01 + 0.09 * 0.9)
    assert histogram_quantile(0.5, {}) is None
    # a restarted counter counts from zero instead of going negative
    assert interval(after, Snapshot(at=120.0, statements=5))["statements_per_s"] == 0.5


async def test_literals_only_with_include_query_bodies(fresh_runtime: Any) -> None:
    for bodies in (False, True):
        dbsight.configure(dbsight.Settings(
            explain_slow_queries=False, include_query_bodies=bodies,
            slow_query_threshold_ms=0.0001,  # every statement is a slow run
        ))  # fmt: skip
        app, _ = _app()
        async with _client(app) as client:
            assert (await client.get("/items")).status_code == 200
            summary = (await client.get("/metrics/summary")).json()
            lookup = next(s for s in summary["top"] if "WHERE name <>" in s["normalized"])
            response = await client.get(f"/metrics/statement?fingerprint={lookup['fingerprint']}")
            document = response.json()
            assert document["slow"], "the statement's slow runs"
            assert (SECRET in response.text) is bodies
            assert (SECRET in (await client.get("/metrics/summary")).text) is bodies
        while _handles:
            _handles.pop().uninstrument()
