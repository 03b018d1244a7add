"""The relay's usual case: a server's whole answer to what it was asked, read in one pass.

Most of what a server sends a client is one whole answer in a single read: a Query's
RowDescription, DataRows, CommandComplete and ReadyForQuery; or, for a Bind, Describe,
Execute and Sync (a Parse first, for an unnamed statement), BindComplete, RowDescription or
NoData, DataRows, CommandComplete and ReadyForQuery. `plain_answer` frames such an answer,
matches it against the requests it answers (an `Exchange`'s ``pending`` queue, which it must
empty) and says what `Exchange.answers` needs of it: the statement's event, its DataRows and
its command tag. Anything else — a message split across reads, an error, a notice, a
ParameterStatus, several statements, a portal suspended, an injected Parse, requests still
unanswered after it — gives None, and `Exchange.answers` reads message by message.

The request kinds of ``pending`` are defined here, for the `Exchange` and this module.

Compiled (`dbsight._compiled`) with the C types of ``_plain_answer.pxd``, it reads the bytes
in C; as Python it gives the same answers (the tests run both).
"""

from __future__ import annotations

from collections import deque
from typing import Any

# what the client asked, in `Exchange.pending`: (kind, payload)
QUERY, PARSE, BIND, DESCRIBE, CLOSE, SYNC, EXECUTE, FUNCTION, SWALLOW, REPLY, SWALLOW_QUERY = (
    range(11)
)
# the same, C integers when compiled (the names above stay Python's, for the importers): a
# kind compared with them makes no object
_QUERY, _PARSE, _BIND, _DESCRIBE, _SYNC, _EXECUTE = QUERY, PARSE, BIND, DESCRIBE, SYNC, EXECUTE


def _length(buf: bytes, i: int) -> int:
    """The length field (big-endian int32) at ``buf[i:i + 4]``."""
    return (buf[i] << 24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]


def plain_answer(buf: bytes, pending: deque[tuple[int, Any]]) -> tuple[Any, int, int, int] | None:
    """(the statement's event, its DataRows, start, end of its command tag) when ``buf`` is
    whole messages that answer exactly the requests in ``pending`` with one CommandComplete
    and a last ReadyForQuery, holding nothing but ParseComplete, BindComplete,
    RowDescription, NoData, DataRow, CommandComplete and ReadyForQuery; else None. The tag is
    ``buf[start:end]`` (no NUL). Reads only: ``pending`` is left as it is."""
    n = len(buf)
    count = len(pending)
    if n < 6 or buf[n - 6] != 90 or count == 0:  # the last message is no ReadyForQuery ('Z')
        return None
    i = 0
    k = 0  # the request the next message answers
    rows = 0
    tag = -1
    tag_end = -1
    ctx: Any = None
    at = -1  # the request whose entry ``entry`` is (a Query's answers all look at one)
    entry: tuple[int, Any] = (0, None)
    kind = 0
    while i < n:
        if n - i < 5 or k >= count:
            return None
        t = buf[i]
        length = _length(buf, i + 1)
        if length < 4:
            return None
        e = i + 1 + length
        if e > n:
            return None
        if t == 68:  # DataRow
            rows += 1
            i = e
            continue
        if k != at:
            entry = pending[k]
            kind = entry[0]
            at = k
        if t == 67:  # CommandComplete: of the Execute, or the Query (which ends at 'Z')
            if tag >= 0:
                return None  # a second statement
            tag = i + 5
            tag_end = e - 1
            ctx = entry[1]
            if kind == _EXECUTE:
                k += 1
            elif kind != _QUERY:
                return None
        elif t == 90:  # ReadyForQuery: the last message, the Sync's or the Query's end
            if e != n or (kind != _SYNC and kind != _QUERY):
                return None
            k += 1
        elif t == 84:  # RowDescription: of the Describe, or of the Query's results
            if kind == _DESCRIBE:
                k += 1
            elif kind != _QUERY:
                return None
        elif (t == 50 and kind == _BIND) or (t == 49 and kind == _PARSE) or (
            t == 110 and kind == _DESCRIBE
        ):  # BindComplete, ParseComplete, NoData
            k += 1
        else:
            return None
        i = e
    if k != count or tag < 0:
        return None
    return ctx, rows, tag, tag_end
