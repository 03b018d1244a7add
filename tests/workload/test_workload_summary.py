"""A running dbsight's ``/metrics/summary`` as a workload: an instrumented service and the
proxy's admin port, served for real."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

import dbsight
from dbsight.proxy._config import ProxyConfig
from dbsight.testing.proxy import RunningProxy
from dbsight.workload import WorkloadError, from_stats, from_summary, load_workload

TOKEN = "a-token-of-ours"


@pytest.fixture
def service(pg_dsn: str, configure: Callable[..., Any], serve: Any) -> Iterator[str]:
    """An instrumented Starlette service whose routes query PostgreSQL; yields its URL."""
    configure()
    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        setup.execute("CREATE TABLE items (id int PRIMARY KEY, kind text)")
        setup.execute("INSERT INTO items SELECT g, 'k' || g % 3 FROM generate_series(1, 50) g")
        for n in range(1, 31):
            setup.execute(f"CREATE TABLE shape{n} (id int)")
    conn = psycopg.connect(pg_dsn, autocommit=True)
    dbsight.instrument(conn)
    lock = threading.Lock()

    def item(request: Request) -> JSONResponse:
        with lock:
            row = conn.execute(
                "SELECT kind FROM items WHERE id = %s", (int(request.path_params["id"]),)
            ).fetchone()
        return JSONResponse({"kind": row[0] if row else None})

    def shape(request: Request) -> JSONResponse:
        n = int(request.path_params["n"])  # a statement shape of its own for each n
        with lock:
            conn.execute(f"SELECT id FROM shape{n} WHERE id < 3")
        return JSONResponse({})

    def page(request: Request) -> HTMLResponse:
        return HTMLResponse("<html>not a summary</html>")

    app = Starlette(routes=[
        Route("/items/{id:int}", item),
        Route("/shapes/{n:int}", shape),
        Route("/page/metrics/summary", page),
    ])
    dbsight.instrument(app)
    try:
        with serve(app) as url:
            yield url
    finally:
        conn.close()


def test_a_service_summary_is_its_statistics(service: str) -> None:
    with httpx.Client(base_url=service) as client:
        for i in range(1, 21):
            assert client.get(f"/items/{i}").status_code == 200
        for n in range(1, 31):  # more statements than a summary lists by default (20)
            assert client.get(f"/shapes/{n}").status_code == 200
    for url in (service, service + "/", service + "/metrics/summary"):
        workload = from_summary(url)
        (lookup,) = [s for s in workload if s.normalized == "SELECT kind FROM items WHERE id = $1"]
        assert lookup.calls == 20 and lookup.routes == {"/items/{id}": 20}
        assert lookup.rows == 20 and lookup.errors == 0 and lookup.p95_s is not None
        assert lookup.sources == ("summary",) and lookup.instrumented
        assert lookup.samples == []  # a summary never carries values
        assert len([s for s in workload if "FROM shape" in s.normalized]) == 30
        assert workload.window_s is not None and workload.window_s > 0
    # the same numbers as the statistics it was served from
    local = from_stats()
    for statement in from_summary(service):
        assert statement.calls == local.statements[statement.fingerprint].calls


def test_summary_errors_are_one_line(service: str, unused_tcp_port: int) -> None:
    cases = {
        f"http://127.0.0.1:{unused_tcp_port}": "cannot connect to http://127.0.0.1:",
        service + "/nothing": "is it a dbsight service or the proxy's admin port?",
        service + "/page": "did not answer JSON (text/html",
        "ftp://example.invalid/": "is not an http:// or https:// URL",
    }
    for url, expected in cases.items():
        with pytest.raises(WorkloadError) as caught:
            from_summary(url, timeout_s=5)
        assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_the_proxy_admin_port_with_its_token(pg_dsn: str, configure: Callable[..., Any]) -> None:
    configure()
    proxy = RunningProxy(ProxyConfig(
        listen="127.0.0.1:0", upstream=pg_dsn, admin="127.0.0.1:0", admin_token=TOKEN,
    ))
    try:
        with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
            for i in range(7):
                conn.execute("SELECT %s::int * 2 AS doubled", (i,))
        admin = f"http://127.0.0.1:{proxy.server.admin_port}"
        with pytest.raises(WorkloadError, match="a token is required or was refused"):
            from_summary(admin)
        workload = from_summary(admin, token=TOKEN)
        (doubled,) = [s for s in workload if "doubled" in s.normalized]
        assert doubled.calls == 7
        # two instances of a service add up; the proxy and the server's own view join
        both = load_workload(urls=[admin, admin], token=TOKEN)
        assert both.statements[doubled.fingerprint].calls == 14
    finally:
        proxy.close()
