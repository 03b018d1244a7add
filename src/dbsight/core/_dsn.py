"""A PostgreSQL connection string as the analysis commands show it (never its password), and
the one-line reason a connection failed.

Every command that names the database it reads (``dbsight advise``, ``check``, ``replay``,
the pg_stat_statements reader) names it the same way: ``postgresql://user@host:port/dbname``,
built from the parsed parameters so that no password, in the URL's userinfo, its query or a
``password=`` keyword, can survive.
"""

from __future__ import annotations

__all__ = ["cannot_connect", "describe_dsn", "first_line", "invalid_dsn"]

UNPARSABLE = "(unparsable DSN)"


def describe_dsn(dsn: str) -> str:
    """``dsn`` (a postgresql:// URL or key=value string) as ``postgresql://user@host:port/db``,
    without its password; a socket directory is shown as ``?host=/path``."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(dsn)
    except Exception:  # psycopg missing (no analysis extra) or a string libpq cannot read
        return UNPARSABLE
    user = str(info.get("user") or "")
    host = str(info.get("host") or "localhost")
    port = f":{info['port']}" if info.get("port") else ""
    dbname = str(info.get("dbname") or user)
    userinfo = f"{user}@" if user else ""
    if host.startswith("/"):  # a Unix socket directory: libpq's own URL spelling of it
        return f"postgresql://{userinfo}{port}/{dbname}?host={host}"
    return f"postgresql://{userinfo}{host}{port}/{dbname}"


def first_line(error: BaseException | str) -> str:
    """A server or driver message on one line (libpq adds DETAIL, HINT and context lines)."""
    text = str(error)
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__ if isinstance(error, BaseException) else "unknown error"


def cannot_connect(dsn: str, error: BaseException) -> str:
    """``cannot connect to postgresql://user@host:port/db: <the first line of the error>``."""
    return f"cannot connect to {describe_dsn(dsn)}: {first_line(error)}"


def invalid_dsn(dsn: str) -> str | None:
    """Why ``dsn`` is not a PostgreSQL connection string, or None when it is one."""
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # no analysis extra: the command that needs psycopg says so itself
        return None
    try:
        conninfo_to_dict(dsn)
    except Exception as exc:
        return f"not a PostgreSQL connection string: {first_line(exc)}"
    return None
