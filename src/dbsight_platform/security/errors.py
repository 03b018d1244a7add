"""Authentication and authorization errors, each with the HTTP status, business code (seed
004: 1000-1999) and headers the platform answers it with, so one handler maps them all:

    except AuthError as exc -> status exc.status_code, headers exc.headers, body code exc.code

Messages say what is wrong with a token, never the token.
"""

from __future__ import annotations


class AuthError(Exception):
    """Base: ``status_code`` (HTTP), ``code`` (business), ``headers`` to send."""

    status_code: int = 401
    code: int = 1000

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        if self.status_code == 401:  # RFC 6750: tell the client which scheme to use
            return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        return {}


class InvalidCredentials(AuthError):
    """Wrong user name or password at login (401, 1001)."""

    code = 1001

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class TokenExpired(AuthError):
    """The access token's ``exp`` has passed (401, 1002)."""

    code = 1002


class PermissionDenied(AuthError):
    """Authenticated, but without a role the endpoint requires (403, 1003)."""

    status_code = 403
    code = 1003


class NotAuthenticated(AuthError):
    """No ``Authorization: Bearer`` header (401, 1004)."""

    code = 1004

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class InvalidToken(AuthError):
    """Malformed, wrongly signed, unsigned (``alg: none``), other algorithm, missing or
    ill-typed claims, wrong issuer or audience, not yet valid (401, 1005)."""

    code = 1005


class TokenRevoked(AuthError):
    """The token was revoked (logout) before it expired (401, 1006)."""

    code = 1006
