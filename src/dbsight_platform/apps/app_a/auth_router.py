"""Authentication under ``/v1/app-a/auth``: log in (a JWT access token), log out (the token
revoked in Redis until it expires), who am I.

The login takes JSON or an HTML form (``application/x-www-form-urlencoded``, as OAuth2's
password flow sends it) with ``username`` and ``password``. A wrong name or password answers
401 with code 1001, the same for both.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...core.dependencies import SessionDep
from ...core.openapi import errors
from ...core.responses import SuccessResponse, success
from ...core.security import AuthenticatorDep, PasswordsDep
from ...security import Principal, bearer_user
from .users import UserService

router = APIRouter(prefix="/v1/app-a/auth")
AUTH: list[str | Enum] = ["App A: authentication"]
MAX_BODY = 16 * 1024
FORM = "application/x-www-form-urlencoded"


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=50)
    password: str = Field(min_length=1, max_length=1024)


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    roles: list[str]


class MeRead(BaseModel):
    subject: str
    roles: list[str]


class LogoutRead(BaseModel):
    revoked: bool = Field(description="False: the token had no id or expiry to revoke.")


_LOGIN_SCHEMA = LoginRequest.model_json_schema()
LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _LOGIN_SCHEMA},
            FORM: {"schema": _LOGIN_SCHEMA},
        },
    }
}


async def read_login(request: Request) -> LoginRequest:
    """The credentials from a JSON or form body; a 422 envelope for anything else."""
    body = await request.body()
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    try:
        if len(body) > MAX_BODY:
            raise ValueError("the body is too large")
        if content_type == FORM:
            return LoginRequest.model_validate(
                dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
            )
        if content_type in ("application/json", ""):
            return LoginRequest.model_validate_json(body)
        raise ValueError(f"send JSON or {FORM}")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body",), "msg": str(exc), "input": None}]
        ) from None


def get_users(session: SessionDep, passwords: PasswordsDep) -> UserService:
    return UserService(session, passwords)


UsersDep = Annotated[UserService, Depends(get_users)]


@router.post(
    "/login",
    response_model=SuccessResponse[TokenRead],
    tags=AUTH,
    summary="Log in: an access token for a user name and password (JSON or form)",
    responses=errors(401),
    openapi_extra=LOGIN_BODY,
)
async def login(
    request: Request, users: UsersDep, authenticator: AuthenticatorDep
) -> SuccessResponse[TokenRead]:
    credentials = await read_login(request)
    user = await users.authenticate(credentials.username, credentials.password)
    token = authenticator.issue(user.username, user.role_list)
    return success(
        TokenRead(access_token=token.token, expires_in=token.expires_in_s, roles=user.role_list),
        "Logged in",
    )


@router.post(
    "/logout",
    response_model=SuccessResponse[LogoutRead],
    tags=AUTH,
    summary="Log out: revoke the access token",
    responses=errors(401),
)
async def logout(
    principal: Annotated[Principal, Depends(bearer_user)], authenticator: AuthenticatorDep
) -> SuccessResponse[LogoutRead]:
    return success(LogoutRead(revoked=await authenticator.logout(principal)), "Logged out")


@router.get(
    "/me",
    response_model=SuccessResponse[MeRead],
    tags=AUTH,
    summary="Who the access token is for",
    responses=errors(401),
)
async def me(principal: Annotated[Principal, Depends(bearer_user)]) -> SuccessResponse[MeRead]:
    return success(MeRead(subject=principal.subject, roles=sorted(principal.roles)))
