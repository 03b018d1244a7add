"""The bench's yardstick: the least a Python proxy can do, relaying bytes and nothing else.

One server connection per client, opened when the client connects; bytes go each way as they
arrive (uvloop when installed, one ``asyncio.Protocol`` per socket, flow control coupled both
ways); no parsing, no pooling, no observation. ``bench/proxy.py`` runs it as a process of its
own next to ``dbsight proxy``, so that the ratio dbsight/bare-forwarder says what dbsight's
own work costs over the relay itself. Written for the bench, not shipped.

    python bench/bare_forwarder.py --listen 127.0.0.1:PORT --upstream HOST_OR_SOCKETDIR:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import signal


class Side(asyncio.Protocol):
    """One socket of a relayed pair: what it receives is written to its peer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: Side | None = None
        self.pending: list[bytes] = []  # client bytes before the server connection is up

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self.pending.append(data)
        else:
            peer.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class ClientSide(Side):
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        super().__init__()
        self.upstream = (upstream_host, upstream_port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self.connect())

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.upstream
        server = Side()
        server.peer = self
        try:
            if host.startswith("/"):
                await loop.create_unix_connection(lambda: server, f"{host}/.s.PGSQL.{port}")
            else:
                await loop.create_connection(lambda: server, host, port)
        except OSError:
            assert self.transport is not None
            self.transport.close()
            return
        self.peer = server
        assert server.transport is not None
        for chunk in self.pending:
            server.transport.write(chunk)
        self.pending.clear()


async def serve(listen: str, upstream: str) -> None:
    host, port = listen.rsplit(":", 1)
    up_host, up_port = upstream.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ClientSide(up_host, int(up_port)), host, int(port))
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--upstream", required=True, help="HOST:PORT or SOCKET_DIR:PORT")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.listen, args.upstream))
    except ImportError:
        asyncio.run(serve(args.listen, args.upstream))


if __name__ == "__main__":
    main()
