"""One connection from the proxy to the PostgreSQL server, logged in with the pool's credentials.

``BackendConnection.connect(spec)`` opens the socket, sends the StartupMessage (user, database,
application_name and the configured server parameters), answers the server's authentication
requests with ``UpstreamLogin`` (trust, cleartext, md5, SCRAM-SHA-256) and collects
ParameterStatus and BackendKeyData up to the first ReadyForQuery. After that the session layer
relays a client's messages over ``reader``/``writer``, keeping ``state`` (a ``SessionState``)
and ``parser`` (the ``BackendParser`` of this socket: bytes it already buffered belong to
whoever reads next) up to date, and gives the connection back to the pool, which calls
``reset()`` before another client gets it.

Reset (``reset(full)``): ROLLBACK when a transaction is open or failed, then ``DISCARD ALL``
(PgBouncer's ``server_reset_query``: ``CLOSE ALL``, ``SET SESSION AUTHORIZATION DEFAULT``,
``RESET ALL``, ``DEALLOCATE ALL``, ``UNLISTEN *``, ``pg_advisory_unlock_all()`` and ``DISCARD
PLANS/TEMP/SEQUENCES`` in one statement), or with ``full`` false `LIGHT_RESET_QUERY`, the same
but for the prepared statements, which the session layer keeps using (it chooses the full
reset whenever SQL-level PREPARE, DEALLOCATE or DISCARD ran, which the protocol state does
not see). GUCs go back to the values of the StartupMessage, so the configured server
parameters survive either.

Prepared statements across clients: the session layer (`dbsight.proxy._pooled`) prepares
statements on whichever connection runs them and records in ``prepared`` (server name ->
query text) what each connection holds; a full reset empties it with the server's.

Client settings: a pool's connections log in with its own startup parameters; the session
layer gives each the settings of the client it serves (`dbsight.proxy._client_settings`) and
records them in ``settings``, which a reset empties (the GUCs are the pool's again).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import protocol as p
from ._backend_errors import (
    BackendError,
    BackendQueryError,
    BackendRefused,
    BackendUnavailable,
)
from ._link import StreamLink, open_link
from ._server_fields import ServerFields
from .auth import AuthenticationFailed, UpstreamLogin

READ_SIZE = 256 * 1024
RESET_QUERY = "DISCARD ALL"
# DISCARD ALL but for DEALLOCATE ALL and DISCARD PLANS: what a transaction-pooled connection
# gets after a client left session state behind that no SQL-level PREPARE was part of.
LIGHT_RESET_QUERY = (
    "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; "
    "SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
)
DEFAULT_APPLICATION_NAME = "dbsight-proxy"
NO_SETTINGS: Mapping[str, str] = MappingProxyType({})

_monotonic = time.monotonic


@dataclass(frozen=True)
class BackendSpec:
    """Where and as whom the pool logs in; one spec per (database, user) pool.

    ``parameters`` are extra StartupMessage parameters (``TimeZone``, ``statement_timeout``,
    ``options``...); ``connect_timeout_s`` bounds the connect and the whole login.
    """

    host: str
    port: int
    user: str
    database: str
    password: str | None = field(default=None, repr=False)
    application_name: str = DEFAULT_APPLICATION_NAME
    parameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    connect_timeout_s: float = 5.0
    max_message_size: int = p.DEFAULT_MAX_MESSAGE_SIZE
    # TLS towards the server (libpq's sslmode): None disables it; with a context, the server
    # must accept TLS unless tls_optional ("prefer").
    tls: ssl.SSLContext | None = field(default=None, compare=False, repr=False)
    tls_optional: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.port <= 65535:
            raise ValueError(f"port must be 1..65535, got {self.port}")
        if self.connect_timeout_s <= 0:
            raise ValueError(f"connect_timeout_s must be > 0, got {self.connect_timeout_s}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def startup_parameters(self) -> dict[str, str]:
        parameters = {"user": self.user, "database": self.database}
        if self.application_name:
            parameters["application_name"] = self.application_name
        parameters.update(self.parameters)
        return parameters


@dataclass(frozen=True, slots=True)
class QueryResult:
    """One statement's answer to ``execute()``: its command tag and rows (as text)."""

    tag: str
    rows: tuple[tuple[str | None, ...], ...] = ()


class BackendConnection(ServerFields):
    """A logged-in server connection; see the module docstring. What its pool and its
    pooled client touch on every transaction (its transport and link, settings, age, last
    use, whether it broke) are `ServerFields`."""

    def __init__(
        self,
        spec: BackendSpec,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: p.BackendParser,
        state: p.SessionState,
        link: StreamLink | None = None,
    ) -> None:
        super().__init__(writer.transport, link, NO_SETTINGS, _monotonic())
        self.spec = spec
        self.reader = reader
        self.writer = writer
        self.parser = parser
        self.state = state

    # ------------------------------------------------------------------ login

    @classmethod
    async def connect(cls, spec: BackendSpec) -> BackendConnection:
        """Open and log in; raises ``BackendUnavailable`` (08006) when the server cannot be
        reached or drops the login, ``BackendRefused`` with the server's SQLSTATE when it
        answers with an error (28P01 wrong password, 3D000 no such database...)."""
        reader, writer, link = await _open_socket(
            spec, "the database server at {} is unreachable"
        )
        if spec.tls is not None:
            try:
                await asyncio.wait_for(
                    negotiate_tls(reader, writer, spec.tls, spec.host, spec.tls_optional),
                    spec.connect_timeout_s,
                )
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
                writer.close()
                raise BackendUnavailable(
                    f"dbsight proxy: TLS to the database server at {spec.address} failed",
                    detail=f"{type(exc).__name__}: {exc}",
                ) from exc
            except TlsRefused as exc:
                writer.close()
                raise BackendUnavailable(
                    f"dbsight proxy: the database server at {spec.address} does not accept "
                    "TLS, which upstream_tls requires"
                ) from exc
        conn = cls(
            spec,
            reader,
            writer,
            p.BackendParser(max_message_size=spec.max_message_size),
            p.SessionState(),
            link,
        )
        try:
            await asyncio.wait_for(conn._login(), spec.connect_timeout_s)
        except TimeoutError as exc:
            await conn.close()
            raise BackendUnavailable(
                f"dbsight proxy: the database server at {spec.address} did not complete the"
                f" login within {spec.connect_timeout_s:g} s"
            ) from exc
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _login(self) -> None:
        startup = p.StartupMessage(self.spec.startup_parameters())
        self.state.client_message(startup)
        self.writer.write(p.encode(startup))
        login = UpstreamLogin(self.spec.user, self.spec.password)
        while True:
            frame = await self._next_frame()
            message = self._decode(frame)
            if frame.type == b"R":
                try:
                    reply = login.receive(frame.body or b"")
                except AuthenticationFailed as exc:
                    raise BackendRefused(exc.message, exc.sqlstate, detail=exc.detail) from exc
                if reply is not None:
                    self.writer.write(p.encode(p.PasswordMessage(reply[1])))
                    await self.writer.drain()
            elif type(message) is p.ErrorResponse:
                raise BackendRefused.from_error(message)
            try:
                self.state.server_message(message)
            except p.ProtocolError as exc:
                raise self._broke("the server's login does not follow the protocol", exc) from exc
            if type(message) is p.ReadyForQuery:
                if not login.done or self.state.backend_pid is None:
                    raise BackendUnavailable(
                        "dbsight proxy: the server ended the login without authenticating"
                        " or without a cancel key",
                        p.PROTOCOL_VIOLATION,
                    )
                return

    # ------------------------------------------------------------------ what callers read

    @property
    def parameters(self) -> dict[str, str]:
        """The server's ParameterStatus values (server_version, TimeZone, ...)."""
        return self.state.server_parameters

    @property
    def key(self) -> p.BackendKeyData:
        """pid and secret key, for a CancelRequest."""
        pid, secret = self.state.backend_pid, self.state.backend_secret_key
        assert pid is not None and secret is not None  # connect() checked both
        return p.BackendKeyData(pid, secret)

    @property
    def pid(self) -> int:
        return self.key.pid

    @property
    def usable(self) -> bool:
        """Not closed or broken, the socket still open as far as asyncio knows, and no
        ErrorResponse waiting unread (the server said FATAL while the connection was idle:
        a shutdown or an administrator's pg_terminate_backend, its EOF not seen yet)."""
        # (the reader's state is read from its private fields, only looked at: this runs
        # twice per pooled transaction, and StreamReader's accessors are Python calls)
        reader: Any = self.reader
        buffer = reader._buffer
        return not (
            self.closed
            or self.broken
            or self.transport.is_closing()
            or (reader._eof and not buffer)  # at_eof()
            or reader._exception is not None
            or buffer[:1] == b"E"
        )

    @property
    def resettable(self) -> bool:
        """Between request cycles (a transaction may be open): ``reset()`` can bring it back."""
        state = self.state
        return (
            self.usable
            and state.transaction_status is not None
            and not state.pending
            and not state.in_pipeline
            and state.copy_mode is p.CopyMode.NONE
        )

    def idle_for(self, now: float | None = None) -> float:
        return (_monotonic() if now is None else now) - self.last_used_at

    def age(self, now: float | None = None) -> float:
        return (_monotonic() if now is None else now) - self.created_at

    # ------------------------------------------------------------------ statements of its own

    async def execute(
        self,
        sql: str,
        on_notification: Callable[[p.NotificationResponse], None] | None = None,
    ) -> list[QueryResult]:
        """Run ``sql`` with the simple protocol; one result per statement. NOTIFYs the
        connection receives meanwhile go to ``on_notification`` (else they are dropped).

        Raises ``BackendQueryError`` (after the server's ReadyForQuery: the connection stays
        usable) when a statement fails, ``BackendUnavailable`` when the connection breaks.
        """
        self._check_between_requests()
        query = p.Query(sql)
        self.state.client_message(query)
        await self._send(p.encode(query))
        return await self._read_cycle(on_notification)

    async def send_query(self, sql: str) -> None:
        """Send ``sql`` (simple protocol) without reading the answer: for a connection whose
        answers a reader of its own takes with `receive` (the LISTEN connection)."""
        query = p.Query(sql)
        self.state.client_message(query)
        await self._send(p.encode(query))

    async def receive(self) -> p.BackendMessage:
        """The server's next message (tracked in ``state``); `BackendUnavailable` when the
        connection breaks."""
        message = self._decode(await self._next_frame())
        try:
            self.state.server_message(message)
        except p.ProtocolError as exc:
            raise self._broke("the server's answer does not match the request", exc) from exc
        return message

    def settle(self, status: int, between_requests: bool) -> None:
        """A client's requests were relayed over this connection by a tracker of their own
        (`dbsight.proxy._exchange`), which ended with ``status`` (a ReadyForQuery's status
        byte), every request answered or not: bring ``state`` in line before the pool
        resets or reuses the connection (one left mid-request is broken)."""
        if not between_requests:
            self.broken = True
            return
        self.state.transaction_status = p.TransactionStatus(chr(status))

    async def reset(self, full: bool = True) -> None:
        """Make the connection fit for another client: ROLLBACK if needed, then DISCARD ALL
        (``full``) or `LIGHT_RESET_QUERY`, which keeps prepared statements.

        Raises ``BackendUnavailable`` (and the connection is then broken) when it stopped in
        the middle of a request cycle or the server does not answer properly: close it.
        """
        if not self.resettable:
            self.broken = True
            raise BackendUnavailable(
                "dbsight proxy: server connection left mid-request or closed; it cannot be reused"
            )
        if self.state.transaction_status is not p.TransactionStatus.IDLE:
            await self.execute("ROLLBACK")
        self.settings = NO_SETTINGS  # (at once: a failed reset leaves them unknown too)
        if full:
            await self.execute(RESET_QUERY)
            self.prepared.clear()
        else:
            await self.execute(LIGHT_RESET_QUERY)
        if not self.state.at_rest:
            self.broken = True
            raise BackendUnavailable("dbsight proxy: server connection not idle after its reset")
        self.last_used_at = _monotonic()

    async def deallocate_oldest(self, keep: int) -> int:
        """Drop the statements prepared here longest ago (``prepared`` keeps the order they
        were prepared in), all but the ``keep`` newest, with one Query of DEALLOCATEs; how
        many went. A client that runs one of them again gets it prepared again, as on any
        connection that lacks it. Raises as `execute` does (a statement the server did not
        have fails the Query: the connection is then to be reset or closed)."""
        excess = len(self.prepared) - keep
        if excess <= 0:
            return 0
        names = list(itertools.islice(self.prepared, excess))
        quoted = ('"' + name.replace('"', '""') + '"' for name in names)
        await self.execute("; ".join(f"DEALLOCATE {name}" for name in quoted))
        for name in names:
            del self.prepared[name]
        return len(names)

    async def cancel(self) -> None:
        """Ask the server to cancel what this connection is running (best effort, as in libpq)."""
        await send_cancel(self.spec, self.key)

    async def close(self) -> None:
        """Say goodbye (Terminate) when the connection is healthy, then close the socket."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            if not self.broken and not self.writer.is_closing():
                self.writer.write(p.encode(p.Terminate()))
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    # ------------------------------------------------------------------ wire

    def _check_between_requests(self) -> None:
        if not self.resettable:
            if not self.usable:  # closed by the server (or its FATAL is waiting): for good
                self.broken = True
            raise BackendUnavailable("dbsight proxy: server connection is busy, broken or closed")

    async def _send(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await self.writer.drain()
        except OSError as exc:
            raise self._broke("the server connection failed", exc) from exc

    async def _read_cycle(
        self, on_notification: Callable[[p.NotificationResponse], None] | None = None
    ) -> list[QueryResult]:
        """Read answers up to ReadyForQuery; raise the first ErrorResponse, if any, after it."""
        results: list[QueryResult] = []
        rows: list[tuple[str | None, ...]] = []
        error: p.ErrorResponse | None = None
        while True:
            message = self._decode(await self._next_frame())
            try:
                self.state.server_message(message)
            except p.ProtocolError as exc:
                raise self._broke("the server's answer does not match the request", exc) from exc
            if isinstance(message, p.DataRow):
                rows.append(tuple(None if v is None else v.decode() for v in message.values))
            elif isinstance(message, p.CommandComplete):
                results.append(QueryResult(message.tag, tuple(rows)))
                rows = []
            elif isinstance(message, p.ErrorResponse):
                error = error or message
                if message.severity in ("FATAL", "PANIC"):
                    raise self._broke(f"the server ended the session: {message.message}")
            elif isinstance(message, p.NotificationResponse):
                if on_notification is not None:
                    on_notification(message)
            elif isinstance(message, p.CopyInResponse):
                fail = p.CopyFail("dbsight proxy: COPY FROM STDIN is not supported here")
                self.state.client_message(fail)
                await self._send(p.encode(fail))
            elif isinstance(message, p.ReadyForQuery):
                if error is not None:
                    raise BackendQueryError(error)
                return results

    async def _next_frame(self) -> p.Frame:
        parser = self.parser
        while True:
            try:
                frame = parser.next_frame()
            except p.ProtocolError as exc:
                raise self._broke("the server sent invalid protocol data", exc) from exc
            if frame is not None:
                return frame
            try:
                data = await self.reader.read(READ_SIZE)
            except OSError as exc:
                raise self._broke("the server connection failed", exc) from exc
            if not data:
                raise self._broke("the server closed the connection")
            parser.feed(data)

    def _decode(self, frame: p.Frame) -> p.BackendMessage:
        try:
            return self.parser.decode(frame)
        except p.ProtocolError as exc:
            raise self._broke("the server sent an invalid message", exc) from exc

    def _broke(self, what: str, cause: BaseException | None = None) -> BackendError:
        self.broken = True
        detail = None if cause is None else str(cause) or type(cause).__name__
        return BackendUnavailable(f"dbsight proxy: {what} ({self.spec.address})", detail=detail)


class TlsRefused(Exception):
    """The server answered an SSLRequest with 'N' where TLS is required."""


async def negotiate_tls(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: ssl.SSLContext,
    host: str,
    optional: bool,
) -> bool:
    """SSLRequest to a server just connected to; the TLS handshake when it answers 'S'.
    True: encrypted; False: it declined and ``optional`` allows plain text; `TlsRefused`
    when it declined and TLS is required."""
    writer.write(p.encode(p.SSLRequest()))
    await writer.drain()
    answer = await reader.readexactly(1)
    if answer == b"S":
        await writer.start_tls(context, server_hostname=host if context.check_hostname else None)
        return True
    if answer != b"N" or not optional:
        raise TlsRefused
    return False


async def send_cancel(spec: BackendSpec, key: p.BackendKeyData) -> None:
    """Send a CancelRequest for ``key`` on a connection of its own and wait for the server to
    hang up (PostgreSQL closes it once the request is handled)."""
    reader, writer, _ = await _open_socket(spec, "cannot reach {} to cancel a statement")
    try:
        writer.write(p.encode(p.CancelRequest(key.pid, key.secret_key)))
        await writer.drain()
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(reader.read(), spec.connect_timeout_s)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _open_socket(
    spec: BackendSpec, failure: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, StreamLink]:
    """A connection to the server (TCP, or a Unix socket when the host is a directory);
    ``BackendUnavailable`` (08006) saying ``failure`` (formatted with the address) when it
    cannot be made within the connect timeout."""
    try:
        return await asyncio.wait_for(open_link(spec.host, spec.port), spec.connect_timeout_s)
    except (TimeoutError, OSError) as exc:
        raise BackendUnavailable(
            f"dbsight proxy: {failure.format(spec.address)}",
            detail=str(exc) or type(exc).__name__,
        ) from exc
