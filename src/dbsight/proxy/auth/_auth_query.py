"""The auth query: how the proxy asks the server for a user's secret (PgBouncer's auth_query).

The proxy runs ``AuthQuery.sql`` with the login user as ``$1`` (as a privileged auth user,
over the asyncio layer) and hands the result rows to ``AuthQuery.credential``. Running it is
the server's business; reading its answer is here, so that it is one unit test.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._credential import Credential

DEFAULT_AUTH_QUERY = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1"

Value = str | bytes | bytearray | memoryview | None


class AuthQueryError(ValueError):
    """The auth query returned something that is not one (user, secret) row for the user."""


def _text(value: Value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return bytes(value).decode("utf-8", "surrogateescape")


def credential_from_row(user: str, row: Sequence[Value] | None) -> Credential | None:
    """The credential in one result row ``(name, secret)``; None when the row is missing or
    the secret is NULL (a role without a password cannot log in with one)."""
    if row is None:
        return None
    if len(row) != 2:
        raise AuthQueryError(f"the auth query must return 2 columns (user, secret), got {len(row)}")
    name, secret = _text(row[0]), _text(row[1])
    if name != user:
        raise AuthQueryError(f"the auth query asked for user {user!r} returned user {name!r}")
    if not secret:
        return None
    return Credential.from_secret(user, secret)


@dataclass(frozen=True, slots=True)
class AuthQuery:
    """The SQL to run (one parameter, ``$1``: the user name) and how to read its rows."""

    sql: str = DEFAULT_AUTH_QUERY

    def __post_init__(self) -> None:
        if "$1" not in self.sql:
            raise ValueError("the auth query must take the user name as parameter $1")

    def credential(self, user: str, rows: Iterable[Sequence[Value]]) -> Credential | None:
        """The user's credential from all the rows the query returned (none: unknown user)."""
        found = list(rows)
        if len(found) > 1:
            raise AuthQueryError(f"the auth query returned {len(found)} rows for user {user!r}")
        return credential_from_row(user, found[0] if found else None)
