"""`Receiver`: a relayed socket read by the relay itself — on a real loopback TCP connection
under uvloop: chunks in order, the end of the stream handed back to the transport (which
ends the connection as always), a handler that raises ending the connection, and asyncio's
own transports left to read as before."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import uvloop

from dbsight.proxy._receiver import _POLLERS, Receiver


class Recording(asyncio.Protocol):
    """What the transport itself delivers."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.eof = False
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


async def _connected() -> tuple[asyncio.Transport, Recording, socket.socket]:
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    transport, protocol = await loop.connect_accepted_socket(Recording, accepted)
    return transport, protocol, peer  # type: ignore[return-value]


async def _until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never")


def test_chunks_in_order_then_the_end_of_the_stream_goes_back_to_the_transport() -> None:
    async def main() -> None:
        transport, protocol, peer = await _connected()
        chunks: list[bytes] = []
        receiver = Receiver(transport, chunks.append)
        assert receiver.start()
        sent = [bytes([i]) * (1000 + i) for i in range(50)]
        for chunk in sent:
            peer.sendall(chunk)
            await asyncio.sleep(0)
        await _until(lambda: sum(map(len, chunks)) == sum(map(len, sent)))
        assert b"".join(chunks) == b"".join(sent)
        receiver.pause_reading()
        peer.sendall(b"later")
        await asyncio.sleep(0.05)
        assert b"".join(chunks) == b"".join(sent)  # paused: nothing read
        receiver.resume_reading()
        await _until(lambda: b"".join(chunks).endswith(b"later"))
        peer.close()  # the end of the stream: the transport's to find
        assert await asyncio.wait_for(protocol.lost, 5) is None
        assert protocol.eof and protocol.data == [] and receiver.fd == -1

    uvloop.run(main())


def test_a_handler_that_raises_ends_the_connection() -> None:
    async def main() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: reported.append(context))
        transport, protocol, peer = await _connected()

        def broken(data: bytes) -> None:
            raise RuntimeError("boom")

        receiver = Receiver(transport, broken)
        assert receiver.start()
        peer.sendall(b"x")
        await asyncio.wait_for(protocol.lost, 5)
        assert receiver.fd == -1
        peer.settimeout(5)
        assert peer.recv(10) == b""  # closed for the peer too
        peer.close()
        return reported

    (context,) = uvloop.run(main())
    assert isinstance(context["exception"], RuntimeError)


def test_asyncios_own_transports_are_left_to_read() -> None:
    async def main() -> None:
        transport, protocol, peer = await _connected()
        chunks: list[bytes] = []
        assert not Receiver(transport, chunks.append).start()
        peer.sendall(b"abc")
        await _until(lambda: protocol.data == [b"abc"])
        assert chunks == []
        transport.close()
        peer.close()

    asyncio.run(main())


@pytest.mark.parametrize("then", ["stop", "pause"])
def test_the_receivers_of_a_loop_share_one_poller_that_closes_with_the_last(then: str) -> None:
    """Two sockets ready at once are read in one wake-up of the loop's one poller; a
    receiver stopped or paused by another's handler in that wake-up is not called (a stopped
    one's transport stays paused; a paused one reads its chunk once resumed); the poller's
    epoll closes when its last receiver stops."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        (t1, _, peer1), (t2, _, peer2) = await _connected(), await _connected()
        got: list[tuple[int, bytes]] = []
        second: Receiver

        def first_handler(data: bytes) -> None:
            got.append((1, data))
            second.stop() if then == "stop" else second.pause_reading()

        first = Receiver(t1, first_handler)
        second = Receiver(t2, lambda data: got.append((2, data)))
        assert first.start() and second.start()
        poller = _POLLERS[loop]
        assert set(poller.receivers) == {first.fd, second.fd}
        epoll = poller.epoll
        peer1.sendall(b"one")  # (first in epoll's ready list, as Linux keeps it)
        peer2.sendall(b"two")
        await asyncio.sleep(0.05)  # both ready when the loop looks
        assert got == [(1, b"one")] or got[0] == (2, b"two")  # (the order epoll gives)
        if then == "stop":
            assert second.fd == -1 and not t2.is_reading()
        else:
            assert second.paused and second.fd >= 0
            second.resume_reading()
            await asyncio.sleep(0.05)
            assert sorted(got) == [(1, b"one"), (2, b"two")]
            second.stop()
        first.stop()
        assert loop not in _POLLERS and epoll.closed
        for transport, peer in ((t1, peer1), (t2, peer2)):
            transport.close()
            peer.close()

    uvloop.run(main())
