"""The one-regex route index agrees with walking the routes' own ``matches()``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, WebSocket
from starlette.routing import Mount

from dbsight.instrument._routes import UNMATCHED, RouteIndex, resolve_route, route_of


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> None: ...

    @app.get("/items/{item_id:int}")
    def item(item_id: int) -> None: ...

    @app.post("/items/{name}")
    def post_item(name: str) -> None: ...

    @app.get("/prices/{value:float}")
    def price(value: float) -> None: ...

    @app.get("/files/{rest:path}")
    def files(rest: str) -> None: ...

    @app.put("/only-put")
    def only_put() -> None: ...

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None: ...

    router = APIRouter(prefix="/v1")

    @router.get("/users/{user_id}")
    def user(user_id: str) -> None: ...

    @router.get("/a(b)")
    def odd() -> None: ...

    app.include_router(router)
    return app


def _scope(method: str, path: str, root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": root_path + path, "root_path": root_path}


CASES = [
    ("GET", "/ping"),
    ("HEAD", "/ping"),
    ("POST", "/ping"),  # a 405
    ("GET", "/items/12"),
    ("GET", "/items/abc"),  # not an int: no GET route; the POST route's path matches
    ("POST", "/items/12"),  # the GET route matches the path first: a later route takes POST
    ("GET", "/prices/1.5"),
    ("GET", "/prices/2"),
    ("GET", "/files/a/b/c.txt"),
    ("GET", "/only-put"),
    ("GET", "/ws"),
    ("GET", "/v1/users/u-1"),
    ("GET", "/v1/a(b)"),
    ("GET", "/v1/users/u-1/extra"),
    ("GET", "/nowhere"),
    ("GET", "/"),
]


@pytest.mark.parametrize(("method", "path"), CASES)
def test_index_agrees_with_the_routes_own_matching(method: str, path: str) -> None:
    app = _app()
    for root_path in ("", "/api"):
        scope = _scope(method, path, root_path)
        slow = resolve_route(app.routes, dict(scope))
        assert route_of(app, scope) == (slow if slow is not None else UNMATCHED)


def test_index_is_used_for_plain_apps_and_rebuilt_when_routes_change() -> None:
    app = _app()
    index = RouteIndex(app.routes)
    assert index.regex is not None
    assert index.lookup(_scope("GET", "/items/7")) == "/items/{item_id}"
    assert index.lookup(_scope("GET", "/v1/users/x")) == "/v1/users/{user_id}"
    assert index.lookup(_scope("GET", "/nowhere")) == UNMATCHED
    assert index.lookup(_scope("POST", "/ping")) is None  # left to the routes themselves

    @app.get("/late/{x}")
    def late(x: str) -> None: ...

    assert route_of(app, _scope("GET", "/late/1")) == "/late/{x}"


def test_static_paths_skip_the_regex_only_when_they_are_their_own_first_match() -> None:
    app = FastAPI()

    @app.get("/health")
    def health() -> None: ...

    @app.get("/users/{name}")
    def user(name: str) -> None: ...

    @app.get("/users/me")  # shadowed: /users/{name} matches it first
    def me() -> None: ...

    index = RouteIndex(app.routes)
    assert "/health" in index.static and "/users/me" not in index.static
    assert index.lookup(_scope("GET", "/health")) == "/health"
    assert index.lookup(_scope("GET", "/health", root_path="/api")) == "/health"
    assert index.lookup(_scope("POST", "/health")) is None  # a 405: left to the routes
    assert index.lookup(_scope("GET", "/users/me")) == "/users/{name}"
    assert index.lookup(_scope("GET", "/healthz")) == UNMATCHED


def test_apps_with_mounts_take_the_walk() -> None:
    app = _app()
    sub = FastAPI()

    @sub.get("/inner/{x}")
    def inner(x: str) -> None: ...

    app.routes.append(Mount("/sub", app=sub))
    assert RouteIndex(app.routes).regex is None
    assert route_of(app, _scope("GET", "/sub/inner/3")) == "/sub/inner/{x}"
