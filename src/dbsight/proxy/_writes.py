"""Whether a statement may change table data, judged from its text (``dbsight.sql.analyze``).

Two relays need it: read-your-writes (after a session's write, its reads wait for a replica
that has it) and the result cache (a write drops what it reaches). Neither may miss a write,
and both lose something on a false alarm (reads kept on the primary, a cache emptied): so
what writes no table is told apart — a SELECT that locks rows, nextval, advisory locks,
set_config, and the session commands a pool sends between clients (SET, RESET, DISCARD,
CLOSE, UNLISTEN: an asyncpg pool's reset on release is all of these).
"""

from __future__ import annotations

from typing import Final

from ..sql import SqlInfo

# Functions whose writes stay in sequences, locks, settings or notifications: no table.
_TABLELESS_WRITERS: Final = frozenset((
    "nextval", "setval", "currval", "lastval", "set_config", "pg_notify", "pg_advisory_lock",
    "pg_advisory_xact_lock", "pg_advisory_unlock", "pg_try_advisory_lock",
    "pg_try_advisory_xact_lock", "pg_advisory_lock_shared", "pg_advisory_unlock_shared",
    "pg_advisory_xact_lock_shared", "pg_try_advisory_lock_shared",
    "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock_all",
))

# Commands that run code the text does not show: a procedure, a DO block, a prepared
# statement, or (EXPLAIN ANALYZE) one of those.
_OPAQUE_COMMANDS: Final = frozenset(("CALL", "DO", "EXECUTE", "EXPLAIN"))

_WRITING_OPERATIONS: Final = frozenset(("insert", "update", "delete", "ddl"))


def writes_anywhere(info: SqlInfo) -> bool:
    """Whether a statement may write tables its text does not name: it calls a function that
    is not known to write no table (a plpgsql function may write any), or runs a command
    whose code the text does not show (CALL, DO, EXECUTE)."""
    if any(name.removeprefix("pg_catalog.") not in _TABLELESS_WRITERS for name in info.calls):
        return True
    if info.operation not in ("other", "select"):
        return False
    return any(
        statement.split(None, 1)[0].upper() in _OPAQUE_COMMANDS
        for statement in info.normalized.split(";")
        if statement.strip()
    )


# `writes_anywhere` by normalized text (the analysis, and so the answer, is the text's): a
# client's BEGIN asks it once per transaction
_ANYWHERE_MAX = 1024
_anywhere: dict[str, bool] = {}


def may_write(info: SqlInfo) -> bool:
    """Whether a statement may change table data: INSERT, UPDATE, DELETE, MERGE, COPY FROM,
    DDL, or what `writes_anywhere` says may write."""
    if info.read_only:
        return False
    if info.operation in _WRITING_OPERATIONS:
        return True
    known = _anywhere.get(info.normalized)
    if known is None:
        known = writes_anywhere(info)
        if len(_anywhere) >= _ANYWHERE_MAX:
            _anywhere.clear()
        _anywhere[info.normalized] = known
    return known
