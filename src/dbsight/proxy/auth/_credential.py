"""A user's credential as the proxy stores it: a SCRAM secret, an md5 hash or a plaintext.

The kind is read from the secret's shape the way PostgreSQL reads pg_authid (and PgBouncer its
users file): ``md5`` + 32 hex digits is md5, a parsable ``SCRAM-SHA-256$...`` is SCRAM, anything
else is a plaintext password.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import StrEnum

from ._md5 import is_md5_secret, md5_secret
from ._scram import SECRET_PREFIX, ScramSecret


class CredentialKind(StrEnum):
    SCRAM_SHA_256 = "scram-sha-256"
    MD5 = "md5"
    PLAINTEXT = "plaintext"


@dataclass(frozen=True, slots=True)
class Credential:
    """``user``'s secret and its kind; ``repr`` never shows the secret."""

    user: str
    secret: str = field(repr=False)
    kind: CredentialKind
    _scram: ScramSecret | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_secret(cls, user: str, secret: str, *, strict: bool = False) -> Credential:
        """Classify ``secret``. With ``strict``, a secret that starts like a SCRAM secret but
        does not parse is a ``ValueError`` instead of (as PostgreSQL has it) a plaintext."""
        if is_md5_secret(secret):
            return cls(user, secret, CredentialKind.MD5)
        if secret.startswith(SECRET_PREFIX):
            try:
                parsed = ScramSecret.parse(secret)
            except ValueError:
                if strict:
                    raise
            else:
                return cls(user, secret, CredentialKind.SCRAM_SHA_256, parsed)
        return cls(user, secret, CredentialKind.PLAINTEXT)

    @property
    def allows_scram(self) -> bool:
        """SCRAM needs a SCRAM secret or the plaintext to derive one; an md5 hash is not enough."""
        return self.kind is not CredentialKind.MD5

    def scram_secret(self) -> ScramSecret:
        """The SCRAM secret to verify against (derived once, random salt, for a plaintext)."""
        if self._scram is None:
            if self.kind is not CredentialKind.PLAINTEXT:
                raise ValueError(f"an {self.kind} credential has no SCRAM secret")
            object.__setattr__(self, "_scram", ScramSecret.from_password(self.secret))
        assert self._scram is not None
        return self._scram

    def md5_secret(self) -> str:
        """The md5 hash to verify against; a SCRAM secret has none."""
        if self.kind is CredentialKind.MD5:
            return self.secret
        if self.kind is CredentialKind.PLAINTEXT:
            return md5_secret(self.user, self.secret)
        raise ValueError("a SCRAM credential cannot be used for md5 authentication")

    def matches_password(self, password: bytes) -> bool:
        """Whether a cleartext ``password`` is this credential's (constant-time compares)."""
        if self.kind is CredentialKind.SCRAM_SHA_256:
            return self.scram_secret().matches_password(password)
        if self.kind is CredentialKind.MD5:
            return hmac.compare_digest(md5_secret(self.user, password), self.secret)
        return hmac.compare_digest(password, self.secret.encode("utf-8", "surrogateescape"))
