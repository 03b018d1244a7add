"""`Sender`: the relays' writes, sent straight to the socket while the transport holds nothing
back, and through the transport (its buffer, its flow control) once it does — on a real
loopback TCP connection under uvloop, with a peer that does not read for a while."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

import uvloop

from dbsight.proxy._link_relay import Sender, socket_fd

CHUNK = 32 * 1024
CHUNKS = 600  # ~19 MB: more than loopback's socket buffers take while the peer sleeps


def _chunk(i: int) -> bytes:
    return struct.pack(">I", i) + bytes([i % 251]) * (CHUNK - 4)


async def _connected() -> tuple[asyncio.Transport, socket.socket]:
    """A uvloop transport on one end of a loopback TCP connection; the other end's socket."""
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, accepted)
    return transport, peer  # type: ignore[return-value]


async def _drain_and_close(
    transport: asyncio.Transport, peer: socket.socket, reader: threading.Thread
) -> None:
    """Until the transport has written all it holds; then both ends closed, the reader done."""
    while transport.get_write_buffer_size():
        await asyncio.sleep(0.01)
    transport.close()
    await asyncio.sleep(0)
    reader.join(30)
    peer.close()


def _read_all(peer: socket.socket, into: bytearray, wait_s: float) -> None:
    time.sleep(wait_s)  # the socket's buffers fill meanwhile
    while chunk := peer.recv(1 << 16):
        into.extend(chunk)


def test_writes_arrive_whole_and_in_order_through_a_full_socket_and_the_transport() -> None:
    """Chunks through the sender, every seventh straight through the transport (as the
    session's own replies are): while the peer sleeps the socket fills, the rest waits in the
    transport's buffer, later sends wait behind it; the peer gets every byte, in order."""

    async def main() -> tuple[bytes, int]:
        transport, peer = await _connected()
        sender = Sender(transport)
        assert sender.fd == socket_fd(transport) >= 0  # (sent straight while it can be)
        received = bytearray()
        reader = threading.Thread(target=_read_all, args=(peer, received, 0.3))
        reader.start()
        backed_up = 0
        for i in range(CHUNKS):  # over ~1.2 s: before the peer reads, and while it does
            if i % 7 == 6:
                transport.write(_chunk(i))
            else:
                sender.write(_chunk(i))
            backed_up = max(backed_up, transport.get_write_buffer_size())
            await asyncio.sleep(0.002)  # (the loop writes what it buffered when it can)
        await _drain_and_close(transport, peer, reader)
        return bytes(received), backed_up

    received, backed_up = uvloop.run(main())
    assert backed_up > 0  # the transport's own write took over for a while
    assert len(received) == CHUNKS * CHUNK
    assert received == b"".join(_chunk(i) for i in range(CHUNKS))


def test_nothing_is_sent_past_what_the_transport_holds_back() -> None:
    """The socket full, the transport buffers; the peer then reads a little (the socket has
    room again) before the loop has written the transport's buffer: the next write waits
    behind it rather than being sent first."""

    async def main() -> bytes:
        transport, peer = await _connected()
        sender = Sender(transport)
        i = 0
        while not transport.get_write_buffer_size():  # until the socket is full
            sender.write(_chunk(i))
            i += 1
        sender.write(_chunk(i))  # held back in the transport
        got = bytearray()
        while len(got) < 4 * CHUNK:  # room in the socket again, the loop not run yet
            got.extend(peer.recv(4 * CHUNK - len(got)))
        sender.write(_chunk(i + 1))
        reader = threading.Thread(target=_read_all, args=(peer, got, 0.0))
        reader.start()
        await _drain_and_close(transport, peer, reader)
        assert len(got) == (i + 2) * CHUNK
        return bytes(got)

    received = uvloop.run(main())
    count = len(received) // CHUNK
    assert received == b"".join(_chunk(i) for i in range(count))


def test_a_closing_transport_is_written_through_its_own_write() -> None:
    """Once the transport is closing its socket may be another one's soon: no send of the
    sender's own; the transport's write decides (it drops what comes after a close)."""

    async def main() -> bytes:
        transport, peer = await _connected()
        sender = Sender(transport)
        sender.write(b"before")
        transport.close()
        sender.write(b"after")  # (uvloop: ignored once the connection is being lost)
        await asyncio.sleep(0.05)
        peer.settimeout(5)
        got = b""
        while chunk := peer.recv(1024):
            got += chunk
        peer.close()
        return got

    assert uvloop.run(main()) == b"before"


def test_only_a_plain_uvloop_socket_transport_is_sent_to_directly() -> None:
    async def main() -> tuple[int, int]:
        transport, peer = await _connected()
        plain = socket_fd(transport)
        transport.close()
        peer.close()
        return plain, socket_fd(object())

    plain, other = uvloop.run(main())
    assert plain >= 0 and other == -1

    async def on_asyncio() -> int:  # asyncio's own loop: its transports are not taken apart
        transport, peer = await _connected()
        fd = socket_fd(transport)
        transport.close()
        peer.close()
        return fd

    assert asyncio.run(on_asyncio()) == -1
