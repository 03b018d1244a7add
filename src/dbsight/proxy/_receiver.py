"""`Receiver`: a relayed socket read by the relay itself, not through its transport; and
`Poller`, the one descriptor through which the event loop tells the receivers of its
sockets that they have something.

uvloop hands a transport's chunk to its protocol through libuv's stream: a buffer asked for
and the chunk delivered, each a callback that takes the GIL and gives it back, and the chunk
made into bytes — about 1,300 instructions per read, two reads per relayed statement. A
descriptor watched with the loop's ``add_reader`` costs one such callback per wake-up, and
the receivers of a loop share one: their sockets are in one epoll of their own (`Poller`),
which the loop watches, and each wake-up reads every socket that has something, asked of
that epoll without waiting (`_hot.ready`, which gives back the receivers themselves), each
with one ``recv`` (`_hot.recv`) — one callback from the loop for as many sockets as are
ready.

While receiving, the transport is paused and the poller holds a duplicate of the socket's
descriptor (the transport keeps its own). Whatever is not a chunk — the end of the stream,
an error — stops the receiving and resumes the transport, which reads it again and ends the
connection as it always has (``eof_received``, ``connection_lost``). Flow control:
`Receiver.pause_reading`, `resume_reading` and `is_closing`, as a transport's, so that the
peer's link may pause the receiver (its ``paired``). `Receiver.stop` closes the duplicate —
until then the socket stays open whatever its transport does — and is called as the session
ends. Only for a transport of a plain socket (`socket_fd`): not through TLS, nor on another
event loop's transports.

Cython compiles this module with the types of its ``.pxd`` (see `dbsight._compiled`): a
ready socket's receiver is then called in C; this source is the fallback.
"""

from __future__ import annotations

import asyncio
import os
import select
from typing import Any

from .. import _hot
from ._link_relay import DataHandler, socket_fd


class Poller:
    """The receivers of one event loop: their sockets in one epoll, the loop watching it."""

    __slots__ = ("loop", "epoll", "fd", "receivers")

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.epoll = select.epoll()
        self.fd = self.epoll.fileno()
        self.receivers: dict[int, Receiver] = {}  # (what keeps each alive while watched)
        loop.add_reader(self.fd, self.readable)

    def add(self, receiver: Receiver) -> None:
        _hot.watch(self.epoll, self.fd, receiver.fd, receiver)
        self.receivers[receiver.fd] = receiver

    def remove(self, fd: int) -> None:
        """``fd`` watched no more; the poller closes with its last receiver."""
        self.epoll.unregister(fd)
        del self.receivers[fd]
        if not self.receivers:
            self.loop.remove_reader(self.fd)
            self.epoll.close()
            if _POLLERS.get(self.loop) is self:
                del _POLLERS[self.loop]

    def readable(self) -> None:
        """The loop's call: each ready socket's receiver reads it."""
        for receiver in _hot.ready(self.epoll, self.fd, self.receivers):
            if receiver._poller is self:  # (else stopped or paused by one before it, this time)
                receiver.readable()


_POLLERS: dict[Any, Poller] = {}  # per event loop, while it has receivers


def _poller_of(loop: Any) -> Poller:
    poller = _POLLERS.get(loop)
    if poller is None:
        poller = _POLLERS[loop] = Poller(loop)
    return poller


class Receiver:
    """One relayed socket read by the relay (see the module docstring)."""

    __slots__ = ("transport", "on_data", "fd", "paused", "_loop", "_poller")

    def __init__(self, transport: Any, on_data: DataHandler) -> None:
        self.transport = transport
        self.on_data = on_data
        self.fd = -1  # the duplicate, while receiving
        self.paused = False
        self._loop: Any = None
        self._poller: Poller | None = None  # watching it, while not paused

    def start(self) -> bool:
        """Receive from now on, when the transport is one of a plain socket and still open;
        whether it does."""
        transport = self.transport
        fd = socket_fd(transport)
        if fd < 0 or self.fd >= 0 or transport.is_closing():
            return False
        try:
            self.fd = os.dup(fd)
        except OSError:  # (out of descriptors: the transport goes on reading)
            return False
        self._loop = asyncio.get_running_loop()
        transport.pause_reading()
        self._watch()
        return True

    def readable(self) -> None:
        """The socket has something: a chunk for ``on_data``, or what ends the receiving."""
        data = _hot.recv(self.fd)
        if data:
            try:
                self.on_data(data)
            except Exception as exc:  # noqa: BLE001 - as uvloop ends a protocol that raises
                self._failed(exc)
            return
        if data is None:  # (woken for nothing)
            return
        self.stop()
        self.transport.resume_reading()  # it reads the end or the error itself

    def stop(self) -> None:
        """Receive no more and close the duplicate (the transport stays paused: ending)."""
        fd = self.fd
        if fd < 0:
            return
        self._unwatch()
        self.fd = -1
        os.close(fd)

    def pause_reading(self) -> None:
        if self.fd >= 0 and not self.paused:
            self.paused = True
            self._unwatch()

    def resume_reading(self) -> None:
        if self.fd >= 0 and self.paused:
            self.paused = False
            self._watch()

    def is_closing(self) -> bool:
        return bool(self.transport.is_closing())

    def _watch(self) -> None:
        poller = _poller_of(self._loop)
        poller.add(self)
        self._poller = poller

    def _unwatch(self) -> None:
        poller = self._poller
        if poller is not None:
            self._poller = None
            poller.remove(self.fd)

    def _failed(self, exc: Exception) -> None:
        transport = self.transport
        self._loop.call_exception_handler({
            "message": "dbsight proxy: a relayed chunk's handler failed; the connection ends",
            "exception": exc,
            "transport": transport,
        })  # fmt: skip
        self.stop()
        transport.abort()
