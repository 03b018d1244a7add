"""A socket of the proxy that is an asyncio stream until it starts relaying.

The parts of a session that wait for one answer at a time (startup, authentication, TLS
handshakes, a pool's login and reset queries) are written as coroutines on a
StreamReader/StreamWriter pair. The relay itself is not: a coroutine per direction costs a
task wake-up and a copy through the StreamReader's buffer per read, which on a 2-core
machine is most of what a proxy may spend on a statement. So a `StreamLink` is a
`StreamReaderProtocol` whose bytes go to the reader until `relay()` hands them to a callback,
called by the event loop with each chunk as it arrives, and back to the reader after
`unrelay()` (a pooled server connection between two clients).

While relaying a client's socket, the callback is the protocol's ``data_received`` itself
(an instance attribute, made known to the transport again: uvloop reads a protocol's
``data_received`` once, when it is set), so each chunk costs no Python call of the link's
own. A pooled server connection, which changes hands often, is read by a `Receiver` for
its whole life (`StreamLink.receive`): relaying hands the receiver the callback, stream
mode hands it the link's ``data_received``; neither calls the transport.

The relay mode's state and switches are the compiled base class's (`LinkRelay`): a pooled
server connection changes hands every transaction when clients outnumber connections.

Flow control in relay mode couples the two sockets: when the peer cannot keep up (its
transport's write buffer is over the high-water mark) this side stops reading until it can.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ._link_relay import DataHandler, LinkRelay
from ._receiver import Receiver

READ_LIMIT = 2**20


class StreamLink(LinkRelay, asyncio.StreamReaderProtocol):
    """See the module docstring; the relay mode (`relay`, `unrelay`, `pair`, and the chunks'
    ``data_received``) is the compiled base's, `LinkRelay`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client_connected_cb: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]
        | None = None,
    ) -> None:
        reader = asyncio.StreamReader(limit=READ_LIMIT, loop=loop)
        LinkRelay.__init__(self, reader)
        asyncio.StreamReaderProtocol.__init__(self, reader, client_connected_cb, loop=loop)

    def receive(self) -> bool:
        """Read the socket with a `Receiver` from now on, when it is a plain one (see
        `dbsight.proxy._receiver`): its chunks go to the relay's ``on_data`` while relaying
        and to the stream reader otherwise, each with no call of the transport's, and
        relaying, `direct` or not, hands the receiver its callback and nothing more. For a
        pooled server connection, which changes hands every transaction. The stream
        reader's flow control (a buffer over its limit) pauses the receiver; the receiver
        is stopped as the connection is lost. Whether it reads the socket now."""
        assert not self.direct and self.receiver is None
        feed = self.data_received
        receiver = Receiver(self._transport, feed)  # type: ignore[attr-defined]
        if not receiver.start():
            return False
        self.receiver = receiver
        self.stream_feed = feed
        reader: Any = self.reader
        reader._transport = receiver  # (its pause_reading and resume_reading, as a transport's)
        return True

    # -- relay mode: what `LinkRelay` asks of the stream side ------------------------------
    def _stream_writer_transport(self) -> asyncio.BaseTransport:
        transport: Any = self._transport  # type: ignore[attr-defined]  # StreamReaderProtocol's
        return transport  # type: ignore[no-any-return]

    def _deliver_to(self, on_data: DataHandler | None) -> None:
        """The transport's chunks go to ``on_data`` directly (None: to `data_received`)."""
        if on_data is None:
            self.__dict__.pop("data_received", None)
        else:
            self.data_received = on_data  # type: ignore[method-assign]
        transport: Any = getattr(self, "_transport", None)  # StreamReaderProtocol's
        if transport is not None and not transport.is_closing():
            transport.set_protocol(self)  # (it reads data_received again)

    # -- asyncio.Protocol ----------------------------------------------------------------
    def eof_received(self) -> bool:
        self.fed = True
        if self.on_data is not None:
            super().eof_received()
            return False  # a relayed peer that stops sending is gone: close
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        receiver = self.receiver
        if receiver is not None:  # (its duplicate of the socket closed: the socket closes)
            receiver.stop()
        super().connection_lost(exc)
        handler = self.on_lost
        self.on_lost = None
        if handler is not None:
            handler(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        paired = self.paired
        if paired is not None and not paired.is_closing():
            paired.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        paired = self.paired
        if paired is not None and not paired.is_closing():
            paired.resume_reading()


async def open_link(
    host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, StreamLink]:
    """``asyncio.open_connection`` with a `StreamLink` as the protocol; a host starting with
    ``/`` is a Unix-socket directory (``.s.PGSQL.<port>`` in it, as libpq does)."""
    loop = asyncio.get_running_loop()
    link = StreamLink(loop)
    if host.startswith("/"):
        transport, _ = await loop.create_unix_connection(
            lambda: link, f"{host.rstrip('/')}/.s.PGSQL.{port}"
        )
    else:
        transport, _ = await loop.create_connection(lambda: link, host, port)
    writer = asyncio.StreamWriter(transport, link, link.reader, loop)
    return link.reader, writer, link


def link_of(writer: asyncio.StreamWriter) -> StreamLink:
    """The `StreamLink` under a stream writer made by `open_link` or a `StreamLink` server."""
    protocol = writer.transport.get_protocol()
    if isinstance(protocol, StreamLink):
        return protocol
    # start_tls puts an SSL protocol between the transport and ours
    app = getattr(protocol, "_app_protocol", None)
    if isinstance(app, StreamLink):
        return app
    raise TypeError(f"not a StreamLink connection: {type(protocol).__name__}")
