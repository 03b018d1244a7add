"""`ChannelListener`: LISTEN through transaction pooling.

In transaction mode a client's server connection is its own only for a transaction, so a
LISTEN run there would listen on a connection the next client gets (and the reset undoes it).
Instead, the proxy keeps one more server connection per database and user, which LISTENs to
every channel some client of that pair listens to; its notifications go to those clients
(`Subscriber.notify`), each as soon as it is between transactions, in the order the server
sent them, with the sender's pid and payload. The connection is opened at the first LISTEN
and LISTENs to a channel while at least one client does: UNLISTEN (or the last client's
disconnect) UNLISTENs it there too.

If the connection breaks (the server restarts, an administrator terminates it), it is opened
again with growing pauses and LISTENs to every channel again; notifications sent in between
are lost, as they are for a client whose own connection breaks — but here the clients keep
their sessions, so the loss is logged as a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from . import protocol as p
from ._backend import BackendConnection, BackendSpec
from ._backend_errors import BackendError, BackendQueryError, BackendUnavailable
from ._listen_statements import ListenOp, quote_channel

logger = logging.getLogger("dbsight.proxy")

_RECONNECT_PAUSES_S = (0.1, 0.5, 1.0, 2.0, 5.0)
LISTEN_APPLICATION_NAME = "dbsight-proxy-listen"  # (tells it apart in pg_stat_activity)


class Subscriber(Protocol):
    """A client session that listens to channels."""

    def notify(self, message: bytes) -> None:
        """One NotificationResponse, encoded, for the client."""


class ChannelListener:
    """The LISTEN connection of one database and user (see the module docstring)."""

    def __init__(self, spec: BackendSpec, name: str) -> None:
        self.spec = spec
        self.name = name
        self._channels: dict[str, dict[Subscriber, None]] = {}  # in subscription order
        self._conn: BackendConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one command at a time on the connection
        self._answer: asyncio.Future[p.ErrorResponse | None] | None = None
        self._closed = False
        self.delivered = 0  # notifications handed to clients

    @property
    def channels(self) -> dict[str, int]:
        """Each channel listened to, with how many clients listen to it."""
        return {channel: len(subscribers) for channel, subscribers in self._channels.items()}

    def listening(self, subscriber: Subscriber) -> bool:
        """Whether ``subscriber`` listens to a channel here."""
        return any(subscriber in subscribers for subscribers in self._channels.values())

    async def apply(self, subscriber: Subscriber, ops: Sequence[ListenOp]) -> None:
        """The client's LISTENs and UNLISTENs, in order, as its transaction committed them.
        Raises `BackendError` when the LISTEN connection cannot be had or refuses one."""
        async with self._lock:
            for op in ops:
                if op.listen:
                    assert op.channel is not None
                    subscribers = self._channels.get(op.channel)
                    if subscribers is None:
                        subscribers = self._channels[op.channel] = {}
                        try:
                            await self._command(f"LISTEN {quote_channel(op.channel)}")
                        except BackendQueryError:  # the server refuses it: nothing to keep
                            del self._channels[op.channel]
                            raise
                        except BackendUnavailable as exc:  # listened to again when it is back
                            subscribers[subscriber] = None
                            self._broken(exc)
                            continue
                    subscribers[subscriber] = None
                elif op.channel is None:
                    for channel in list(self._channels):
                        await self._leave(subscriber, channel)
                else:
                    await self._leave(subscriber, op.channel)

    async def sync(self) -> None:
        """One round trip on the LISTEN connection: what the server had for it by then has
        been dispatched when this returns (never raises)."""
        with contextlib.suppress(BackendError):
            async with self._lock:
                if self._conn is not None and self._conn.usable:
                    await self._send(self._conn, "SELECT 1")

    async def drop(self, subscriber: Subscriber) -> None:
        """The client is gone: it listens to nothing any more (never raises)."""
        if not self.listening(subscriber):
            return
        with contextlib.suppress(BackendError):
            await self.apply(subscriber, (ListenOp(False, None),))
        for subscribers in self._channels.values():  # (when the UNLISTEN could not be sent)
            subscribers.pop(subscriber, None)

    async def close(self) -> None:
        self._closed = True
        for task in (self._reconnecting, self._reader):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    # -- the connection ----------------------------------------------------------------
    async def _leave(self, subscriber: Subscriber, channel: str) -> None:
        subscribers = self._channels.get(channel)
        if subscribers is None or subscriber not in subscribers:
            return
        del subscribers[subscriber]
        if not subscribers:
            del self._channels[channel]
            if self._conn is not None:
                await self._command(f"UNLISTEN {quote_channel(channel)}")

    async def _command(self, sql: str) -> None:
        """Run ``sql`` on the connection (opened first if need be); the reader task takes
        its answer. Raises `BackendQueryError` with the server's error."""
        conn = await self._connection()
        await self._send(conn, sql)

    async def _send(self, conn: BackendConnection, sql: str) -> None:
        answer = self._answer = asyncio.get_running_loop().create_future()
        await conn.send_query(sql)
        try:
            async with asyncio.timeout(self.spec.connect_timeout_s):
                error = await answer
        except TimeoutError:
            conn.broken = True
            await conn.close()
            raise BackendUnavailable(
                f"dbsight proxy: the LISTEN connection of {self.name} did not answer {sql!r}"
                f" within {self.spec.connect_timeout_s:g} s"
            ) from None
        if error is not None:
            raise BackendQueryError(error)

    async def _connection(self) -> BackendConnection:
        conn = self._conn
        if conn is not None and conn.usable:
            return conn
        conn = await BackendConnection.connect(self.spec)
        self._conn = conn
        self._reader = asyncio.get_running_loop().create_task(
            self._read(conn), name=f"dbsight-listen-{self.name}"
        )
        for channel in list(self._channels):  # after a reconnect: listening again
            await self._send(conn, f"LISTEN {quote_channel(channel)}")
        return conn

    async def _read(self, conn: BackendConnection) -> None:
        error: p.ErrorResponse | None = None
        try:
            while True:
                message = await conn.receive()
                if isinstance(message, p.NotificationResponse):
                    self._dispatch(message)
                elif isinstance(message, p.ErrorResponse):
                    error = error or message
                elif isinstance(message, p.ReadyForQuery):
                    answer, self._answer = self._answer, None
                    if answer is not None and not answer.done():
                        answer.set_result(error)
                    error = None
        except BackendError as exc:
            self._lost(conn, exc)

    def _dispatch(self, message: p.NotificationResponse) -> None:
        subscribers = self._channels.get(message.channel)
        if not subscribers:
            return
        data = p.encode(message)
        for subscriber in list(subscribers):
            try:
                subscriber.notify(data)
            except Exception:  # one client's failure is not the others'
                logger.exception("dbsight proxy: delivering a notification failed")
            else:
                self.delivered += 1

    def _lost(self, conn: BackendConnection, exc: BackendError) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)
        if self._conn is conn:
            self._conn = None
        self._broken(exc)

    def _broken(self, exc: BackendError) -> None:
        """The connection broke or could not be had: open it again, and LISTEN again, in
        the background (notifications meanwhile are lost)."""
        if self._closed or not self._channels:
            return
        if self._reconnecting is None or self._reconnecting.done():
            logger.warning(
                "dbsight proxy: the LISTEN connection of %s broke (%s): notifications to %s "
                "are lost until it is back", self.name, exc.message,
                ", ".join(sorted(self._channels)),
            )  # fmt: skip
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        for attempt in range(1_000_000):
            await asyncio.sleep(_RECONNECT_PAUSES_S[min(attempt, len(_RECONNECT_PAUSES_S) - 1)])
            if self._closed or not self._channels:
                return
            try:
                async with self._lock:
                    await self._connection()
            except BackendError as exc:
                logger.debug("dbsight proxy: LISTEN connection of %s: %s", self.name, exc)
                continue
            logger.warning("dbsight proxy: the LISTEN connection of %s is back", self.name)
            return


def after_overlap(first: Sequence[bytes], then: Sequence[bytes]) -> list[bytes]:
    """``then`` without the notifications it shares with the end of ``first``: while a
    client's LISTEN moves from its transaction's connection to the LISTEN connection, both
    receive what is sent in between; ``first`` (the old connection's) goes to the client
    whole, then what the new one received after it."""
    for k in range(min(len(first), len(then)), 0, -1):
        if list(first[len(first) - k :]) == list(then[:k]):
            return list(then[k:])
    return list(then)
