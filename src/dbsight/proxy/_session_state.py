"""What of a client's server session its reads on a replica must share (session mode).

In session mode the client keeps one primary connection, and its reads borrow replica
connections. A replica connection is made with the GUCs the client has SET (startup
parameters, so nothing is replayed per read). After a unit that may have changed the session,
the proxy asks the primary connection (`state_query`):

- the GUCs whose source is ``session``, as the server spells their values;
- custom settings (``SET app.tenant = ...``, ``set_config('app.tenant', ...)``): PostgreSQL
  lists no placeholder variables in ``pg_settings``, so their names come from the client's
  statements (`custom_settings`) and their values from ``current_setting``;
- whether the session holds what no replica can have: temporary tables, LISTEN, cursors
  WITH HOLD, another role (SET ROLE and SET SESSION AUTHORIZATION are not replayed), or
  SERIALIZABLE as its default isolation (a hot standby refuses it). Such a session is pinned
  to its connection until it lets go of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# SET [SESSION] name.name ... and set_config('name.name', ...): a custom setting's name.
_CUSTOM = re.compile(
    rb"""(?ix)
    \bset\s+(?:session\s+)?("?[a-z_][a-z0-9_$]*"?\."?[a-z0-9_$.]+"?)
    | \bset_config\s*\(\s*'([^']+\.[^']+)'
    """
)
_NAME = re.compile(r"[a-z0-9_$.]+")  # what goes into the state query as a literal
_SETTINGS = (
    "(SELECT coalesce(json_object_agg(name, setting), '{}') FROM pg_settings"
    " WHERE source = 'session' AND name NOT IN ('role', 'session_authorization',"
    " 'transaction_isolation', 'transaction_read_only', 'transaction_deferrable'))"
)
_PINNED = (
    "EXISTS (SELECT FROM pg_class WHERE relnamespace = pg_my_temp_schema())"
    " OR EXISTS (SELECT FROM pg_listening_channels())"
    " OR EXISTS (SELECT FROM pg_cursors WHERE is_holdable)"
    " OR current_user <> session_user"
    " OR current_setting('default_transaction_isolation') = 'serializable'"
)


def custom_settings(buf: bytes, start: int, end: int) -> list[str]:
    """The custom settings a statement at ``buf[start:end]`` may set (lower case, unquoted)."""
    if buf.find(b".", start, end) < 0:
        return []
    names = []
    for match in _CUSTOM.finditer(buf, start, end):
        raw = match.group(1) or match.group(2)
        name = raw.decode("utf-8", "replace").replace('"', "").lower()
        if _NAME.fullmatch(name):
            names.append(name)
    return names


def literal(text: str) -> str:
    """``text`` as an escape-string literal: safe whatever standard_conforming_strings says."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def state_query(login_user: str, custom: set[str] | frozenset[str]) -> str:
    """The columns that read the session's state: its settings (JSON) and whether it is
    pinned ('t'/'f'); ``login_user``: whom the client logged in as."""
    settings = _SETTINGS
    if custom:
        names = ", ".join(literal(name) for name in sorted(custom))
        settings = (
            f"({_SETTINGS}::jsonb || coalesce((SELECT jsonb_object_agg(n, v) FROM"
            f" (SELECT n, current_setting(n, true) AS v FROM unnest(ARRAY[{names}]) AS n) s"
            " WHERE v <> ''), '{}'))::text"
        )
    return f"{settings}::text, {_PINNED} OR session_user <> {literal(login_user)}"


@dataclass(frozen=True)
class SessionState:
    settings: dict[str, str]
    pinned: bool

    @classmethod
    def from_row(cls, settings: str | None, pinned: str | None) -> SessionState:
        values = json.loads(settings or "{}")
        return cls({str(k): str(v) for k, v in values.items()}, pinned == "t")


def serializable_by_default(settings: Mapping[str, str]) -> bool:
    """Whether startup parameters make every transaction SERIALIZABLE (directly, or through
    ``options=-c default_transaction_isolation=serializable``): no replica can serve it."""
    direct = settings.get("default_transaction_isolation", "")
    options = settings.get("options", "")
    return "serializable" in direct.lower() or (
        "default_transaction_isolation" in options and "serializable" in options.lower()
    )


async def read_session_state(
    conn: Any, login_user: str, custom: set[str], *, changed: bool, by_lsn: bool
) -> tuple[SessionState | None, str | None]:
    """Session mode, after a unit on the client's own connection: its state (when the unit
    may have ``changed`` it: the GUCs it has SET, whether it holds what no replica can have)
    and the WAL position its write reached (``by_lsn``), in one round trip."""
    columns = [state_query(login_user, custom)] if changed else []
    if by_lsn:
        columns.append("pg_current_wal_insert_lsn()")
    results = await conn.execute("SELECT " + ", ".join(columns))
    row = results[-1].rows[0] if results and results[-1].rows else ()
    lsn = row[-1] if by_lsn and row else None
    state = SessionState.from_row(row[0], row[1]) if changed and row else None
    return state, lsn
