"""The target of a replay: connecting to it, and naming it without its password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import AsyncConnection

from ._errors import ReplayError

CONNECT_TIMEOUT_S = 10
APPLICATION_NAME = "dbsight replay"

_QUERY_PASSWORD = re.compile(r"((?:^|&)password=)[^&]*", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_dsn(dsn: str) -> str:
    """``dsn`` (a postgresql:// URL or key=value string) with its password replaced by ***."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        if parts.password is not None:
            userinfo, _, host = parts.netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            parts = parts._replace(netloc=f"{user}:***@{host}")
        query = _QUERY_PASSWORD.sub(r"\1***", parts.query)
        return urlunsplit(parts._replace(query=query))
    return _KEYWORD_PASSWORD.sub(r"\1***", dsn)


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (libpq adds detail lines)."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


async def connect(target: str) -> AsyncConnection[object]:
    """An autocommit connection to ``target``, or `ReplayError` naming it (masked)."""
    try:
        return await AsyncConnection.connect(
            target,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=APPLICATION_NAME,
        )
    except psycopg.Error as exc:
        raise ReplayError(f"cannot connect to {mask_dsn(target)}: {one_line(exc)}") from None
