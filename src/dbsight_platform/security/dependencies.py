"""FastAPI dependencies: ``bearer_user`` (the request's ``Principal`` from
``Authorization: Bearer <jwt>``) and ``require_roles(*roles)``.

They find the ``Authenticator`` (token codec + revocation list) on the application, put
there once at start-up with ``install_authenticator(app, authenticator)``, so the apps'
routers import these functions without knowing the configuration. ``bearer_scheme``
(HTTPBearer) makes every route that depends on them show the "BearerAuth" security scheme in
the OpenAPI document and the docs' Authorize button.

Errors are ``AuthError`` subclasses (401/403 with business codes, see ``errors``) and
``RedisUnavailable`` from the revocation check; the platform's exception handlers render
them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import NotAuthenticated, PermissionDenied, TokenRevoked
from .principal import Principal
from .revocation import TokenRevocationList
from .tokens import AccessToken, TokenCodec

STATE_ATTRIBUTE = "authenticator"

bearer_scheme = HTTPBearer(
    scheme_name="BearerAuth",
    bearerFormat="JWT",
    description="An access token: `Authorization: Bearer <token>`.",
    auto_error=False,  # a missing header is our NotAuthenticated, rendered by the platform
)


class Authenticator:
    """Verifies access tokens (and their revocation) and revokes them at logout."""

    def __init__(self, tokens: TokenCodec, revocations: TokenRevocationList | None = None):
        self.tokens = tokens
        self.revocations = revocations

    def issue(self, subject: str, roles: tuple[str, ...] | list[str] = ()) -> AccessToken:
        return self.tokens.issue(subject, roles)

    async def authenticate(self, token: str) -> Principal:
        claims = self.tokens.decode(token)
        if self.revocations is not None and await self.revocations.is_revoked(claims.token_id):
            raise TokenRevoked("token revoked")
        return Principal.from_claims(claims)

    async def logout(self, principal: Principal) -> bool:
        """Revoke the principal's token until it expires; False without a revocation list
        or a token id (nothing revoked: the token stays valid until ``exp``)."""
        if self.revocations is None or not principal.token_id or principal.expires_at is None:
            return False
        return await self.revocations.revoke(principal.token_id, principal.expires_at)


def install_authenticator(app: Any, authenticator: Authenticator) -> None:
    """Make ``authenticator`` the one the dependencies use for ``app`` (a FastAPI app)."""
    setattr(app.state, STATE_ATTRIBUTE, authenticator)


def get_authenticator(request: Request) -> Authenticator:
    authenticator = getattr(request.app.state, STATE_ATTRIBUTE, None)
    if not isinstance(authenticator, Authenticator):
        raise RuntimeError(
            "no Authenticator on this app: call "
            "dbsight_platform.security.install_authenticator(app, ...) at start-up"
        )
    return authenticator


async def bearer_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The request's principal; ``NotAuthenticated`` without a bearer token, ``InvalidToken``
    / ``TokenExpired`` / ``TokenRevoked`` for a bad one. Also left on
    ``request.state.principal`` for logging and middleware."""
    if credentials is None or not credentials.credentials:
        raise NotAuthenticated("missing bearer token")
    principal = await get_authenticator(request).authenticate(credentials.credentials)
    request.state.principal = principal
    return principal


def require_roles(*roles: str, any_of: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting a principal with all of ``roles`` (or one of them, with
    ``any_of``); ``PermissionDenied`` (403) otherwise. Returns the principal."""
    if not roles or not all(isinstance(role, str) and role for role in roles):
        raise ValueError("require_roles() needs at least one non-empty role name")
    wanted = frozenset(roles)

    async def dependency(principal: Annotated[Principal, Depends(bearer_user)]) -> Principal:
        if not principal.has_roles(wanted, any_of=any_of):
            raise PermissionDenied(
                f"requires {'one of' if any_of else 'the'} role(s) {', '.join(sorted(wanted))}"
            )
        return principal

    dependency.__name__ = f"require_roles_{'_'.join(sorted(wanted))}"
    return dependency
