"""JWT access tokens (PyJWT), signed with a shared secret (HMAC: HS256, HS384, HS512).

A token carries ``sub`` (the subject), ``roles`` (a list of strings), ``jti`` (a random id,
what revocation names), ``iat`` and ``exp``; ``iss``/``aud`` when configured. Decoding
checks the signature with the one configured algorithm only, before anything else refuses an
unsigned token (``alg: none``) or one naming another algorithm (the classic confusion
attacks), then requires every claim with the right type. Each failure is an ``InvalidToken``
with a message saying which check failed; an expired token is a ``TokenExpired``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from .errors import InvalidToken, TokenExpired

# RFC 7518 3.2: a key at least as long as the hash output
MIN_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
HMAC_ALGORITHMS = frozenset(MIN_SECRET_BYTES)
REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid token says."""

    subject: str
    roles: tuple[str, ...]
    token_id: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A token just issued, and what it says."""

    token: str
    claims: TokenClaims

    @property
    def expires_in_s(self) -> int:
        return int((self.claims.expires_at - self.claims.issued_at).total_seconds())


def _secret_text(secret: Any) -> str:
    value = secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret
    if not isinstance(value, str):
        raise TypeError("the JWT secret must be a str or a pydantic SecretStr")
    return value


class TokenCodec:
    """Issue and verify access tokens with one secret and algorithm.

    ``secret``: a str or ``SecretStr`` (the platform's ``jwt_secret``) of at least 32, 48 or
    64 bytes for HS256, HS384 or HS512.
    ``expires_in``: default lifetime (``access_token_expire_minutes``). ``leeway_s``: clock
    skew tolerated on ``exp``/``iat``. ``issuer``/``audience``: written and then required.
    """

    def __init__(
        self,
        secret: Any,
        *,
        algorithm: str = "HS256",
        expires_in: timedelta = timedelta(minutes=15),
        issuer: str | None = None,
        audience: str | None = None,
        leeway_s: float = 0.0,
    ) -> None:
        if algorithm not in HMAC_ALGORITHMS:
            raise ValueError(
                f"unsupported JWT algorithm {algorithm!r}: use one of {sorted(HMAC_ALGORITHMS)}"
            )
        key = _secret_text(secret)
        if len(key.encode()) < MIN_SECRET_BYTES[algorithm]:
            raise ValueError(
                f"the JWT secret must be at least {MIN_SECRET_BYTES[algorithm]} bytes long "
                f"for {algorithm}"
            )
        if expires_in <= timedelta(0):
            raise ValueError("expires_in must be positive")
        self._key = key
        self.algorithm = algorithm
        self.expires_in = expires_in
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s

    def __repr__(self) -> str:  # never the secret
        return f"<TokenCodec {self.algorithm} expires_in={self.expires_in}>"

    def issue(
        self,
        subject: str,
        roles: Iterable[str] = (),
        *,
        expires_in: timedelta | None = None,
        now: datetime | None = None,
    ) -> AccessToken:
        """A signed token for ``subject`` with ``roles``, valid ``expires_in``."""
        if not isinstance(subject, str) or not subject:
            raise ValueError("a token subject must be a non-empty string")
        role_list = tuple(dict.fromkeys(roles))
        if not all(isinstance(role, str) and role for role in role_list):
            raise ValueError("roles must be non-empty strings")
        lifetime = self.expires_in if expires_in is None else expires_in
        if lifetime <= timedelta(0):
            raise ValueError("expires_in must be positive")
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        claims = TokenClaims(
            subject, role_list, secrets.token_urlsafe(16), issued, issued + lifetime
        )
        payload: dict[str, Any] = {
            "sub": claims.subject,
            "roles": list(claims.roles),
            "jti": claims.token_id,
            "iat": int(claims.issued_at.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        if self.issuer is not None:
            payload["iss"] = self.issuer
        if self.audience is not None:
            payload["aud"] = self.audience
        token = jwt.encode(payload, self._key, algorithm=self.algorithm)
        return AccessToken(token, claims)

    def decode(self, token: str) -> TokenClaims:
        """The claims of a valid token; ``TokenExpired`` or ``InvalidToken`` otherwise."""
        if not isinstance(token, str) or not token:
            raise InvalidToken("empty token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("malformed token") from exc
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm.lower() == "none":
            raise InvalidToken("unsigned token (alg 'none') refused")
        if algorithm != self.algorithm:
            raise InvalidToken(f"token signed with {algorithm}, expected {self.algorithm}")
        required = [*REQUIRED_CLAIMS]
        if self.issuer is not None:
            required.append("iss")
        if self.audience is not None:
            required.append("aud")
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_s,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired("token expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("token signature does not match") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidToken("token issued in the future") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("token from another issuer") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("token for another audience") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"invalid token: {type(exc).__name__}") from exc
        return _claims(payload)


def _claims(payload: dict[str, Any]) -> TokenClaims:
    subject, token_id, roles = payload["sub"], payload["jti"], payload.get("roles", [])
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("the 'sub' claim must be a non-empty string")
    if not isinstance(token_id, str) or not token_id:
        raise InvalidToken("the 'jti' claim must be a non-empty string")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidToken("the 'roles' claim must be a list of strings")
    issued, expires = payload["iat"], payload["exp"]
    if not isinstance(issued, (int, float)) or not isinstance(expires, (int, float)):
        raise InvalidToken("the 'iat' and 'exp' claims must be numbers")
    return TokenClaims(
        subject=subject,
        roles=tuple(roles),
        token_id=token_id,
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(expires, UTC),
    )
