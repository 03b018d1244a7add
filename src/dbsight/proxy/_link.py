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
own; a pooled server connection, which changes hands often, is relayed through the link's
method instead.

Flow control in relay mode couples the two sockets: when the peer cannot keep up (its
transport's write buffer is over the high-water mark) this side stops reading until it can.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

READ_LIMIT = 2**20

DataHandler = Callable[[bytes], None]
LostHandler = Callable[[BaseException | None], None]


class StreamLink(asyncio.StreamReaderProtocol):
    """See the module docstring."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client_connected_cb: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]
        | None = None,
    ) -> None:
        self.reader = asyncio.StreamReader(limit=READ_LIMIT, loop=loop)
        super().__init__(self.reader, client_connected_cb, loop=loop)
        self._on_data: DataHandler | None = None
        self._on_lost: LostHandler | None = None
        self._paired: asyncio.Transport | None = None  # paused while our writes back up
        self.lost = False

    # -- relay mode ----------------------------------------------------------------------
    def relay(
        self,
        on_data: DataHandler,
        on_lost: LostHandler,
        paired: asyncio.Transport | None = None,
        direct: bool = True,
    ) -> bytes:
        """From now on every chunk goes to ``on_data``; ``on_lost`` is called once when the
        connection ends (soon, when it has ended already). Returns the bytes the stream side
        had buffered and not read yet (the caller handles them first). ``paired`` is the
        transport to pause while this socket's own write buffer is full. ``direct``: the
        transport calls ``on_data`` itself (no call of the link's own per chunk, but one
        `set_protocol` here and in `unrelay`: for a socket relayed for long, not one that
        changes hands every transaction)."""
        reader: Any = self.reader  # its buffer is private; read but not consumed by anyone
        buffer = reader._buffer
        if buffer:
            buffered = bytes(buffer)
            buffer.clear()
        else:  # the usual case: a pooled connection taken for a transaction
            buffered = b""
        self._on_data = on_data
        self._paired = paired
        if direct:
            self._deliver_to(on_data)
        if self.lost:  # gone already (while in stream mode): said once the caller is ready
            asyncio.get_running_loop().call_soon(on_lost, reader.exception())
            return buffered
        self._on_lost = on_lost
        if reader._eof:  # the peer ended while in stream mode: close, on_lost follows
            self._stream_writer_transport().close()
            return buffered
        if reader._paused:  # on a full buffer
            reader._maybe_resume_transport()
        return buffered

    def _stream_writer_transport(self) -> asyncio.BaseTransport:
        transport: Any = self._transport  # type: ignore[attr-defined]  # StreamReaderProtocol's
        return transport  # type: ignore[no-any-return]

    def unrelay(self) -> None:
        """Back to stream mode: later bytes are buffered for the StreamReader again."""
        self._on_data = None
        self._on_lost = None
        self._paired = None
        if "data_received" in self.__dict__:  # (relayed `direct`)
            self._deliver_to(None)

    def _deliver_to(self, on_data: DataHandler | None) -> None:
        """The transport's chunks go to ``on_data`` directly (None: to `data_received`)."""
        if on_data is None:
            self.__dict__.pop("data_received", None)
        else:
            self.data_received = on_data  # type: ignore[method-assign]
        transport: Any = getattr(self, "_transport", None)  # StreamReaderProtocol's
        if transport is not None and not transport.is_closing():
            transport.set_protocol(self)  # (it reads data_received again)

    def pair(self, paired: asyncio.Transport | None) -> None:
        """The transport to pause while this socket's write buffer is full, from now on."""
        self._paired = paired

    @property
    def relaying(self) -> bool:
        return self._on_data is not None

    # -- asyncio.Protocol ----------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        # (while relaying, the transport calls the relay's callback instead: `_deliver_to`)
        handler = self._on_data
        if handler is None:
            super().data_received(data)
        else:
            handler(data)

    def eof_received(self) -> bool:
        if self._on_data is not None:
            super().eof_received()
            return False  # a relayed peer that stops sending is gone: close
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        super().connection_lost(exc)
        handler = self._on_lost
        self._on_lost = None
        if handler is not None:
            handler(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        paired = self._paired
        if paired is not None and not paired.is_closing():
            paired.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        paired = self._paired
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
