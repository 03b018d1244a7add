"""``Principal``: who a request acts for, as the bearer dependency hands it to an endpoint."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .tokens import TokenClaims


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated subject and its roles; ``token_id``/``expires_at`` name the token
    it came with (what logout revokes)."""

    subject: str
    roles: frozenset[str]
    token_id: str | None = None
    expires_at: datetime | None = None

    @classmethod
    def from_claims(cls, claims: TokenClaims) -> Principal:
        return cls(claims.subject, frozenset(claims.roles), claims.token_id, claims.expires_at)

    def has_roles(self, roles: Iterable[str], *, any_of: bool = False) -> bool:
        wanted = set(roles)
        return bool(wanted & self.roles) if any_of else wanted <= self.roles
