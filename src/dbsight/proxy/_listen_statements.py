"""LISTEN and UNLISTEN in a client's statement text, for LISTEN through transaction pooling.

`listen_ops` reads the channels a text listens to or stops listening to, in order, with
PostgreSQL's own parser (so ``LISTEN Foo`` is channel ``foo``, ``LISTEN "Foo"`` is ``Foo``, and
``UNLISTEN *`` is every channel). `may_listen` is the cheap test the relay runs on every
statement first: only a text that starts with (UN)LISTEN, after blanks and comments, is parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pglast import parse_sql
from pglast.ast import ListenStmt, UnlistenStmt
from pglast.parser import ParseError

from ..sql._cache import LruMap

_START = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*(?:un)?listen\b", re.I | re.S)
LISTEN_FIRST = frozenset(" \t\r\n-/lLuU")  # where a LISTEN or UNLISTEN text may start
_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class ListenOp:
    """``listen`` True: LISTEN ``channel``; False: UNLISTEN ``channel`` (None: all)."""

    listen: bool
    channel: str | None


_ops: LruMap[str, tuple[ListenOp, ...]] = LruMap(_CACHE_SIZE)


def may_listen(sql: str) -> bool:
    """Whether ``sql`` starts with LISTEN or UNLISTEN (after blanks and comments)."""
    return bool(sql) and sql[0] in LISTEN_FIRST and _START.match(sql) is not None


def listen_ops(sql: str) -> tuple[ListenOp, ...]:
    """The LISTEN and UNLISTEN statements of ``sql``, in order (none for a text that does
    not parse: the server refuses it, so it listens to nothing)."""
    cached = _ops.get(sql)
    if cached is not None:
        return cached
    try:
        statements = parse_sql(sql)
    except (ParseError, RecursionError):
        statements = ()
    ops = tuple(
        ListenOp(isinstance(raw.stmt, ListenStmt), raw.stmt.conditionname)
        for raw in statements
        if isinstance(raw.stmt, (ListenStmt, UnlistenStmt))
    )
    _ops.put(sql, ops)
    return ops


def quote_channel(channel: str) -> str:
    """``channel`` as an SQL identifier (always quoted: its case is kept)."""
    return '"' + channel.replace('"', '""') + '"'
