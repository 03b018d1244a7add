"""Dialect names accepted by :func:`dbsight.sql.analyze`."""

from __future__ import annotations

from typing import Final, Literal

Dialect = Literal["postgresql", "mysql", "sqlite", "generic"]

_ALIASES: Final[dict[str, Dialect]] = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "pg": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
}


# The names `analyze` knows, aliases included (any other gets sqlglot's default dialect).
DIALECT_NAMES: Final = tuple(_ALIASES)


def resolve_dialect(name: object) -> Dialect:
    """Map a user-supplied dialect name to one of the supported dialects.

    Unknown names are handled generically (sqlglot's default dialect).
    """
    if not isinstance(name, str):
        raise TypeError(f"dialect must be a str, not {type(name).__name__}")
    return _ALIASES.get(name.strip().lower(), "generic")
