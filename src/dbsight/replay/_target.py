"""The target of a replay: connecting to it."""

from __future__ import annotations

import psycopg
from psycopg import AsyncConnection

from ..core._dsn import cannot_connect
from ._errors import ReplayError

CONNECT_TIMEOUT_S = 10
APPLICATION_NAME = "dbsight replay"


async def connect(target: str) -> AsyncConnection[object]:
    """An autocommit connection to ``target``, or `ReplayError` naming it, password left out."""
    try:
        return await AsyncConnection.connect(
            target,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=APPLICATION_NAME,
        )
    except psycopg.Error as exc:
        raise ReplayError(cannot_connect(target, exc)) from None
