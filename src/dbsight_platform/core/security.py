"""The platform's authentication, wired from its settings (docs/platform-security.md): the
JWT codec and the Redis revocation list behind ``bearer_user``/``require_roles``, Argon2
password hashing for the login, and the exception handlers that answer `AuthError` and
`RedisFeatureError` with the envelope, their status, code and headers (``WWW-Authenticate``,
``Retry-After``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from starlette.responses import Response

from ..redis_features import RedisFeatureError, RedisUnavailable
from ..security import (
    Authenticator,
    AuthError,
    PasswordHashing,
    TokenCodec,
    TokenRevocationList,
    get_authenticator,
    install_authenticator,
)
from .codes import Code
from .config import Settings
from .redis import RedisKeys
from .responses import error_response


def wire_security(app: FastAPI, settings: Settings, redis: Any, keys: RedisKeys) -> None:
    """Install the authenticator and the password hashing on ``app``, and the handlers."""
    tokens = TokenCodec(
        settings.jwt_secret,
        algorithm=settings.jwt_algorithm,
        expires_in=timedelta(minutes=settings.access_token_expire_minutes),
    )
    revocations = TokenRevocationList(redis, prefix=f"{keys.prefix}auth:revoked:")
    install_authenticator(app, Authenticator(tokens, revocations))
    app.state.passwords = PasswordHashing()
    app.add_exception_handler(AuthError, auth_error_handler)
    app.add_exception_handler(RedisFeatureError, redis_feature_error_handler)


async def auth_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    return error_response(exc.status_code, exc.code, exc.message, exc.headers)


async def redis_feature_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RedisFeatureError)
    if isinstance(exc, RedisUnavailable):  # the platform's code for Redis, no details
        return error_response(exc.status_code, Code.CACHE_ERROR)
    headers = getattr(exc, "headers", None)  # RateLimited's Retry-After
    return error_response(exc.status_code, exc.code, exc.message, headers)


def get_passwords(request: Request) -> PasswordHashing:
    return request.app.state.passwords  # type: ignore[no-any-return]


PasswordsDep = Annotated[PasswordHashing, Depends(get_passwords)]
AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]
