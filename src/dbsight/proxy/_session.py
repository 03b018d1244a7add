"""One client connection relayed to PostgreSQL in session mode, observed on the way (with
replicas, cache rules or a request pipeline configured, session mode runs in ``_pooled``
instead: those need server connections of the proxy's own).

The client's startup (SSLRequest and GSSENCRequest are answered ``N``, or the TLS handshake
is made when the proxy has a certificate; a CancelRequest is passed to the server on a
connection of its own) opens a server connection; from then on both directions are relayed
by the event loop's callbacks (`StreamLink`), with no task per direction and no copy:

- client -> server: only message headers are read (type and length, validated: a malformed
  message gets an ErrorResponse 08P01 and closes this client only) plus the bodies of the
  messages that carry a statement; complete messages are forwarded as received;
- server -> client: bytes are forwarded the moment they arrive, then the `Exchange` reads
  the message types that end or describe a statement (never DataRow or CopyData).

Neither direction waits for the other, so the proxy adds no round trip. The server's own
authentication exchange passes through unchanged (trust, password, md5, SCRAM-SHA-256).
When the client goes away with a statement running, the statement is cancelled on the
server. A failure of the observation (not of the relay) stops observing this session and is
counted; the relay goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from .._runtime import recorder
from . import protocol as p
from ._backend import TlsRefused, negotiate_tls
from ._backend_errors import BackendError
from ._capture import WorkloadCapture
from ._client_fields import SessionFields
from ._config import ProxyConfig
from ._exchange import Exchange
from ._link import link_of, open_link
from ._metrics import client_errors
from ._pipeline import Pipeline
from ._receiver import Receiver
from ._session_info import SessionInfo
from ._session_relay import SessionRelay

logger = logging.getLogger("dbsight.proxy")

READ_SIZE = 256 * 1024
FAILURE_NAME = "dbsight.proxy"

_session_ids = itertools.count(1)


def raising_query(sqlstate: str, message: str) -> bytes:
    """A Query the server answers with ``sqlstate`` and ``message``, in its place in the
    stream and with the transaction failing as for any error (how the proxy rejects a
    statement whose answer it cannot put in place itself)."""
    quoted = message.replace("'", "''")
    sql = (
        f"DO $dbsight$ BEGIN RAISE EXCEPTION USING ERRCODE = '{sqlstate}', "
        f"MESSAGE = '{quoted}'; END $dbsight$"
    )
    body = sql.encode() + b"\0"
    return b"Q" + struct.pack(">i", len(body) + 4) + body


class FrontendSession(SessionFields):
    """What every proxied client has, whatever the pool mode: the client side of the startup
    (encryption requests, CancelRequest, StartupMessage), its `SessionInfo` and its
    `Exchange`. Subclasses relay (`ClientSession`: session mode's plain relay, one server
    connection for the whole session, the server's own login; ``PooledSession``: the proxy's
    own login and pooled connections, per transaction or per session)."""

    pooled = False

    def __init__(
        self,
        config: ProxyConfig,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client_tls: ssl.SSLContext | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.config = config
        self.client_tls = client_tls
        self.pipeline = pipeline
        self.capture: WorkloadCapture | None = None  # set by the server with --capture
        self.session_id = next(_session_ids)
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.client_addr = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self.info = SessionInfo(self.client_addr or "unix")
        self.frontend = p.FrontendParser(max_message_size=config.max_message_size)
        self.exchange: Exchange | None = None
        self.observing = True
        self._ended: asyncio.Future[None] | None = None  # set when the relay is to stop
        self._client_transport: Any = None  # once relayed
        self._receivers: tuple[Receiver, ...] = ()  # while relaying: who reads which socket
        # (``_client_buffer``: the start of a message not yet whole, or held back;
        # ``_shutting_down``: to end at its next rest)
        super().__init__()
        self._max_size = config.max_message_size

    # -- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the client until either side closes; whatever ends it, what the session
        holds is given back or closed (`_finish`)."""
        try:
            await self._serve()
        except (p.ProtocolError, BackendError) as exc:  # (BackendError: no server connection)
            await self._refuse(exc.sqlstate, exc.message)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.info.state = "closed"
            self._stop_receiving()
            await self._finish()

    async def _serve(self) -> None:
        """The client's startup, login and relay."""
        raise NotImplementedError

    async def _finish(self) -> None:
        """The session is over: its observation ends and the client's connection closes."""
        if self.exchange is not None and self.observing:
            self.exchange.abandon()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    def request_shutdown(self) -> None:
        """The proxy is stopping: end the session now if it is between transactions,
        otherwise as soon as its transaction ends (`_shutting_down`)."""
        self._shutting_down = True
        if self._at_rest():
            self._end_for_shutdown()

    def _at_rest(self) -> bool:
        """No transaction under way: the session may end now."""
        raise NotImplementedError

    def _end_for_shutdown(self) -> None:
        """The proxy is stopping: tell the client (57P01) and close its connection."""
        self._fatal("57P01", "terminating connection: the dbsight proxy is shutting down")

    def _fatal(self, sqlstate: str, message: str, detail: str | None = None) -> None:
        """A FATAL ErrorResponse to the client (`_tell_fatal`); its connection closes and
        the relay ends."""
        self._tell_fatal(sqlstate, message, detail)
        self.writer.close()
        self._end()

    async def _refuse(self, sqlstate: str, message: str) -> None:
        """A FATAL ErrorResponse to the client before its relay; the session ends after it."""
        self._tell_fatal(sqlstate, message)
        with contextlib.suppress(Exception):
            await self.writer.drain()

    def _tell_fatal(self, sqlstate: str, message: str, detail: str | None = None) -> None:
        client_errors[sqlstate] += 1
        with contextlib.suppress(Exception):
            self.writer.write(p.error_response(sqlstate, message, "FATAL", detail=detail))

    def _violation(self, exc: p.ProtocolError) -> None:
        """The client broke the protocol: tell it (FATAL, with the SQLSTATE) and end."""
        logger.info("dbsight proxy: client %s: %s", self.client_addr, exc.message)
        self._fatal(exc.sqlstate, exc.message)

    def _end(self) -> None:
        self._stop_receiving()  # (a socket closes with its transport only after this)
        ended = self._ended
        if ended is not None and not ended.done():
            ended.set_result(None)

    def _receive(self, transport: Any, on_data: Callable[[bytes], None]) -> Any:
        """The socket under ``transport`` read by the relay itself from now on, its chunks
        to ``on_data`` (`Receiver`), when it is a plain socket; what pauses its reading
        (the receiver, or the transport when it is not)."""
        receiver = Receiver(transport, on_data)
        if not receiver.start():
            return transport
        self._receivers += (receiver,)
        return receiver

    def _stop_receiving(self) -> None:
        for receiver in self._receivers:
            receiver.stop()

    def _relay_client(
        self, on_data: Callable[[bytes], None], paired: asyncio.Transport | None = None
    ) -> bytes:
        """Hand the client's socket to ``on_data`` (the relay ends with `_end`); returns the
        bytes that came before, for ``on_data`` to take first."""
        self._ended = asyncio.get_running_loop().create_future()
        self._client_transport = self.writer.transport
        return self.frontend.take_buffered() + link_of(self.writer).relay(
            on_data, self._client_lost, paired=paired
        )

    def _client_lost(self, exc: BaseException | None) -> None:
        self._end()

    # -- startup -------------------------------------------------------------------------
    async def _startup(self) -> p.Frame | None:
        """Answer encryption requests and forward cancels; the StartupMessage's frame, or None
        when the connection ended (or was a cancel request)."""
        while True:
            frame = self.frontend.next_frame()
            if frame is None:
                data = await self.reader.read(READ_SIZE)
                if not data:
                    return None
                self.frontend.feed(data)
                continue
            message = self.frontend.decode(frame)
            if isinstance(message, p.SSLRequest) and self.client_tls is not None:
                if self.frontend.buffered:  # bytes sent before the handshake: not trusted
                    raise p.ProtocolViolation("data received before the TLS handshake")
                self.writer.write(p.encryption_response(True))
                await self.writer.drain()
                await self.writer.start_tls(self.client_tls)
            elif isinstance(message, (p.SSLRequest, p.GSSENCRequest)):
                self.writer.write(p.encryption_response(False))
                await self.writer.drain()
            elif isinstance(message, p.CancelRequest):
                await self._cancel_request(message, frame.raw or b"")
                return None
            elif isinstance(message, p.StartupMessage):
                params = message.parameters
                # (interned: every session's statements then carry the same name object,
                # which the statistics fold checks by identity, once per run of them)
                user = params.get("user")
                self.info.user = sys.intern(user) if user else user
                database = params.get("database")
                self.info.database = sys.intern(database) if database else self.info.user
                self.info.application_name = params.get("application_name")
                if self.pipeline is not None:
                    rejection = self.pipeline.on_connect(
                        self.info.user, self.info.database, self.client_addr,
                        self.info.application_name,
                    )
                    if rejection is not None:
                        await self._refuse(rejection.sqlstate, rejection.message)
                        return None
                self._startup_received(message)
                self.exchange = self.info.exchange = self._new_exchange()
                if self.capture is not None:
                    self.exchange.capture = self.capture
                    self.exchange.session_id = self.session_id
                    self.capture.session_started(
                        self.session_id,
                        user=self.info.user,
                        database=self.info.database,
                        application_name=self.info.application_name,
                        client_addr=self.client_addr,
                        at=time.time(),
                    )
                return frame

    def _new_exchange(self) -> Exchange:
        return Exchange(
            user=self.info.user,
            database=self.info.database,
            application_name=self.info.application_name,
            client_addr=self.client_addr,
            pooled=self.pooled,
        )

    def _startup_received(self, message: p.StartupMessage) -> None:
        """Hook: the client's StartupMessage arrived."""

    async def _cancel_request(self, message: p.CancelRequest, raw: bytes) -> None:
        """Hook: this connection is a CancelRequest; pass it to whoever runs the statement."""
        raise NotImplementedError

    def _stop_observing(self, where: str, exc: BaseException) -> None:
        """The observation failed (never the relay): stop observing this session, count it."""
        if self.observing:
            self.observing = False
            if self.exchange is not None:
                self.exchange.abandon()
            recorder.failures.record(FAILURE_NAME, where, exc)


class ClientSession(FrontendSession):
    """Relays one client in session mode; `run` returns when either side has closed."""

    def __init__(
        self,
        config: ProxyConfig,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client_tls: ssl.SSLContext | None = None,
        upstream_tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(config, reader, writer, client_tls=client_tls)
        self.upstream_tls = upstream_tls
        self.server_writer: asyncio.StreamWriter | None = None
        self._server_transport: Any = None
        self._client_left = False

    # -- lifecycle -----------------------------------------------------------------------
    async def _serve(self) -> None:
        startup = await self._startup()
        if startup is None:
            return
        server = await self._connect()
        if server is None:
            return
        _, self.server_writer = server
        self.server_writer.write(startup.raw or b"")
        self.info.state = "active"
        await self._relay()

    async def _finish(self) -> None:
        server = self.server_writer
        if server is not None:
            server.close()
        await super()._finish()
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    def _at_rest(self) -> bool:
        """(Then as soon as a ReadyForQuery 'I' comes: `_server_data`.)"""
        exchange = self.exchange
        return self.info.state != "active" or exchange is None or exchange.at_rest

    def _end_for_shutdown(self) -> None:
        super()._end_for_shutdown()
        if self.server_writer is not None:
            self.server_writer.close()

    # -- startup -------------------------------------------------------------------------
    async def _cancel_request(self, message: p.CancelRequest, raw: bytes) -> None:
        await self._forward_cancel(raw)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        upstream = self.config.upstream_server
        try:
            reader, writer, _ = await asyncio.wait_for(
                open_link(upstream.host, upstream.port), self.config.connect_timeout_s
            )
        except (OSError, TimeoutError) as exc:
            logger.warning("upstream %s:%s unreachable: %s", upstream.host, upstream.port, exc)
            await self._refuse(
                "08006",
                f"dbsight proxy: the database server at {upstream.host}:{upstream.port} "
                f"is unreachable ({type(exc).__name__})",
            )
            return None
        if self.upstream_tls is None:
            return reader, writer
        try:
            await asyncio.wait_for(
                negotiate_tls(
                    reader, writer, self.upstream_tls, upstream.host,
                    self.config.upstream_tls == "prefer",
                ),
                self.config.connect_timeout_s,
            )
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            writer.close()
            await self._refuse(
                "08006",
                f"dbsight proxy: TLS to the database server at {upstream.host}:{upstream.port} "
                f"failed ({type(exc).__name__}: {exc})",
            )
            return None
        except TlsRefused:
            writer.close()
            await self._refuse(
                "08006",
                f"dbsight proxy: the database server at {upstream.host}:{upstream.port} does "
                "not accept TLS, which upstream_tls requires",
            )
            return None
        return reader, writer

    async def _forward_cancel(self, raw: bytes) -> None:
        upstream = self.config.upstream_server
        try:
            _, writer, _ = await asyncio.wait_for(
                open_link(upstream.host, upstream.port), self.config.connect_timeout_s
            )
        except (OSError, TimeoutError):
            return  # a cancel is best effort, for PostgreSQL too
        writer.write(raw)
        with contextlib.suppress(Exception):
            await writer.drain()
            writer.close()
            await writer.wait_closed()

    # -- relay ---------------------------------------------------------------------------
    async def _relay(self) -> None:
        """Hand both sockets to the relay callbacks; return when either side has closed."""
        assert self.server_writer is not None
        self._server_transport = self.server_writer.transport
        self._client_transport = self.writer.transport
        relay = SessionRelay(
            self, self.exchange if self.observing else None, self._client_transport,
            self._server_transport, self._max_size,
        )  # fmt: skip
        client_early = self._relay_client(relay.client_data, paired=self._server_transport)
        server_link = link_of(self.server_writer)
        server_early = server_link.relay(
            relay.server_data, self._server_lost, paired=self._client_transport
        )
        # each plain socket read by the relay itself, paused by its peer's flow control
        link_of(self.writer).pair(self._receive(self._server_transport, relay.server_data))
        server_link.pair(self._receive(self._client_transport, relay.client_data))
        if server_early:
            relay.server_data(server_early)
        if client_early:
            relay.client_data(client_early)
        assert self._ended is not None  # (by _relay_client)
        await self._ended
        if self._client_left and self.exchange is not None and self.exchange.statements_running():
            await self._cancel_running()

    async def _cancel_running(self) -> None:
        key = self.exchange.key if self.exchange is not None else None
        if key is None:
            return
        await self._forward_cancel(p.encode(p.CancelRequest(key[0], key[1])))

    def _client_lost(self, exc: BaseException | None) -> None:
        self._client_left = True
        self._end()

    def _server_lost(self, exc: BaseException | None) -> None:
        self._end()
