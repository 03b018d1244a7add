"""`StatementNames`: a pooled client's prepared statements, under names every server
connection shares.

Each Parse text (with its parameter types) gets one server-side name, ``_dbs_<hash>``, the
same for every client and connection, so a connection prepares each statement once. The
client's names map to it. Before a Bind or Describe on a connection that lacks the statement,
its Parse goes ahead and its ParseComplete is swallowed, so the client sees the replies to
its own messages only; a Parse of a statement the connection has, and every Close of a
statement, are answered by the proxy. `rename` turns one client message into what the
server gets; no sockets here.

What a text means depends on the catalog: after ``DROP TYPE``/``CREATE TYPE`` or ``ALTER
TABLE``, a statement prepared before may name a type that is gone or return other columns.
So the server name also carries a catalog generation (``generation``: the proxy's count of
transactions that dropped or altered something, or rolled back or failed after DDL, and such
statements in the transaction held now): a Parse after them prepares anew on every
connection instead of finding one prepared before. A client's
``DEALLOCATE ALL`` or ``DISCARD ALL`` (`clears_statements`) drops every statement of the
connection it runs on, the shared ones too: the proxy forgets them there at once, so the
Parses that follow in the same transaction reach the server. `ServerStatements` keeps both
sides agreeing as one client's transactions do that, or change the catalog.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable
from typing import Any, Protocol

from .. import _hot
from . import _exchange
from . import protocol as p
from ._exchange import SWALLOW, Exchange
from ._setting_statements import BLANKS
from ._units import BIND, CLOSE, PARSE, cstring

_INT32 = struct.Struct(">i")
_SERVER_PREFIX = "_dbs_"
_PARSE_COMPLETE = p.encode(p.ParseComplete())
_CLOSE_COMPLETE = p.encode(p.CloseComplete())
STATEMENT = ord("S")
# (C integers when compiled: a message type compared with them makes no object)
_BIND, _PARSE, _CLOSE, _STATEMENT = BIND, PARSE, CLOSE, STATEMENT
# A Query that drops every prepared statement of its server session (one statement alone).
_CLEARING_QUERY = re.compile(
    rf"{BLANKS}(?:DEALLOCATE\s+(?:PREPARE\s+)?ALL|DISCARD\s+ALL){BLANKS};?{BLANKS}\x00?".encode(),
    re.IGNORECASE,
)


def clears_statements(buf: bytes, start: int, end: int) -> bool:
    """Whether the Query body ``buf[start:end]`` is ``DEALLOCATE ALL`` or ``DISCARD ALL``."""
    return _CLEARING_QUERY.fullmatch(buf, start, end) is not None


class StatementNames:
    """The client's statement name -> (server name, the Parse that prepares it there, text).

    ``answer`` sends the proxy's own reply (ParseComplete, CloseComplete) to the client;
    ``on_prepared`` tells the observation what a server name runs.
    """

    __slots__ = ("statements", "answer", "on_prepared", "generation")

    def __init__(
        self,
        answer: Callable[[bytes], None],
        on_prepared: Callable[[str, str, bytes], None] | None = None,
        generation: Callable[[], str] | None = None,
    ) -> None:
        # the client's name -> (server name, its Parse, text, server name NUL-terminated)
        self.statements: dict[str, tuple[str, bytes, str, bytes]] = {}
        self.answer = answer
        self.on_prepared = on_prepared
        self.generation = generation  # the catalog generation, part of every server name

    def __contains__(self, name: str) -> bool:
        return name in self.statements

    def text(self, name: str) -> str | None:
        """What the client's statement ``name`` runs (None: not prepared)."""
        entry = self.statements.get(name)
        return entry[2] if entry is not None else None

    def clear(self) -> None:
        self.statements.clear()

    def remember(self, name: str, query: str, rest: bytes) -> tuple[str, bytes]:
        """The client prepares ``name`` (``rest``: its Parse body from the text on): its
        server name and the Parse message for the server."""
        hashed = hashlib.blake2b(rest, digest_size=12)
        if self.generation is not None:
            hashed.update(self.generation().encode())
        digest = hashed.hexdigest()
        server = _SERVER_PREFIX + digest
        server_z = server.encode() + b"\0"
        body = server_z + rest
        parse = b"P" + _INT32.pack(len(body) + 4) + body
        self.statements[name] = (server, parse, query, server_z)
        if self.on_prepared is not None:  # what an Execute of it runs, for the observation
            self.on_prepared(server, query, rest)
        return server, parse

    def rename(
        self, conn: Any, exchange: Exchange, t: int, buf: bytes, start: int, end: int,
        at: float,
    ) -> bytes | None:
        """A message naming a prepared statement (``buf[start:end]``: its body), as the
        server on ``conn`` gets it — the server's name, with the statement's Parse injected
        ahead when the connection lacks it — or None to forward it unchanged (a portal's
        Describe or Close, the unnamed statement). Parse and Close of a statement the
        connection has are answered here (b"" is forwarded)."""
        if t == _BIND:
            # (after the portal's name: the unnamed portal's, mostly, then the statement's)
            j = 1 + (
                start if start < end and buf[start] == 0 else _exchange.nul_at(buf, start, end)
            )
            k = _exchange.nul_at(buf, j, end) + 1
            if k == j + 1:  # the unnamed statement
                return None
            name = _hot.name_text(buf, j, k - 1)
            entry = self.statements.get(name)
            if entry is None:  # never prepared: the server says so, under the client's name
                return None
            server, inject = self._entry_on_connection(conn, exchange, name, entry)
            # the message made in one piece: the portal, the server's name (NUL-terminated),
            # the rest of the client's Bind
            message = _hot.message_with(_BIND, buf, start, j, entry[3], k, end)
            if not exchange.bind_renamed(buf, start, j, server, at):
                exchange.request(t, message, 5, len(message), at)
            return inject + message if inject else message
        elif t == _PARSE:
            name, j = cstring(buf, start, end)
            query, _ = cstring(buf, j, end)
            server, parse = self.remember(name, query, buf[j:end])
            if server in conn.prepared:
                reply = exchange.reply(_PARSE_COMPLETE)
                if reply is not None:
                    self.answer(reply)
                return b""
            if not exchange.discarding:
                conn.prepared[server] = query
            exchange.request(_PARSE, parse, 5, len(parse), at, server)
            return parse
        else:  # Describe or Close: 'S' statement or 'P' portal
            if buf[start] != _STATEMENT:
                return None
            name, k = cstring(buf, start + 1, end)
            if not name:
                return None
            if t == _CLOSE:
                self.statements.pop(name, None)
                reply = exchange.reply(_CLOSE_COMPLETE)
                if reply is not None:
                    self.answer(reply)
                return b""
            server, inject = self._on_connection(conn, exchange, name)
            body = b"S" + server.encode() + b"\0"
        message = bytes([t]) + _INT32.pack(len(body) + 4) + body
        exchange.request(t, message, 5, len(message), at)
        return inject + message if inject else message

    def _on_connection(self, conn: Any, exchange: Exchange, name: str) -> tuple[str, bytes]:
        """The server name of the client's statement ``name`` and the Parse to send first
        when ``conn`` does not have it (b"" when it does, or when the client never prepared
        ``name``: the server then says it does not exist, under the client's name)."""
        return self._entry_on_connection(conn, exchange, name, self.statements.get(name))

    def _entry_on_connection(
        self, conn: Any, exchange: Exchange, name: str, entry: tuple[str, bytes, str, bytes] | None
    ) -> tuple[str, bytes]:
        """`_on_connection` with the statement's entry, already looked up."""
        if entry is None:
            return name, b""
        server, parse = entry[0], entry[1]
        if server in conn.prepared or exchange.discarding:
            return server, b""
        conn.prepared[server] = name
        exchange.expect(SWALLOW, server)
        return server, parse


class GenerationCount(Protocol):
    """Where the proxy counts the transactions that changed the catalog (`ServerPools`)."""

    catalog_generation: int


class ConnectionHolder(Protocol):
    """What holds the client's server connection now, if any (`Lease`)."""

    @property
    def conn(self) -> Any: ...


class ServerStatements:
    """What one client's transactions do to the statements its server connections hold:
    the catalog generation the server names it prepares carry (``generation``, given to
    `StatementNames`), a statement the server did not prepare after all (``forget``), a
    DEALLOCATE ALL or DISCARD ALL (``cleared``), and a transaction that changed the catalog
    (``catalog_changed``). In transaction mode (not ``sticky``) a connection that lost its
    statements is fully reset when it goes back, so it and the proxy agree again. Serves
    the client's `Exchange` once it is relayed (`relay`)."""

    __slots__ = ("count", "exchange", "holder", "sticky")

    def __init__(self, count: GenerationCount, sticky: bool) -> None:
        self.count = count
        self.sticky = sticky
        self.exchange: Exchange | None = None
        self.holder: ConnectionHolder | None = None

    def relay(self, exchange: Exchange, holder: ConnectionHolder) -> None:
        """The client's messages are relayed from now on: ``exchange`` observes them and
        ``holder`` holds the server connection they go to."""
        self.exchange = exchange
        self.holder = holder
        exchange.forget = self.forget

    def prepared(self, server: str, query: str, rest: bytes) -> None:
        if self.exchange is not None:  # what an Execute of it runs, for the observation
            self.exchange.prepared(server, query, rest)

    def forget(self, server: str) -> None:
        """The server did not prepare ``server`` after all (its Parse failed or was skipped)."""
        conn = self.holder.conn if self.holder is not None else None
        if conn is not None:
            conn.prepared.pop(server, None)

    def generation(self) -> str:
        """What the server names of statements prepared now carry: the proxy's count of
        transactions that changed the catalog (`catalog_changed`), and the DROP/ALTER (or
        ROLLBACK after DDL) of the one held now."""
        exchange = self.exchange
        return f"{self.count.catalog_generation}.{exchange.ddl_count if exchange else 0}"

    def cleared(self, conn: Any, exchange: Exchange) -> None:
        """The client sends DEALLOCATE ALL or DISCARD ALL to ``conn``: every statement there
        goes, the shared ones too, so what follows prepares again. (Should it fail, the
        server keeps them: the full reset on release makes both sides agree again.)"""
        conn.prepared.clear()
        if not self.sticky:
            exchange.dirty = exchange.full_reset = True

    def catalog_changed(self, exchange: Exchange) -> None:
        """The transaction that ends dropped or altered something, or rolled back or failed
        after DDL: statements prepared before, anywhere, may name what is gone now, so later
        Parses get new server names; the connection that ran it drops its statements on
        release (a full reset). (A committed CREATE alone changes nothing prepared, so a
        temporary table per transaction keeps statements shared.)"""
        self.count.catalog_generation += 1
        exchange.ddl_count = 0
        if not self.sticky:
            exchange.dirty = exchange.full_reset = True
