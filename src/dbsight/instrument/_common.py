"""What every client integration shares: the recorder, the re-entrancy flag, sqlcommenter,
row counts from status tags, per-connection state and multi-call ("cursor") events."""

from __future__ import annotations

import asyncio.coroutines
import inspect
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from .._runtime import get_runtime, recorder
from ..core._context import _recording
from ..core._sqlcomment import add_comment

__all__ = [
    "ConnectionStates",
    "mark_coroutine_function",
    "RowsAccumulator",
    "_recording",
    "commented",
    "get_runtime",
    "recorder",
    "status_rows",
    "tag_rows",
    "TAG_COUNTS",
]

_perf_counter = time.perf_counter
_F = TypeVar("_F", bound=Callable[..., Any])


def mark_coroutine_function(func: _F) -> _F:
    """Mark a plain function that returns a coroutine as a coroutine function.

    Wrappers of async driver methods are plain functions that hand back the driver's own
    coroutine when recording is off (one call instead of a second coroutine frame), and an
    instrumenting coroutine otherwise; introspection should still see a coroutine function.
    """
    mark = getattr(inspect, "markcoroutinefunction", None)  # Python 3.12+
    if mark is not None:
        return mark(func)  # type: ignore[no-any-return]
    func._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
    return func


def commented(sql: str, ctx: Any, escape_percent: bool = False) -> str:
    """``sql`` as it should be sent: with the sqlcommenter comment when that is enabled."""
    mode = recorder.sqlcommenter
    if mode == "off":
        return sql
    return add_comment(sql, ctx, mode, escape_percent=escape_percent)


def status_rows(status: object) -> int | None:
    """Rows from a PostgreSQL command tag (text or bytes): 'UPDATE 3' -> 3, 'INSERT 0 1' -> 1,
    'BEGIN' -> None, None (no tag: a portal suspended at its row limit) -> None."""
    if isinstance(status, str):
        tail = status.rpartition(" ")[2]
    elif isinstance(status, bytes):
        tail = status.rpartition(b" ")[2].decode("ascii", "replace")
    else:
        return None
    return int(tail) if tail.isdigit() else None


# Command tags seen with a count -> that count (b"SELECT 1" -> 1): ``TAG_COUNTS.get(tag)``
# answers for a tag seen before in one C call (`tag_rows` fills it, bounded).
TAG_COUNTS: dict[object, int] = {}
_MAX_TAG_COUNTS = 1024


def tag_rows(status: object, returned: int) -> int | None:
    """``statement_rows(status_rows(status), returned)`` in one call (a recorded fetch's
    rows): the command tag's count, else the rows returned, else None."""
    if isinstance(status, bytes):
        tail = status.rpartition(b" ")[2]
        if tail.isdigit():
            count = int(tail)
            _remember(status, count)
            return count
    elif isinstance(status, str):
        tail_text = status.rpartition(" ")[2]
        if tail_text.isdigit():
            count = int(tail_text)
            _remember(status, count)
            return count
    return returned if returned else None


def _remember(status: object, count: int) -> None:
    if len(TAG_COUNTS) >= _MAX_TAG_COUNTS:
        TAG_COUNTS.clear()  # many distinct counts (UPDATE 1 ... UPDATE 5000): start over
    TAG_COUNTS[status] = count


class ConnState:
    """What an instrumented connection's statements carry: its database, user, the explainer
    for its slow SELECTs, and the handle that instrumented it."""

    __slots__ = ("database", "explainer", "owner", "user")

    # (what the recorder's lean path reads of a statement's state; a client's own)
    application_name: str | None = None
    client_addr: str | None = None

    def __init__(self, database: str | None, user: str | None, explainer: Any, owner: Any) -> None:
        self.database = database
        self.user = user
        self.explainer = explainer
        self.owner = owner


class ConnectionStates:
    """Per-connection data an instrumented class needs (explainer, database name ...).

    Client connections with ``__slots__`` cannot carry extra attributes, so the data lives
    here, keyed by ``id(connection)``; a weakref finalizer drops the entry with the
    connection, so an id is never reused while its entry is live.
    """

    __slots__ = ("_states", "_finalizers", "by_id")

    def __init__(self) -> None:
        self._states: dict[int, Any] = {}
        self._finalizers: dict[int, weakref.finalize] = {}
        # ``by_id(id(conn))``: the hot-path lookup, one C call.
        self.by_id = self._states.get

    def get(self, conn: object) -> Any:
        return self._states.get(id(conn))

    def add(self, conn: object, state: Any) -> None:
        key = id(conn)
        old = self._finalizers.pop(key, None)
        if old is not None:
            old.detach()
        self._states[key] = state
        self._finalizers[key] = weakref.finalize(conn, self._drop, key)

    def remove(self, conn: object) -> Any:
        key = id(conn)
        finalizer = self._finalizers.pop(key, None)
        if finalizer is not None:
            finalizer.detach()
        return self._states.pop(key, None)

    def _drop(self, key: int) -> None:
        self._states.pop(key, None)
        self._finalizers.pop(key, None)


class RowsAccumulator:
    """One event for a statement whose rows arrive over several driver calls.

    Cursor iteration and streaming fetch rows in batches; recording each batch (or worse,
    each row) as a query would multiply the statement's count. Instead the time spent inside
    the driver is summed and the rows counted, and a single event is recorded when the rows
    are exhausted, the cursor closed or abandoned, or a call fails. The event's duration is
    the time spent waiting on the database, not the time the application spent between rows.
    """

    __slots__ = ("ctx", "busy", "rows", "open")

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.busy = 0.0
        self.rows = 0
        self.open = True

    def add(self, started: float, rows: int) -> None:
        self.busy += _perf_counter() - started
        self.rows += rows

    def finish(self) -> None:
        if self.open:
            self.open = False
            ctx = self.ctx
            ctx.started = _perf_counter() - self.busy
            recorder.finish(ctx, self.rows)

    def fail(self, started: float, exc: BaseException) -> None:
        if self.open:
            self.open = False
            self.busy += _perf_counter() - started
            ctx = self.ctx
            ctx.started = _perf_counter() - self.busy
            recorder.fail(ctx, exc)
