"""`LinkRelay`: a `dbsight.proxy._link.StreamLink`'s relay mode — where its chunks go while
it relays (``on_data``), whom to tell when it ends (``on_lost``), the peer transport its
flow control pauses (``paired``) — and the calls that switch it: `relay`, `unrelay`, `pair`;
and `Sender`, how the relays write to a socket (`dbsight.proxy._receiver` reads one).

With more clients than server connections in transaction mode, a pooled server connection
changes hands every transaction: it is unrelayed from one client, relayed to the next, and
its client's link is paired with it and unpaired again. As Python methods of the link (an
`asyncio.StreamReaderProtocol`, which cannot be an extension type) those calls and the link's
``data_received`` were a tenth of such a transaction's instructions. This is the link's base
class, compiled (see `dbsight._compiled`; typed by the ``.pxd`` next to it): its fields are C
fields and its methods C calls for the compiled lease. Without the extension this same source
runs as Python.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .. import _hot

DataHandler = Callable[[bytes], None]
LostHandler = Callable[[BaseException | None], None]

_stream_data_received = asyncio.StreamReaderProtocol.data_received


class LinkRelay:
    """A link's relay mode (see the module docstring); the stream side is the subclass's."""

    __slots__ = (
        "reader", "on_data", "on_lost", "paired", "lost", "direct", "fed", "receiver",
        "stream_feed",
    )  # fmt: skip

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader  # the stream side's, until `relay`
        self.on_data: DataHandler | None = None
        self.on_lost: LostHandler | None = None
        self.paired: Any = None  # the transport paused while our writes back up
        self.lost = False
        self.direct = False  # the transport calls ``on_data`` itself (`relay`)
        # bytes or an EOF went to the stream side since the last `relay`: its reader's
        # buffer and state are looked at then, not on every hand-over of a pooled connection
        self.fed = True
        # the `dbsight.proxy._receiver.Receiver` reading the socket, when one does (a pooled
        # server connection's: `StreamLink.receive`): relaying hands it ``on_data``, stream
        # mode ``stream_feed`` (the link's ``data_received``), with no call of the transport
        self.receiver: Any = None
        self.stream_feed: DataHandler | None = None

    def relay(
        self,
        on_data: DataHandler,
        on_lost: LostHandler,
        paired: Any = None,
        direct: bool = True,
    ) -> bytes:
        """From now on every chunk goes to ``on_data``; ``on_lost`` is called once when the
        connection ends (soon, when it has ended already). Returns the bytes the stream side
        had buffered and not read yet (the caller handles them first). ``paired`` is the
        transport to pause while this socket's own write buffer is full. ``direct``: the
        transport calls ``on_data`` itself (no call of the link's own per chunk, but one
        `set_protocol` here and in `unrelay`: for a socket relayed for long, not one that
        changes hands every transaction); a socket its `receiver` reads is neither: the
        receiver is handed ``on_data``."""
        return self.start_relay(on_data, on_lost, paired, direct)

    def unrelay(self) -> None:
        """Back to stream mode: later bytes are buffered for the StreamReader again."""
        self.stop_relay()

    def pair(self, paired: Any) -> None:
        """The transport to pause while this socket's write buffer is full, from now on."""
        self.paired = paired

    # (`relay` and `unrelay` as the compiled lease calls them: C calls, with no look for a
    # Python override, which a link's class being a Python subclass would make every time)
    def start_relay(
        self, on_data: DataHandler, on_lost: LostHandler, paired: Any, direct: bool
    ) -> bytes:
        reader: Any = self.reader  # its buffer is private; read but not consumed by anyone
        fed = self.fed
        buffered = b""
        if fed:
            self.fed = False
            buffer = reader._buffer
            if buffer:
                buffered = bytes(buffer)
                buffer.clear()
        self.on_data = on_data
        self.paired = paired
        receiver = self.receiver
        if receiver is not None:
            receiver.on_data = on_data
            direct = False
        elif direct:
            self._deliver_to(on_data)
        elif self.direct:
            self._deliver_to(None)
        self.direct = direct
        if self.lost:  # gone already (while in stream mode): said once the caller is ready
            asyncio.get_running_loop().call_soon(on_lost, reader.exception())
            return buffered
        self.on_lost = on_lost
        if not fed:  # the usual case: a pooled connection taken for a transaction
            return buffered
        if reader._eof:  # the peer ended while in stream mode: close, on_lost follows
            self._stream_writer_transport().close()
            return buffered
        if reader._paused:  # on a full buffer
            reader._maybe_resume_transport()
        return buffered

    def stop_relay(self) -> None:
        self.on_data = None
        self.on_lost = None
        self.paired = None
        receiver = self.receiver
        if receiver is not None:
            receiver.on_data = self.stream_feed
        elif self.direct:
            self.direct = False
            self._deliver_to(None)

    @property
    def relaying(self) -> bool:
        return self.on_data is not None

    def data_received(self, data: bytes) -> None:
        # (while relaying `direct`, the transport calls the relay's callback instead)
        handler = self.on_data
        if handler is None:
            self.fed = True
            _stream_data_received(self, data)
        else:
            handler(data)

    # -- the subclass's ------------------------------------------------------------------
    def _deliver_to(self, on_data: DataHandler | None) -> None:
        raise NotImplementedError

    def _stream_writer_transport(self) -> Any:
        raise NotImplementedError


# uvloop's transports of a plain socket (TCP, Unix): what they write goes to the socket as it
# is (not through TLS), so a `Sender` may send it itself
_PLAIN_SOCKET_TRANSPORTS = frozenset(
    ("uvloop.loop.TCPTransport", "uvloop.loop.UnixTransport")
)


def socket_fd(transport: Any) -> int:
    """The socket under ``transport`` when what is written to the transport goes to it as it
    is (one of uvloop's plain socket transports); else -1."""
    kind = type(transport)
    if f"{kind.__module__}.{kind.__qualname__}" not in _PLAIN_SOCKET_TRANSPORTS:
        return -1
    sock = transport.get_extra_info("socket")
    try:
        return int(sock.fileno()) if sock is not None else -1
    except (OSError, ValueError):
        return -1


class Sender:
    """``transport.write`` for the relays, sent straight to the socket when it can be.

    uvloop's ``write`` sends at once when nothing waits in the transport's buffer, but gets
    there through its buffer's list and a few Python objects: about a thousand instructions
    per write, two writes per relayed statement. When the transport is one of a plain
    socket, holds nothing back (nothing buffered, in libuv's queue or its own) and is not
    closing (its socket is still this one), `write` is one ``send`` on the socket; what the
    socket does not take (its buffer full), or an error, goes to the transport's own
    ``write``, which buffers it, pauses the peer (flow control) or finds the error, as it
    always did. Bytes written to the transport directly (the session's replies) stay in
    order: nothing is sent past what the transport holds. The transport's two questions are
    asked through its bound methods, looked up once (a method looked up at each call costs
    about as much again as the call)."""

    __slots__ = ("transport", "fd", "_buffered", "_closing")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.fd = socket_fd(transport)
        self._buffered = transport.get_write_buffer_size if self.fd >= 0 else None
        self._closing = transport.is_closing if self.fd >= 0 else None

    def is_closing(self) -> bool:
        """The transport's ``is_closing()``, through its bound method when it is one of a
        plain socket (no method looked up)."""
        closing = self._closing
        return bool(closing() if closing is not None else self.transport.is_closing())

    def write(self, data: bytes) -> None:
        if self.fd >= 0 and not self._buffered() and not self._closing():
            sent = _hot.send(self.fd, data)
            if sent == len(data):
                return
            if sent > 0:
                data = data[sent:]
        self.transport.write(data)
