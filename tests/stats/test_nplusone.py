"""N+1 detection: real requests to an instrumented FastAPI app running real queries on
PostgreSQL (through an instrumented SQLAlchemy async engine), and the findings log."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import dbsight
from dbsight.core import request_scope
from dbsight.export.logging import JsonFormatter
from dbsight.instrument import uninstrument_all
from dbsight.stats import NPlusOneLog, find_n_plus_one

LOOKUP = "SELECT name FROM items WHERE id = :id"
# Eight statements of eight different shapes.
CATALOGS = (
    "pg_class", "pg_type", "pg_proc", "pg_namespace", "pg_attribute", "pg_index", "pg_am",
    "pg_database",
)


@pytest.fixture
def configure(fresh_runtime: Any) -> Iterator[Any]:
    def configure(**settings: Any) -> Any:
        settings.setdefault("explain_slow_queries", False)
        return dbsight.configure(dbsight.Settings(**settings))

    yield configure
    uninstrument_all()


@pytest.fixture
def serve(configure: Any, engine: Any) -> Any:
    """``serve(**settings) -> app``: dbsight configured, the engine and the app instrumented."""

    def serve(**settings: Any) -> FastAPI:
        configure(**settings)
        dbsight.instrument(engine)
        app = build_app(engine)
        dbsight.instrument(app)
        return app

    return serve


@pytest.fixture
async def engine(pg_dsn: str) -> AsyncIterator[Any]:
    engine = create_async_engine(pg_dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)"))
        await conn.execute(
            text("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 20) g")
        )
    yield engine
    await engine.dispose()


def build_app(engine: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/orders/{count}")
    async def orders(count: int) -> list[str]:
        """The N+1 shape: one lookup per row instead of one query for all rows."""
        names = []
        async with engine.connect() as conn:
            for item_id in range(1, count + 1):
                names.append((await conn.execute(text(LOOKUP), {"id": item_id})).scalar_one())
        return names

    @app.get("/batched")
    async def batched() -> list[str]:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT name FROM items WHERE id <= 10 ORDER BY id"))
            return [row[0] for row in rows]

    @app.get("/transactions")
    async def transactions() -> int:
        """Eight transactions, each with a statement of its own shape: BEGIN and COMMIT
        repeat, no statement does."""
        async with engine.connect() as conn:
            for catalog in CATALOGS:
                async with conn.begin():
                    await conn.execute(text(f"SELECT count(*) FROM {catalog}"))
        return len(CATALOGS)

    return app


class Findings:
    """The ``dbsight.n_plus_one`` warnings, as the JsonFormatter writes them."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog
        self._formatter = JsonFormatter()

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [
            json.loads(self._formatter.format(record))
            for record in self._caplog.records
            if record.name == "dbsight.n_plus_one"
        ]


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Findings:
    caplog.set_level(logging.WARNING, logger="dbsight.n_plus_one")
    return Findings(caplog)


async def get(app: FastAPI, path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == 200
    return response


def n_plus_one_total(route: str) -> float:
    registry = dbsight.get_runtime().registry
    return registry.get_sample_value("db_client_n_plus_one_total", {"route": route}) or 0.0


# -- over HTTP ------------------------------------------------------------------------------
async def test_ten_lookups_in_a_request_are_a_finding(serve: Any, warnings: Findings) -> None:
    app = serve(n_plus_one_min_total_ms=0)
    first = await get(app, "/orders/10", **{"X-Request-ID": "first"})
    assert len(first.json()) == 10
    await get(app, "/orders/12", **{"X-Request-ID": "second"})

    route = "/orders/{count}"
    assert n_plus_one_total(route) == 2  # every occurrence is counted ...
    [one] = warnings.lines  # ... and logged once a minute per route and statement
    assert one["level"] == "WARNING" and one["logger"] == "dbsight.n_plus_one"
    assert one["route"] == route and one["count"] == 10 and one["request_id"] == "first"
    assert one["normalized"] == "SELECT name FROM items WHERE id = $1"
    assert one["total_ms"] > 0 and one["fingerprint"]
    assert one["trace_id"] == first.headers["traceparent"].split("-")[1]

    [entry] = dbsight.stats.n_plus_one()
    assert entry["route"] == route and entry["fingerprint"] == one["fingerprint"]
    assert entry["count"] == 12  # the worst request
    assert entry["requests"] == 2 and entry["last_request_id"] == "second"
    assert entry["normalized"] == one["normalized"]
    assert entry["total_ms"] > 0


async def test_findings_are_in_the_summary_endpoint(serve: Any) -> None:
    pytest.importorskip("dbsight.web")
    app = serve(n_plus_one_min_total_ms=0)
    await get(app, "/orders/6", **{"X-Request-ID": "six"})
    summary = (await get(app, "/metrics/summary")).json()
    [entry] = summary["n_plus_one"]
    assert (entry["route"], entry["count"], entry["requests"]) == ("/orders/{count}", 6, 1)
    assert entry["last_request_id"] == "six"


async def test_three_lookups_and_batched_queries_are_not(serve: Any, warnings: Findings) -> None:
    app = serve(n_plus_one_min_total_ms=0)
    await get(app, "/orders/3")
    await get(app, "/batched")
    assert warnings.lines == []
    assert n_plus_one_total("/orders/{count}") == 0
    assert dbsight.stats.n_plus_one() == []


async def test_begin_and_commit_do_not_count(serve: Any, warnings: Findings) -> None:
    app = serve(n_plus_one_min_total_ms=0)
    await get(app, "/transactions")  # 8 x BEGIN, 8 x COMMIT
    assert warnings.lines == []
    assert dbsight.stats.n_plus_one() == []


async def test_below_the_time_threshold_is_not_a_finding(serve: Any, warnings: Findings) -> None:
    app = serve(n_plus_one_min_total_ms=60_000)  # ten lookups never take a minute
    await get(app, "/orders/10")
    assert warnings.lines == []


async def test_the_count_threshold_is_a_setting(serve: Any, warnings: Findings) -> None:
    app = serve(n_plus_one_min_total_ms=0, n_plus_one_threshold=3)
    await get(app, "/orders/3")
    assert [line["count"] for line in warnings.lines] == [3]


async def test_settings_are_validated() -> None:
    with pytest.raises(dbsight.ConfigError, match="n_plus_one_threshold"):
        dbsight.Settings(n_plus_one_threshold=1)
    with pytest.raises(dbsight.ConfigError, match="n_plus_one_min_total_ms"):
        dbsight.Settings(n_plus_one_min_total_ms=-1)


# -- outside HTTP: a request scope of one's own --------------------------------------------
async def test_find_n_plus_one_in_a_request_scope(configure: Any, engine: Any) -> None:
    configure()
    dbsight.instrument(engine)
    with request_scope(route="job:sync") as ctx:
        async with engine.connect() as conn:
            for item_id in range(1, 7):
                await conn.execute(text(LOOKUP), {"id": item_id})
            await conn.execute(text("SELECT count(*) FROM items"))
    [finding] = find_n_plus_one(ctx, threshold=5, min_total_ms=0)
    assert (finding.route, finding.count) == ("job:sync", 6)
    assert finding.normalized == "SELECT name FROM items WHERE id = $1"
    assert finding.total_ms == pytest.approx(ctx.fingerprints[finding.fingerprint].total_s * 1000)
    assert find_n_plus_one(ctx, threshold=7, min_total_ms=0) == []


# -- the findings log -----------------------------------------------------------------------
def _entry(
    route: str, fingerprint: str, count: int, total_ms: float, seen: float, rid: str
) -> dict[str, Any]:
    return {
        "route": route, "fingerprint": fingerprint, "normalized": f"SELECT {fingerprint}",
        "count": count, "total_ms": total_ms, "requests": 1, "last_seen": seen,
        "last_request_id": rid,
    }


def test_merge_keeps_the_worst_request_and_adds_up_requests() -> None:
    worker_a, worker_b = NPlusOneLog(), NPlusOneLog()
    worker_a.merge(
        [_entry("/a", "f1", 10, 60.0, 100.0, "a1"), _entry("/a", "f2", 6, 70.0, 90.0, "a2")]
    )
    worker_b.merge([_entry("/a", "f1", 25, 80.0, 50.0, "b1")])
    merged = NPlusOneLog()
    merged.merge(worker_a.snapshot())
    merged.merge(worker_b.snapshot())
    merged.merge([{"fingerprint": "broken"}, {"nothing": 1}])  # not entries: skipped
    by_fingerprint = {entry["fingerprint"]: entry for entry in merged.snapshot()}
    assert set(by_fingerprint) == {"f1", "f2"}
    f1 = by_fingerprint["f1"]
    assert (f1["count"], f1["total_ms"], f1["requests"]) == (25, 80.0, 2)
    assert (f1["last_seen"], f1["last_request_id"]) == (100.0, "a1")
    assert [entry["fingerprint"] for entry in merged.snapshot()] == ["f1", "f2"]  # newest first


def test_the_log_is_bounded_and_forgets_the_oldest() -> None:
    log = NPlusOneLog(max_entries=3)
    log.merge([_entry("/r", f"f{n}", 5, 1.0, float(n), f"r{n}") for n in range(5)])
    assert len(log) == 3
    assert {entry["fingerprint"] for entry in log.snapshot()} == {"f2", "f3", "f4"}
    log.reset()
    assert log.snapshot() == []
