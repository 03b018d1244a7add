"""The bench's yardstick for transaction pooling: the least a Python transaction pooler can do.

A fixed set of server connections, logged in once when it starts (trust or no password: the
bench's own server); each client's startup is answered here with what the first server said
(its ParameterStatus messages), so a client costs no server login. A client takes an idle
server connection when it sends something and holds none, and gives it back at the
ReadyForQuery that says idle (``Z`` ``I``); a client that finds none idle waits in a queue.
Both directions are walked message by message — the least that finds a transaction's end and
keeps a client's Terminate from closing a shared connection — and relayed as they arrive
(uvloop when installed, one ``asyncio.Protocol`` per socket); nothing else is parsed, nothing
observed — unless ``--observe``: then each Query is timed and counted under its text with the
literals blanked (`Statistics`), the least a pooler that observes every statement does.
Simple protocol only: a prepared statement would live on one server connection.
``bench/proxy.py`` runs it next to ``dbsight proxy --pool-mode transaction`` so that the
ratio dbsight/bare-pooler says what dbsight's own work costs over transaction pooling
itself. Written for the bench, not shipped.

    python bench/bare_pooler.py --listen 127.0.0.1:PORT --upstream HOST_OR_SOCKETDIR:PORT \
        --user USER --dbname DB [--pool-size 20] [--observe]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import re
import signal
import struct
import sys
import time

_INT32 = struct.Struct("!i")
_READY_IDLE = ord("I")
_TERMINATE = ord("X")
_QUERY = ord("Q")
_COMPLETE = ord("C")
_ERROR = ord("E")
_LITERALS = re.compile(rb"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_perf_counter = time.perf_counter


class Statistics:
    """``--observe``: the least statement statistics there are: each simple-protocol Query
    timed from its send to its CommandComplete or ErrorResponse and counted under its text
    with the literals blanked (calls, errors, total seconds, a latency histogram)."""

    def __init__(self) -> None:
        self.by_text: dict[bytes, list[object]] = {}

    def sent(self, client: Client, sql: bytes) -> None:
        client.running.append((_perf_counter(), sql))

    def ended(self, client: Client, failed: bool) -> None:
        if not client.running:
            return
        at, sql = client.running.popleft()
        duration = _perf_counter() - at
        key = _LITERALS.sub(b"?", sql)
        entry = self.by_text.get(key)
        if entry is None:
            entry = self.by_text[key] = [0, 0, 0.0, [0] * (len(_BUCKETS) + 1)]
        entry[0] += 1  # type: ignore[operator]
        if failed:
            entry[1] += 1  # type: ignore[operator]
        entry[2] += duration  # type: ignore[operator]
        entry[3][bisect.bisect_left(_BUCKETS, duration)] += 1  # type: ignore[index]


def _startup(user: str, dbname: str) -> bytes:
    body = _INT32.pack(196608) + b"user\0" + user.encode() + b"\0database\0"
    body += dbname.encode() + b"\0\0"
    return _INT32.pack(len(body) + 4) + body


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + _INT32.pack(len(body) + 4) + body


class Pool:
    def __init__(self) -> None:
        self.idle: list[Server] = []
        self.waiting: collections.deque[Client] = collections.deque()
        self.greeting = b""  # ParameterStatus messages from the first login
        self.stats: Statistics | None = None

    def take(self, client: Client) -> Server | None:
        if self.idle:
            server = self.idle.pop()
            server.client = client
            return server
        self.waiting.append(client)
        return None

    def give_back(self, server: Server) -> None:
        server.client = None
        while self.waiting:
            client = self.waiting.popleft()
            if client.transport is not None and not client.transport.is_closing():
                client.attach(server)
                return
        self.idle.append(server)


class Server(asyncio.Protocol):
    """One pooled server connection: logs in, then relays to whichever client holds it."""

    def __init__(self, pool: Pool, login: bytes, ready: asyncio.Future[None]) -> None:
        self.pool, self.login, self.ready = pool, login, ready
        self.transport: asyncio.Transport | None = None
        self.client: Client | None = None
        self.rest = 0  # bytes of the current message still to come
        self.head = b""  # a header split between chunks
        self.logging_in = True
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.login)

    def data_received(self, data: bytes) -> None:
        if self.logging_in:
            self._login(data)
            return
        client = self.client
        if client is not None and client.transport is not None:
            client.transport.write(data)
        if self._ends_idle(data):
            if client is not None:
                client.server = None
            self.pool.give_back(self)

    def _ends_idle(self, data: bytes) -> bool:
        """Walks the messages of ``data``: whether its last complete one is ReadyForQuery
        saying idle and nothing of another follows. (The same walk as `Client._terminates`,
        each written out: a shared walker returning the messages made the yardstick 18 %
        dearer, 22.1k -> 26.1k instructions per transaction under callgrind.)"""
        if self.head:
            data = self.head + data
            self.head = b""
        n, i = len(data), self.rest
        idle = False
        while i < n:
            if n - i < 5:
                self.head = data[i:]
                self.rest = 0
                return False
            kind = data[i]
            end = i + 1 + _INT32.unpack_from(data, i + 1)[0]
            idle = kind == 90 and end < n + 1 and data[end - 1] == _READY_IDLE  # b"Z"
            if (kind == _COMPLETE or kind == _ERROR) and self.pool.stats is not None:
                if self.client is not None:
                    self.pool.stats.ended(self.client, kind == _ERROR)
            i = end
        self.rest = i - n
        return idle and self.rest == 0

    def _login(self, data: bytes) -> None:
        self.buffer += data
        i, buf = 0, self.buffer
        while len(buf) - i >= 5:
            end = i + 1 + _INT32.unpack_from(buf, i + 1)[0]
            if end > len(buf):
                break
            kind = buf[i : i + 1]
            if kind == b"S" and not self.ready.done():
                self.pool.greeting += buf[i:end]
            elif kind == b"E":
                self.ready.set_exception(ConnectionError(buf[i:end].decode(errors="replace")))
                return
            elif kind == b"Z":
                self.logging_in, self.buffer = False, b""
                if not self.ready.done():
                    self.ready.set_result(None)
                return
            i = end
        self.buffer = buf[i:]


class Client(asyncio.Protocol):
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.server: Server | None = None
        self.started = False
        self.pending = b""  # bytes waiting for a server connection
        self.rest = 0
        self.head = b""
        self.running: collections.deque[tuple[float, bytes]] = collections.deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.started:
            self._startup(data)
            return
        if self._terminates(data):
            assert self.transport is not None
            self.transport.close()
            return
        server = self.server
        if server is None:
            if self.pending:  # queued already
                self.pending += data
                return
            server = self.server = self.pool.take(self)
            if server is None:
                self.pending += data
                return
        assert server.transport is not None
        server.transport.write(data)

    def _terminates(self, data: bytes) -> bool:
        """Walks the client's messages: whether one is Terminate (the pooled connection
        stays open; the client goes)."""
        if self.head:
            data = self.head + data
            self.head = b""
        n, i = len(data), self.rest
        while i < n:
            if n - i < 5:
                self.head = data[i:]
                self.rest = 0
                return False
            kind = data[i]
            if kind == _TERMINATE:
                return True
            end = i + 1 + _INT32.unpack_from(data, i + 1)[0]
            if kind == _QUERY and self.pool.stats is not None:  # (whole in one chunk, here)
                self.pool.stats.sent(self, data[i + 5 : end - 1])
            i = end
        self.rest = i - n
        return False

    def attach(self, server: Server) -> None:
        self.server = server
        server.client = self
        data, self.pending = self.pending, b""
        assert server.transport is not None
        server.transport.write(data)

    def _startup(self, data: bytes) -> None:
        assert self.transport is not None
        code = _INT32.unpack_from(data, 4)[0]
        if code == 80877103:  # SSLRequest: no
            self.transport.write(b"N")
            return
        self.started = True
        self.transport.write(
            _message(b"R", _INT32.pack(0)) + self.pool.greeting
            + _message(b"K", _INT32.pack(0) + _INT32.pack(0)) + _message(b"Z", b"I")
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        server, self.server = self.server, None
        if server is not None:  # mid-transaction: roll back before it goes back
            server.client = None
            assert server.transport is not None
            server.transport.write(_message(b"Q", b"ROLLBACK\0"))


async def serve(
    listen: str, upstream: str, user: str, dbname: str, size: int, observe: bool
) -> None:
    host, port = listen.rsplit(":", 1)
    up_host, up_port = upstream.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    pool = Pool()
    if observe:
        pool.stats = Statistics()
    login = _startup(user, dbname)
    for _ in range(size):
        ready: asyncio.Future[None] = loop.create_future()
        server = Server(pool, login, ready)
        if up_host.startswith("/"):
            await loop.create_unix_connection(lambda: server, f"{up_host}/.s.PGSQL.{up_port}")
        else:
            await loop.create_connection(lambda: server, up_host, int(up_port))
        await ready
        pool.idle.append(server)
    listener = await loop.create_server(lambda: Client(pool), host, int(port))
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with listener:
        await stop.wait()
    if pool.stats is not None:  # what it kept, to show that it did
        calls = sum(entry[0] for entry in pool.stats.by_text.values())  # type: ignore[misc]
        print(f"{len(pool.stats.by_text)} statements, {calls} calls", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--upstream", required=True, help="HOST:PORT or SOCKET_DIR:PORT")
    parser.add_argument("--user", required=True)
    parser.add_argument("--dbname", required=True)
    parser.add_argument("--pool-size", type=int, default=20)
    parser.add_argument("--observe", action="store_true", help="keep statement statistics")
    args = parser.parse_args()
    run = serve(
        args.listen, args.upstream, args.user, args.dbname, args.pool_size, args.observe
    )
    try:
        import uvloop

        uvloop.run(run)
    except ImportError:
        asyncio.run(run)


if __name__ == "__main__":
    main()
