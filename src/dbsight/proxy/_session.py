"""One client connection relayed to PostgreSQL in session mode, observed on the way.

The client's startup (SSLRequest and GSSENCRequest are answered ``N``; a CancelRequest is
passed to the server on a connection of its own) opens a server connection; from then on
both directions are relayed:

- client -> server: bytes are framed and validated by the codec before they are forwarded
  (a malformed message gets an ErrorResponse 08P01 and closes this client only); statement
  messages are decoded for the session state, everything else is forwarded as received;
- server -> client: bytes are forwarded as soon as they arrive and framed on the side; only
  the messages that end or describe a statement are decoded (never DataRow or CopyData).

Neither direction waits for the other, so the proxy adds no round trip. The server's own
authentication exchange passes through unchanged (trust, password, md5, SCRAM-SHA-256).
When the client goes away with a statement running, the statement is cancelled on the
server. A failure of the observation (not of the relay) stops observing this session and is
counted; the relay goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from typing import Any

from .._runtime import recorder
from . import protocol as p
from ._config import ProxyConfig
from ._observe import StatementObserver

logger = logging.getLogger("dbsight.proxy")

READ_SIZE = 256 * 1024
FAILURE_NAME = "dbsight.proxy"
# Server messages the session state needs; DataRow, CopyData, notices and notifications
# are only forwarded.
_BACKEND_DECODED = frozenset(
    bytes([c]) for c in b"Z123tTnCIsEGHWcVRSK"
)
_FRONTEND_DECODED = frozenset(bytes([c]) for c in b"QPBEDCSHcfFX")
_STATEMENTS = frozenset((b"Q", b"E"))

_perf_counter = time.perf_counter


def statements_running(state: p.SessionState) -> bool:
    """A Query or Execute is waiting for the server's answer (what a cancel would stop)."""
    return any(r.kind in (p.RequestKind.QUERY, p.RequestKind.EXECUTE) for r in state.pending)


class SessionInfo:
    """What ``/stats/clients`` shows of a session."""

    __slots__ = ("client", "user", "database", "application_name", "connected_at", "statements",
                 "state")

    def __init__(self, client: str) -> None:
        self.client = client
        self.user: str | None = None
        self.database: str | None = None
        self.application_name: str | None = None
        self.connected_at = time.time()
        self.statements = 0
        self.state = "startup"

    def to_dict(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "user": self.user,
            "database": self.database,
            "application_name": self.application_name,
            "connected_at": self.connected_at,
            "statements": self.statements,
            "state": self.state,
        }


class FrontendSession:
    """What every proxied client has, whatever the pool mode: the client side of the startup
    (encryption requests, CancelRequest, StartupMessage), its `SessionInfo`, its
    `StatementObserver` and the glue that feeds a `SessionState` and reports its completions.
    Subclasses relay (`ClientSession`: one server connection for the whole session;
    ``PooledSession``: one per transaction)."""

    def __init__(
        self,
        config: ProxyConfig,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.client_tls = client_tls
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.client_addr = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self.info = SessionInfo(self.client_addr or "unix")
        self.frontend = p.FrontendParser(max_message_size=config.max_message_size)
        self.observer: StatementObserver | None = None
        self._shutting_down = False

    def request_shutdown(self) -> None:
        """The proxy is stopping: end the session now if it is between transactions,
        otherwise as soon as its transaction ends."""
        raise NotImplementedError

    def _end_for_shutdown(self) -> None:
        """The proxy is stopping: tell the client (57P01) and close its connection."""
        with contextlib.suppress(Exception):
            self.writer.write(
                p.error_response(
                    "57P01", "terminating connection: the dbsight proxy is shutting down",
                    "FATAL",
                )
            )
        self.writer.close()

    async def _refuse(self, sqlstate: str, message: str) -> None:
        """A FATAL ErrorResponse to the client; the session ends after it."""
        with contextlib.suppress(Exception):
            self.writer.write(p.error_response(sqlstate, message, "FATAL"))
            await self.writer.drain()

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
                self.info.user = params.get("user")
                self.info.database = params.get("database") or self.info.user
                self.info.application_name = params.get("application_name")
                self._startup_received(message)
                self.observer = StatementObserver(
                    user=self.info.user,
                    database=self.info.database,
                    application_name=self.info.application_name,
                    client_addr=self.client_addr,
                )
                return frame

    def _startup_received(self, message: p.StartupMessage) -> None:
        """Hook: the client's StartupMessage arrived."""

    async def _cancel_request(self, message: p.CancelRequest, raw: bytes) -> None:
        """Hook: this connection is a CancelRequest; pass it to whoever runs the statement."""
        raise NotImplementedError

    # -- observation ---------------------------------------------------------------------
    def _observe_request(
        self, state: p.SessionState, message: Any, frame_type: bytes, at: float
    ) -> None:
        """Feed a client message to ``state``; a Query or Execute opens its recorder context."""
        pending = state.pending
        before = pending[-1] if pending else None
        state.client_message(message, at)
        if frame_type in _STATEMENTS:
            self.info.statements += 1
            pending = state.pending
            request = pending[-1] if pending else None
            if request is not None and request is not before and self.observer is not None:
                self.observer.requested(request)

    def _note_server_parameter(self, message: p.ParameterStatus) -> None:
        if message.name == "application_name":
            self.info.application_name = message.value
            if self.observer is not None:
                self.observer.application_name = message.value

    def _report(self, completion: p.Completion | None) -> None:
        """Hand a statement's completion to the observer (its failure stops observing)."""
        if completion is None or self.observer is None:
            return
        try:
            self.observer.completed(completion)
        except Exception as exc:
            self._stop_observing("server message", exc)

    def _stop_observing(self, where: str, exc: BaseException) -> None:
        if self.observer is not None:
            self.observer.abandoned()
            self.observer = None
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
        self.backend = p.BackendParser(max_message_size=config.max_message_size)
        self.state = p.SessionState()
        self.key: p.BackendKeyData | None = None
        self.server_writer: asyncio.StreamWriter | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        try:
            startup = await self._startup()
            if startup is None:
                return
            server = await self._connect()
            if server is None:
                return
            server_reader, self.server_writer = server
            self.server_writer.write(startup.raw or b"")
            self.info.state = "active"
            await self._relay(server_reader, self.server_writer)
        except p.ProtocolError as exc:
            await self._refuse(exc.sqlstate, exc.message)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.info.state = "closed"
            for w in (self.server_writer, self.writer):
                if w is not None:
                    w.close()
            for w in (self.server_writer, self.writer):
                if w is not None:
                    with contextlib.suppress(Exception):
                        await w.wait_closed()

    def request_shutdown(self) -> None:
        """The proxy is stopping: end this session now if it is between transactions,
        otherwise as soon as its transaction ends (ReadyForQuery 'I')."""
        self._shutting_down = True
        if self.info.state != "active" or self.state.at_rest:
            self._end_for_shutdown()

    def _end_for_shutdown(self) -> None:
        super()._end_for_shutdown()
        if self.server_writer is not None:
            self.server_writer.close()

    # -- startup -------------------------------------------------------------------------
    def _startup_received(self, message: p.StartupMessage) -> None:
        self.state.client_message(message, _perf_counter())

    async def _cancel_request(self, message: p.CancelRequest, raw: bytes) -> None:
        await self._forward_cancel(raw)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        upstream = self.config.upstream_server
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(upstream.host, upstream.port),
                self.config.connect_timeout_s,
            )
        except (OSError, asyncio.TimeoutError) as exc:
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
                self._upstream_handshake(reader, writer), self.config.connect_timeout_s
            )
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            writer.close()
            await self._refuse(
                "08006",
                f"dbsight proxy: TLS to the database server at {upstream.host}:{upstream.port} "
                f"failed ({type(exc).__name__}: {exc})",
            )
            return None
        except _TlsRefused:
            writer.close()
            await self._refuse(
                "08006",
                f"dbsight proxy: the database server at {upstream.host}:{upstream.port} does "
                "not accept TLS, which upstream_tls requires",
            )
            return None
        return reader, writer

    async def _upstream_handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """SSLRequest to the server; TLS when it answers 'S' (plain text on 'N' with
        upstream_tls = prefer, `_TlsRefused` otherwise)."""
        assert self.upstream_tls is not None
        writer.write(p.encode(p.SSLRequest()))
        await writer.drain()
        answer = await reader.readexactly(1)
        if answer == b"S":
            host = self.config.upstream_server.host
            await writer.start_tls(
                self.upstream_tls,
                server_hostname=host if self.upstream_tls.check_hostname else None,
            )
        elif answer != b"N" or self.config.upstream_tls != "prefer":
            raise _TlsRefused

    async def _forward_cancel(self, raw: bytes) -> None:
        upstream = self.config.upstream_server
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(upstream.host, upstream.port),
                self.config.connect_timeout_s,
            )
        except (OSError, asyncio.TimeoutError):
            return  # a cancel is best effort, for PostgreSQL too
        writer.write(raw)
        with contextlib.suppress(Exception):
            await writer.drain()
            writer.close()
            await writer.wait_closed()

    # -- relay ---------------------------------------------------------------------------
    async def _relay(
        self, server_reader: asyncio.StreamReader, server_writer: asyncio.StreamWriter
    ) -> None:
        upstream = asyncio.create_task(self._client_to_server(server_writer))
        downstream = asyncio.create_task(self._server_to_client(server_reader))
        try:
            done, _ = await asyncio.wait(
                (upstream, downstream), return_when=asyncio.FIRST_COMPLETED
            )
            if upstream in done and upstream.exception() is None and self._statements_running():
                await self._cancel_running()
        finally:
            for task in (upstream, downstream):
                task.cancel()
            results = await asyncio.gather(upstream, downstream, return_exceptions=True)
            if self.observer is not None:
                self.observer.abandoned()
            for result in results:
                if isinstance(result, p.ProtocolError):
                    raise result

    def _statements_running(self) -> bool:
        return statements_running(self.state)

    async def _cancel_running(self) -> None:
        key = self.key
        if key is None:
            return
        await self._forward_cancel(p.encode(p.CancelRequest(key.pid, key.secret_key)))

    async def _client_to_server(self, server_writer: asyncio.StreamWriter) -> None:
        frontend = self.frontend
        while True:
            data = await self.reader.read(READ_SIZE)
            if not data:
                return
            frontend.feed(data)
            chunks = []
            while (frame := frontend.next_frame()) is not None:
                chunks.append(frame.raw or b"")
                if frame.type in _FRONTEND_DECODED and self.observer is not None:
                    self._observe_client(frame)
            if chunks:
                server_writer.write(b"".join(chunks))
                await server_writer.drain()

    async def _server_to_client(self, server_reader: asyncio.StreamReader) -> None:
        backend = self.backend
        writer = self.writer
        while True:
            data = await server_reader.read(READ_SIZE)
            if not data:
                return
            writer.write(data)  # as received: the client is never kept waiting on parsing
            try:
                backend.feed(data)
                while (frame := backend.next_frame()) is not None:
                    if frame.type in _BACKEND_DECODED:
                        self._observe_server(backend.decode(frame))
            except p.ProtocolError as exc:  # the server's bytes: stop observing, keep relaying
                self._stop_observing("server stream", exc)
                backend = self.backend = _NullParser()  # type: ignore[assignment]
            await writer.drain()

    # -- observation ---------------------------------------------------------------------
    def _observe_client(self, frame: p.Frame) -> None:
        message = self.frontend.decode(frame)
        try:
            self._observe_request(self.state, message, frame.type, _perf_counter())
        except Exception as exc:  # never the relay's problem
            self._stop_observing("client message", exc)

    def _observe_server(self, message: Any) -> None:
        kind = type(message)
        if kind is p.BackendKeyData:
            self.key = message
        elif kind is p.ParameterStatus:
            self._note_server_parameter(message)
        if self.observer is None:
            return
        try:
            completion = self.state.server_message(message, _perf_counter())
        except Exception as exc:
            self._stop_observing("server message", exc)
        else:
            self._report(completion)
        if self._shutting_down and kind is p.ReadyForQuery and self.state.at_rest:
            self._end_for_shutdown()


class _TlsRefused(Exception):
    """The server answered an SSLRequest with 'N' where TLS is required."""


class _NullParser:
    """Stands in for the server-side parser once observation stopped."""

    def feed(self, data: bytes) -> None:
        return None

    def next_frame(self) -> None:
        return None
