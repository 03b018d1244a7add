"""A small FastAPI app wired as the platform wires these parts (authenticator on the app,
exception handlers mapping AuthError and RedisFeatureError, the rate-limit middleware), driven
over httpx's ASGI transport against a real Redis: login, bearer_user, require_roles, logout
revocation, the OpenAPI security scheme, 429s and their headers, outages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from dbsight_platform.redis_features import (
    RateLimitMiddleware,
    RedisFeatureError,
    SlidingWindowLimiter,
    principal_or_ip_key,
    rate_limit,
)
from dbsight_platform.security import (
    Authenticator,
    AuthError,
    InvalidCredentials,
    PasswordHashing,
    Principal,
    TokenCodec,
    TokenRevocationList,
    bearer_user,
    install_authenticator,
    require_roles,
)

SECRET = "platform-app-test-secret-" + "0123456789abcdef" * 2
FAST = {"time_cost": 1, "memory_cost_kib": 8 * 1024, "parallelism": 1}


class Login(BaseModel):
    username: str
    password: str


def build_app(redis: Any, prefix: str, *, limit: int = 100, fail_open: bool = True) -> FastAPI:
    hashing = PasswordHashing(**FAST)
    users = {
        "alice": (hashing.hash("alice-pw"), ["user"]),
        "root": (hashing.hash("root-pw"), ["user", "admin"]),
    }
    tokens = TokenCodec(SECRET, expires_in=timedelta(minutes=5))
    auth = Authenticator(tokens, TokenRevocationList(redis, prefix=prefix + "revoked:"))
    app = FastAPI()
    install_authenticator(app, auth)

    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        body = {"code": exc.code, "message": exc.message, "data": None}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RedisFeatureError)
    async def redis_error(request: Request, exc: RedisFeatureError) -> JSONResponse:
        body = {"code": exc.code, "message": exc.message, "data": None}
        headers = getattr(exc, "headers", None)
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.post("/login")
    async def login(body: Login) -> dict[str, Any]:
        user = users.get(body.username)
        if user is None or not hashing.verify(user[0], body.password):
            raise InvalidCredentials("login failed")
        issued = auth.issue(body.username, user[1])
        return {"access_token": issued.token, "token_type": "bearer"}

    @app.get("/me")
    async def me(principal: Principal = Depends(bearer_user)) -> dict[str, Any]:
        return {"subject": principal.subject, "roles": sorted(principal.roles)}

    @app.get("/admin")
    async def admin(principal: Principal = Depends(require_roles("admin"))) -> dict[str, str]:
        return {"subject": principal.subject}

    @app.post("/logout")
    async def logout(principal: Principal = Depends(bearer_user)) -> dict[str, bool]:
        return {"revoked": await auth.logout(principal)}

    export_limit = rate_limit(
        SlidingWindowLimiter(redis, prefix=prefix + "route:"),
        name="export",
        limit=2,
        window_s=60,
        fail_open=fail_open,
    )

    @app.get("/export", dependencies=[Depends(export_limit)])
    async def export() -> dict[str, str]:
        return {"rows": "..."}

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(
        RateLimitMiddleware,
        limiter=SlidingWindowLimiter(redis, prefix=prefix + "ratelimit:"),
        limit=limit,
        window_s=60,
        key=principal_or_ip_key(lambda token: tokens.decode(token).subject),
        fail_open=fail_open,
    )
    return app


def client_of(app: FastAPI, ip: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://platform.test")


@pytest.fixture
async def http(aredis: Any, redis_prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(build_app(aredis, redis_prefix)) as client:
        yield client


async def token_for(http: httpx.AsyncClient, user: str) -> str:
    response = await http.post("/login", json={"username": user, "password": f"{user}-pw"})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_and_bearer_user(http: httpx.AsyncClient) -> None:
    token = await token_for(http, "alice")
    response = await http.get("/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"subject": "alice", "roles": ["user"]}
    failed = await http.post("/login", json={"username": "alice", "password": "nope"})
    assert (failed.status_code, failed.json()["code"]) == (401, 1001)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic YWxpY2U6cHc="}, {"Authorization": "Bearer"}],
)
async def test_missing_bearer_token(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await http.get("/me", headers=headers)
    assert (response.status_code, response.json()["code"]) == (401, 1004)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_bad_tokens(http: httpx.AsyncClient) -> None:
    response = await http.get("/me", headers=bearer("not.a.token"))
    assert (response.status_code, response.json()["code"]) == (401, 1005)
    assert "invalid_token" in response.headers["www-authenticate"]
    expired = TokenCodec(SECRET).issue(
        "alice", ["user"], now=datetime.now(UTC) - timedelta(hours=1)
    )
    response = await http.get("/me", headers=bearer(expired.token))
    assert (response.status_code, response.json()["code"]) == (401, 1002)
    forged = TokenCodec("another-secret-" + "x" * 32).issue("root", ["admin"])
    response = await http.get("/admin", headers=bearer(forged.token))
    assert (response.status_code, response.json()["code"]) == (401, 1005)


async def test_require_roles(http: httpx.AsyncClient) -> None:
    response = await http.get("/admin", headers=bearer(await token_for(http, "alice")))
    assert (response.status_code, response.json()["code"]) == (403, 1003)
    assert "admin" in response.json()["message"]
    response = await http.get("/admin", headers=bearer(await token_for(http, "root")))
    assert response.status_code == 200 and response.json() == {"subject": "root"}
    with pytest.raises(ValueError):
        require_roles()


async def test_logout_revokes_the_token(
    http: httpx.AsyncClient, aredis: Any, redis_prefix: str
) -> None:
    token = await token_for(http, "alice")
    other = await token_for(http, "alice")
    response = await http.post("/logout", headers=bearer(token))
    assert response.json() == {"revoked": True}
    response = await http.get("/me", headers=bearer(token))
    assert (response.status_code, response.json()["code"]) == (401, 1006)
    assert (await http.get("/me", headers=bearer(other))).status_code == 200  # only that one
    # the revocation lives as long as the token would have
    [key] = await aredis.keys(redis_prefix + "revoked:*")
    assert 0 < await aredis.ttl(key) <= 300


async def test_openapi_shows_the_bearer_scheme(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["BearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert document["paths"]["/me"]["get"]["security"] == [{"BearerAuth": []}]
    assert document["paths"]["/admin"]["get"]["security"] == [{"BearerAuth": []}]
    assert "security" not in document["paths"]["/public"]["get"]


async def test_rate_limit_answers_429_with_headers(aredis: Any, redis_prefix: str) -> None:
    app = build_app(aredis, redis_prefix, limit=3)
    async with client_of(app, "10.0.0.1") as first, client_of(app, "10.0.0.2") as second:
        responses = [await first.get("/public") for _ in range(4)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0"]
        assert all(r.headers["x-ratelimit-limit"] == "3" for r in responses)
        refused = responses[3]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert 1 <= int(refused.headers["x-ratelimit-reset"]) <= 60
        assert refused.json()["code"] == 1029 and refused.json()["data"] is None
        assert "retry-after" not in responses[0].headers
        # another address has its own budget; probes are never limited
        assert (await second.get("/public")).status_code == 200
        assert (await first.get("/health")).status_code == 200
        assert "x-ratelimit-limit" not in (await first.get("/health")).headers


async def test_rate_limit_by_principal(aredis: Any, redis_prefix: str) -> None:
    """Signed-in users are limited by subject, wherever they come from; a bad token falls
    back to the address."""
    app = build_app(aredis, redis_prefix, limit=3)
    token = TokenCodec(SECRET).issue("alice", ["user"]).token
    async with client_of(app, "10.0.0.1") as one, client_of(app, "10.0.0.2") as two:
        assert (await one.get("/me", headers=bearer(token))).status_code == 200
        assert (await two.get("/me", headers=bearer(token))).status_code == 200
        assert (await one.get("/me", headers=bearer(token))).status_code == 200
        assert (await two.get("/me", headers=bearer(token))).status_code == 429
        assert (await two.get("/public")).status_code == 200  # the address is not spent
        forged = bearer("x.y.z")
        assert [(await two.get("/public", headers=forged)).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]


async def test_redis_outage(dead_redis: Any) -> None:
    """The revocation check fails closed (503, 5001); the middleware fails open or closed as
    configured."""
    async with client_of(build_app(dead_redis, "p:")) as http:
        token = TokenCodec(SECRET).issue("alice", ["user"]).token
        response = await http.get("/me", headers=bearer(token))
        assert (response.status_code, response.json()["code"]) == (503, 5001)
        response = await http.get("/public")
        assert response.status_code == 200 and "x-ratelimit-limit" not in response.headers
    async with client_of(build_app(dead_redis, "p:", fail_open=False)) as http:
        response = await http.get("/public")
        assert (response.status_code, response.json()["code"]) == (503, 5001)
        assert (await http.get("/health")).status_code == 200


async def test_dependencies_without_an_authenticator_say_so() -> None:
    app = FastAPI()

    @app.get("/me")
    async def me(principal: Principal = Depends(bearer_user)) -> dict[str, str]:
        return {"subject": principal.subject}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://platform.test") as http:
        with pytest.raises(RuntimeError, match="install_authenticator"):
            await http.get("/me", headers=bearer("x.y.z"))


async def test_route_rate_limit_dependency(aredis: Any, redis_prefix: str) -> None:
    """A route's own budget, tighter than the middleware's; its headers are the ones sent."""
    app = build_app(aredis, redis_prefix, limit=100)
    async with client_of(app, "10.0.0.1") as http:
        responses = [await http.get("/export") for _ in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 429]
        assert [r.headers["x-ratelimit-limit"] for r in responses] == ["2", "2", "2"]
        assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["1", "0", "0"]
        refused = responses[2]
        assert refused.json()["code"] == 1029
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        public = await http.get("/public")  # the middleware counted all four
        assert public.headers["x-ratelimit-limit"] == "100"
        assert public.headers["x-ratelimit-remaining"] == "96"
    with pytest.raises(ValueError):
        rate_limit(SlidingWindowLimiter(aredis, prefix=redis_prefix), name="", limit=1, window_s=1)


async def test_route_rate_limit_on_outage(dead_redis: Any) -> None:
    async with client_of(build_app(dead_redis, "p:")) as http:
        response = await http.get("/export")
        assert response.status_code == 200 and "x-ratelimit-limit" not in response.headers
    async with client_of(build_app(dead_redis, "p:", fail_open=False)) as http:
        response = await http.get("/export")
        assert (response.status_code, response.json()["code"]) == (503, 5001)
