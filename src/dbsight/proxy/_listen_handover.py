"""`ListenHandover`: one pooled client's side of LISTEN through transaction pooling.

A transaction that committed LISTEN or UNLISTEN (`committed_listens`) hands them to the
LISTEN connection of the client's database and user (`_listener.ChannelListener`) before its
server connection goes back to the pool (`hand_over`): what that connection received until
it stopped listening reaches the client first, then what the LISTEN connection received
meanwhile, without what both received. From then on the LISTEN connection's notifications
for the client (`notify`) wait until the client is between transactions, and go out
together, as a server sends a transaction's notifications. No sockets of its own: the
session gives it the client's transport and says when the client holds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from . import protocol as p
from ._backend import BackendConnection
from ._backend_errors import BackendError
from ._exchange import Exchange
from ._listen_statements import ListenOp
from ._listener import ChannelListener, after_overlap

logger = logging.getLogger("dbsight.proxy")


def listen_failed(reason: str) -> bytes:
    """A WARNING NoticeResponse: a LISTEN the server took cannot deliver its notifications."""
    return p.encode(p.NoticeResponse({
        "S": "WARNING", "V": "WARNING", "C": "01000",
        "M": f"dbsight proxy: notifications of this LISTEN cannot be delivered: {reason}",
    }))  # fmt: skip


def committed_listens(exchange: Exchange) -> list[ListenOp] | None:
    """The LISTENs and UNLISTENs the transaction that ended on ``exchange`` committed, in
    order (empty or None: none to hand over)."""
    if exchange.listens:
        return exchange.committed_listens()
    exchange.rolled_back = False  # (what committed_listens would forget)
    return None


class ListenHandover:
    """See the module docstring. ``listener_for`` gives the LISTEN connection of the
    client's database and user; ``holds_nothing`` says the client holds no server connection
    and waits for none (its notifications may go out)."""

    def __init__(
        self, listener_for: Callable[[], ChannelListener], holds_nothing: Callable[[], bool],
        client_addr: str | None,
    ) -> None:
        self._listener_for = listener_for
        self._holds_nothing = holds_nothing
        self._client_addr = client_addr
        self.listener: ChannelListener | None = None  # the one this client listens through
        self._transport: Any = None  # the client's, once it is relayed
        # waiting for the client's transaction to end; the same list for the session's life
        # (`PlainRelay` looks at it after every transaction)
        self.notifications: list[bytes] = []
        self._flush_pending = False  # notifications go out at the loop's next turn
        self._moving: list[bytes] | None = None  # received while a LISTEN moves over

    def relay_to(self, client_transport: Any) -> None:
        self._transport = client_transport

    def notify(self, message: bytes) -> None:
        """A notification for this client (from its `ChannelListener`): sent as soon as the
        listener has passed on what one read brought (together, as a server sends a
        transaction's notifications) when the client is between transactions, else when its
        transaction ends."""
        if self._moving is not None:
            self._moving.append(message)
            return
        self.notifications.append(message)
        if not self._flush_pending and self.between_transactions():
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush)

    def between_transactions(self) -> bool:
        return self._moving is None and self._transport is not None and self._holds_nothing()

    def _flush(self) -> None:
        self._flush_pending = False
        if self.notifications and self.between_transactions():
            self.deliver()

    def deliver(self) -> None:
        """The client is between transactions: the notifications that waited go out."""
        if not self.notifications:
            return
        waiting = b"".join(self.notifications)
        self.notifications.clear()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(waiting)

    async def hand_over(
        self, conn: BackendConnection, exchange: Exchange, listens: list[ListenOp],
        give_back: Callable[[], None],
    ) -> None:
        """The client's transaction on ``conn`` committed ``listens``: the LISTEN connection
        takes them over, then ``give_back`` returns ``conn`` to its pool (see the module
        docstring)."""
        listener = self.listener = self._listener_for()
        old: list[bytes] = []
        self._moving = []
        try:
            try:
                await listener.apply(self, listens)
            except BackendError as exc:
                logger.warning(
                    "dbsight proxy: client %s: LISTEN through transaction pooling failed, its "
                    "notifications will not arrive: %s", self._client_addr, exc.message,
                )
                self._transport.write(listen_failed(exc.message))
            conn.settle(exchange.status, True)
            with contextlib.suppress(BackendError):  # (then the reset closes it)
                await conn.execute("UNLISTEN *", lambda message: old.append(p.encode(message)))
            # what the LISTEN connection has of what the old one received comes in by now
            await listener.sync()
        finally:
            moved, self._moving = self._moving, None
            give_back()
        self.notifications[:0] = old + after_overlap(old, moved)
        self.deliver()

    async def drop(self) -> None:
        """The client is gone: it listens to nothing any more."""
        if self.listener is not None:
            await self.listener.drop(self)
