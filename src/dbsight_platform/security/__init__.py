"""Authentication for the platform: Argon2 password hashing, JWT access tokens, the FastAPI
dependencies ``bearer_user`` and ``require_roles``, and the Redis token revocation list used
at logout. See docs/platform-security.md for the wiring.
"""

from .dependencies import (
    Authenticator,
    bearer_scheme,
    bearer_user,
    get_authenticator,
    install_authenticator,
    require_roles,
)
from .errors import (
    AuthError,
    InvalidCredentials,
    InvalidToken,
    NotAuthenticated,
    PermissionDenied,
    TokenExpired,
    TokenRevoked,
)
from .passwords import InvalidPasswordHash, PasswordHashing
from .principal import Principal
from .revocation import TokenRevocationList
from .tokens import AccessToken, TokenClaims, TokenCodec

__all__ = [
    "AccessToken",
    "AuthError",
    "Authenticator",
    "InvalidCredentials",
    "InvalidPasswordHash",
    "InvalidToken",
    "NotAuthenticated",
    "PasswordHashing",
    "PermissionDenied",
    "Principal",
    "TokenClaims",
    "TokenCodec",
    "TokenExpired",
    "TokenRevocationList",
    "TokenRevoked",
    "bearer_scheme",
    "bearer_user",
    "get_authenticator",
    "install_authenticator",
    "require_roles",
]
