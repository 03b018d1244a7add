"""The platform's authentication on PostgreSQL and MariaDB with real Redis: users with Argon2
hashes, login (JSON and form) issuing a JWT in the envelope, logout revoking it, `me`;
mutations need a token, App B's the admin role; reads stay public; the OpenAPI document
shows the bearer scheme on the protected routes only; the audit log names the user."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from platform_helpers import bearer_headers, serve_in_process
from sqlalchemy.ext.asyncio import create_async_engine

from dbsight import audit

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def app_and_client(platform_settings: Any, fresh_runtime: Any) -> Any:
    from dbsight_platform.main import create_app

    app = create_app(platform_settings)
    async with serve_in_process(app, principal=None) as client:
        yield app, client


async def make_user(app: Any, username: str, roles: list[str]) -> None:
    from dbsight_platform.apps.app_a.users import UserService

    async with app.state.database.session() as session:
        await UserService(session, app.state.passwords).create(username, PASSWORD, roles)


def check_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["code"], body["data"]) == (code, None)
    assert body["trace_id"]
    return body


async def test_login_me_logout(app_and_client: Any) -> None:
    app, client = app_and_client
    name = f"alice{secrets.token_hex(3)}"
    await make_user(app, name, ["admin"])

    wrong = await client.post("/v1/app-a/auth/login", json={"username": name, "password": "x"})
    check_error(wrong, 401, 1001)
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    unknown = await client.post(
        "/v1/app-a/auth/login", json={"username": "nobody-at-all", "password": PASSWORD}
    )
    assert unknown.json()["message"] == wrong.json()["message"]  # the same for both

    by_form = await client.post(
        "/v1/app-a/auth/login", data={"username": name, "password": PASSWORD}
    )
    assert by_form.status_code == 200, by_form.text
    login = await client.post("/v1/app-a/auth/login", json={"username": name, "password": PASSWORD})
    assert login.status_code == 200 and login.json()["code"] == 0
    data = login.json()["data"]
    assert data["token_type"] == "bearer" and data["roles"] == ["admin"]
    assert data["expires_in"] > 0
    headers = {"Authorization": f"Bearer {data['access_token']}"}

    me = await client.get("/v1/app-a/auth/me", headers=headers)
    assert me.json()["data"] == {"subject": name, "roles": ["admin"]}
    check_error(await client.get("/v1/app-a/auth/me"), 401, 1004)
    check_error(
        await client.get("/v1/app-a/auth/me", headers={"Authorization": "Bearer not.a.jwt"}),
        401,
        1005,
    )

    out = await client.post("/v1/app-a/auth/logout", headers=headers)
    assert out.json()["data"] == {"revoked": True}
    check_error(await client.get("/v1/app-a/auth/me", headers=headers), 401, 1006)
    # the other token of the same user still works
    other = {"Authorization": f"Bearer {by_form.json()['data']['access_token']}"}
    assert (await client.get("/v1/app-a/auth/me", headers=other)).status_code == 200


async def test_bad_login_bodies_are_refused(app_and_client: Any) -> None:
    _, client = app_and_client
    for response in (
        await client.post("/v1/app-a/auth/login", json={"username": "a"}),
        await client.post("/v1/app-a/auth/login", content=b"{", headers={"Content-Type": "application/json"}),
        await client.post("/v1/app-a/auth/login", content=b"x", headers={"Content-Type": "text/plain"}),
        await client.post("/v1/app-a/auth/login", json={"username": "a", "password": "b", "x": 1}),
    ):  # fmt: skip
        assert response.status_code in (400, 422), response.text  # malformed: 400
        assert response.json()["code"] != 0


async def test_mutations_need_a_token_and_app_b_the_admin_role(
    app_and_client: Any, platform_database_url: str
) -> None:
    app, client = app_and_client
    account = {"username": f"u{secrets.token_hex(4)}", "email": "a@example.com"}
    product = {"sku": f"SKU-{secrets.token_hex(4)}", "name": "Lamp", "price": "1.00", "stock": 1}

    check_error(await client.post("/v1/app-a/accounts", json=account), 401, 1004)
    check_error(await client.post("/v1/app-b/products", json=product), 401, 1004)
    assert (await client.get("/v1/app-b/products")).status_code == 200  # reads are public

    name = f"bob{secrets.token_hex(3)}"
    await make_user(app, name, [])
    login = await client.post("/v1/app-a/auth/login", json={"username": name, "password": PASSWORD})
    user = {"Authorization": f"Bearer {login.json()['data']['access_token']}"}
    created = await client.post("/v1/app-a/accounts", json=account, headers=user)
    assert created.status_code == 201, created.text
    check_error(await client.post("/v1/app-b/products", json=product, headers=user), 403, 1003)
    admin = bearer_headers(app, "root", ("admin",))
    assert (await client.post("/v1/app-b/products", json=product, headers=admin)).status_code == 201

    engine = create_async_engine(platform_database_url)
    try:
        table = audit.add_audit_table(sa.MetaData())
        query = sa.select(table.c.actor).where(
            table.c.entity_type == "account",
            table.c.entity_id == str(created.json()["data"]["id"]),
        )
        async with engine.connect() as connection:
            assert (await connection.execute(query)).scalars().all() == [name]
    finally:
        await engine.dispose()


async def test_openapi_shows_the_scheme_on_protected_routes(app_and_client: Any) -> None:
    _, client = app_and_client
    schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    paths = schema["paths"]
    assert paths["/v1/app-b/products"]["post"]["security"] == [{"BearerAuth": []}]
    assert paths["/v1/app-a/orders"]["post"]["security"] == [{"BearerAuth": []}]
    assert paths["/v1/app-a/auth/me"]["get"]["security"] == [{"BearerAuth": []}]
    assert "security" not in paths["/v1/app-b/products"]["get"]
    assert "security" not in paths["/v1/app-a/auth/login"]["post"]
    login_body = paths["/v1/app-a/auth/login"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(login_body)


async def test_password_is_stored_as_an_argon2_hash(app_and_client: Any) -> None:
    from sqlalchemy import select

    from dbsight_platform.apps.app_a.models import User

    app, _ = app_and_client
    name = f"carol{secrets.token_hex(3)}"
    await make_user(app, name, ["admin", "ops"])
    async with app.state.database.session() as session:
        user = (await session.execute(select(User).where(User.username == name))).scalar_one()
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert user.role_list == ["admin", "ops"]


def test_create_user_command(platform_pg_url: str) -> None:
    import os
    import subprocess
    import sys

    name = f"dave{secrets.token_hex(3)}"
    env = {
        **os.environ,
        "DATABASE_URL": platform_pg_url,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "PLATFORM_NEW_USER_PASSWORD": PASSWORD,
    }
    command = [sys.executable, "-m", "dbsight_platform", "create-user", name, "--role", "admin"]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert f"user {name} created (roles: admin)" in done.stdout
    again = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    assert PASSWORD not in done.stdout + done.stderr + again.stdout + again.stderr
