"""StreamLink: a socket that is a stream until it relays, on real loopback sockets."""

from __future__ import annotations

import asyncio
from typing import Any

from dbsight.proxy._link import open_link


async def _server(handler: object) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    return server, server.sockets[0].getsockname()[1]


async def test_relay_hands_over_buffered_bytes_then_chunks() -> None:
    sent = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"early")
        await writer.drain()
        await sent.wait()
        writer.write(b"later")
        await writer.drain()
        writer.close()

    server, port = await _server(peer)
    try:
        reader, writer, link = await open_link("127.0.0.1", port)
        assert await reader.readexactly(2) == b"ea"
        await asyncio.sleep(0.05)  # "rly" waits in the stream's buffer
        chunks: list[bytes] = []
        lost = asyncio.get_running_loop().create_future()
        early = link.relay(chunks.append, lost.set_result)
        assert early == b"rly"
        sent.set()
        assert await asyncio.wait_for(lost, 5) is None
        assert b"".join(chunks) == b"later"
        writer.close()
    finally:
        server.close()


async def test_a_peer_gone_before_the_link_relays_is_reported_once_relaying() -> None:
    """A pooled connection the server closed while it was idle (a shutdown): whoever starts
    relaying it hears of the loss, instead of waiting for answers that never come."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"E-fatal")
        await writer.drain()
        writer.close()

    server, port = await _server(peer)
    try:
        for close_ours_first in (False, True):
            reader, writer, link = await open_link("127.0.0.1", port)
            while not reader._eof:  # type: ignore[attr-defined]  # the EOF is in, unread
                await asyncio.sleep(0.01)
            if close_ours_first:  # and the transport is gone too
                writer.close()
                while not link.lost:
                    await asyncio.sleep(0.01)
            lost = asyncio.get_running_loop().create_future()
            early = link.relay(lambda data: None, lost.set_result)
            assert early == b"E-fatal"
            assert await asyncio.wait_for(lost, 5) is None
            writer.close()
    finally:
        server.close()


async def test_bytes_and_eof_between_two_relays_go_to_the_next_one() -> None:
    """A pooled connection between clients: unrelayed, what the server says meanwhile waits
    in the stream side and is handed to the next relay, as is an EOF (then its loss)."""
    say, end = asyncio.Event(), asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"first")
        await writer.drain()
        await say.wait()
        writer.write(b"idle notice")
        await writer.drain()
        await end.wait()
        writer.close()

    server, port = await _server(peer)
    try:
        reader: Any = None
        reader, writer, link = await open_link("127.0.0.1", port)
        chunks: list[bytes] = []
        early = link.relay(chunks.append, lambda exc: None, direct=False)
        while early + b"".join(chunks) != b"first":
            await asyncio.sleep(0.01)
        for direct in (False, True):  # relayed again with nothing in between
            link.unrelay()
            assert link.relay(chunks.append, lambda exc: None, direct=direct) == b""
        link.unrelay()
        say.set()  # said while no one relays it
        while not reader._buffer:
            await asyncio.sleep(0.01)
        assert link.relay(chunks.append, lambda exc: None) == b"idle notice"
        link.unrelay()
        end.set()  # the peer ends while no one relays it
        while not reader._eof:
            await asyncio.sleep(0.01)
        lost = asyncio.get_running_loop().create_future()
        assert link.relay(lambda data: None, lost.set_result) == b""
        assert await asyncio.wait_for(lost, 5) is None
        assert b"".join(chunks) == b"first"
        writer.close()
    finally:
        server.close()
