"""Units of work in a client's byte stream, walked once.

A unit is one Query, or the extended-protocol messages up to a Sync. Whatever judges a unit
before it runs — the router (may it go to a replica?), the result cache (is it one cacheable
statement?), the bare-prepare answer (only named Parses?), a replica's barrier (where does
it end?) — reads the same `UnitMessages`, made by `unit_messages` in one pass over the
frames, so the framing rules live here alone. No sockets: bytes in, offsets out.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

PARSE, BIND, DESCRIBE, CLOSE, SYNC, FLUSH, QUERY, EXECUTE = (ord(c) for c in "PBDCSHQE")
FUNCTION_CALL = ord("F")

_unpack_int32 = struct.Struct(">i").unpack_from

Message = tuple[int, int, int]  # type, start of the message (its type byte), end


@dataclass(frozen=True, slots=True)
class UnitMessages:
    """The whole messages of the unit at some offset: ``end`` is after the Query or Sync
    that ends it when ``complete``, else after the last whole message that has arrived."""

    messages: tuple[Message, ...]
    end: int
    complete: bool

    @property
    def last_type(self) -> int:
        return self.messages[-1][0] if self.messages else -1


def unit_messages(buf: bytes, start: int) -> UnitMessages:
    """The unit that starts at ``buf[start]`` (a message boundary)."""
    n = len(buf)
    i = start
    found: list[Message] = []
    while n - i >= 5:
        t = buf[i]
        length = _unpack_int32(buf, i + 1)[0]
        end = i + 1 + length
        if end > n or length < 4:  # (a malformed frame: the relay refuses it when it gets there)
            break
        found.append((t, i, end))
        i = end
        if t == QUERY or t == SYNC:
            return UnitMessages(tuple(found), end, True)
    return UnitMessages(tuple(found), i, False)


def unit_end(buf: bytes, start: int) -> int:
    """Where the unit at ``buf[start]`` ends: after its Query, or after the next Sync (or
    the last whole message when there is none yet)."""
    return unit_messages(buf, start).end


def cstring(buf: bytes, start: int, end: int) -> tuple[str, int]:
    """The NUL-terminated string at ``start`` and the position after its NUL."""
    nul = buf.find(b"\0", start, end)
    if nul < 0:
        raise ValueError("string without its terminating NUL")
    return buf[start:nul].decode("utf-8", "surrogateescape"), nul + 1


def parse_fields(buf: bytes, start: int, end: int) -> tuple[str, str, int]:
    """A Parse message's statement name, its text, and where the text starts (the Parse
    body from there on — text and parameter types — identifies what the server prepares)."""
    name, j = cstring(buf, start + 5, end)
    query, _ = cstring(buf, j, end)
    return name, query, j


def bind_statement(buf: bytes, start: int, end: int) -> str:
    """The statement a Bind message binds (its second field)."""
    _, j = cstring(buf, start + 5, end)
    return cstring(buf, j, end)[0]


def cacheable_unit(
    buf: bytes, start: int, statement_text: Callable[[str], str | None]
) -> tuple[str, int] | None:
    """The statement text of the unit at ``buf[start]`` and where the unit ends, when it
    may be answered from the cache: one Query, or complete extended-protocol messages up to
    a Sync with exactly one Execute (Parse, Bind, Describe allowed around it)."""
    if buf[start] == QUERY:
        end = start + 1 + _unpack_int32(buf, start + 1)[0]
        return buf[start + 5 : end - 1].decode("utf-8", "replace"), end
    unit = unit_messages(buf, start)
    if not unit.complete:
        return None
    parsed: dict[str, str] = {}  # statements parsed in this unit
    sql: str | None = None
    executes = 0
    for t, i, end in unit.messages[:-1]:
        if t == PARSE:
            name, query, _ = parse_fields(buf, i, end)
            parsed[name] = query
        elif t == BIND:
            name = bind_statement(buf, i, end)
            sql = parsed.get(name) or (statement_text(name) if name else None)
        elif t == EXECUTE:
            executes += 1
        elif t != DESCRIBE:
            return None
    return (sql, unit.end) if executes == 1 and sql else None


def bare_prepares(buf: bytes) -> list[tuple[str, str, bytes]] | None:
    """``buf`` as named Parse messages and a Sync that ends it, nothing else: each
    statement's (name, text, Parse body from the text on); None for anything else."""
    unit = unit_messages(buf, 0)
    if not unit.complete or unit.end != len(buf) or len(unit.messages) < 2:
        return None
    found: list[tuple[str, str, bytes]] = []
    for t, i, end in unit.messages[:-1]:
        if t != PARSE or not buf[i + 5]:
            return None  # anything else, or the unnamed statement
        name, query, j = parse_fields(buf, i, end)
        found.append((name, query, buf[j:end]))
    return found


def named_parses(buf: bytes, start: int, end: int) -> list[tuple[str, str, bytes]]:
    """The named Parse messages in ``buf[start:end]`` (whole messages): (name, text, Parse
    body from the text on) of each."""
    found = []
    i = start
    while i < end:
        stop = i + 1 + _unpack_int32(buf, i + 1)[0]
        if buf[i] == PARSE and buf[i + 5]:
            name, query, j = parse_fields(buf, i, stop)
            found.append((name, query, buf[j:stop]))
        i = stop
    return found
