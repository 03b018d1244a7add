"""Transaction pooling (``pool_mode = "transaction"``): a client holds a server connection only
while it has a transaction, or a request cycle, in progress.

The proxy authenticates the client itself (``auth_type``: trust, or password, md5 or
SCRAM-SHA-256 checked by ``ClientAuthExchange`` against ``auth_file`` and/or ``auth_query``),
then answers the rest of the login on the server's behalf: AuthenticationOk, the server's
ParameterStatus values (learned from the pool's connections), a BackendKeyData of the proxy's
own (registered, so a CancelRequest carrying it reaches whichever server connection runs the
client's statement at that moment) and ReadyForQuery 'I'.

Then, per transaction: the client's first message after being idle takes a connection from the
`BackendPool` of (database, user, startup settings) — waiting at most ``pool_timeout_s``, after
which the client gets FATAL 53300 — and both directions are relayed and observed exactly as in
session mode (same `StatementObserver`, same `SessionState`-driven completions, fed into the
borrowed connection's own state). When the server's ReadyForQuery says 'I' and nothing else is
in flight (``state.at_rest``), the connection goes back to the pool, which resets it.

Named prepared statements keep working. Each client's Parse messages are remembered (name ->
query, parameter types); names are per client, so on the server they are prefixed with the
client's id (asyncpg's ``__asyncpg_stmt_1__`` of two clients are two statements). Before a Bind
or Describe of a statement the borrowed connection does not hold (it was parsed during another
transaction, maybe on another connection), its Parse is injected ahead of it
(``BackendConnection.prepare_messages``) and the server's ParseComplete for it swallowed, so
the client sees exactly the replies to its own messages. A client's Close of a statement is
always forwarded (renamed): PostgreSQL answers CloseComplete even for a statement it does not
have, so the reply comes in the right place without the proxy inventing one.

What cannot survive pooling, as with PgBouncer's transaction mode: every release resets the
connection (ROLLBACK if needed, then DISCARD ALL), so session state set outside a transaction —
``SET`` (use ``SET LOCAL`` or startup options), ``LISTEN``, session advisory locks, temporary
tables, cursors WITH HOLD, SQL-level ``PREPARE`` — does not outlive the transaction, and never
reaches another client. Other limits: the unnamed statement lives only while the connection
is held (clients send it in the cycle that uses it); SQL ``DEALLOCATE name`` of a protocol
statement is not translated (``DEALLOCATE ALL`` / ``DISCARD ALL`` are: they clear the client's
statements); the client's startup settings other than ``application_name`` pick the pool, so
clients that differ in them do not share connections; TLS towards the server is not supported
in this mode yet.

Statements are timed from the client's first message, so a wait for a connection counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import re
import secrets
import ssl
import struct
import time
from types import MappingProxyType
from typing import Any

from ..core._settings import ConfigError
from . import protocol as p
from ._backend import BackendConnection, BackendSpec
from ._backend_errors import BackendError
from ._config import ProxyConfig
from ._pool import BackendPool
from ._session import (
    _BACKEND_DECODED,
    _FRONTEND_DECODED,
    READ_SIZE,
    FrontendSession,
    statements_running,
)
from .auth import (
    AuthenticationFailed,
    AuthQuery,
    AuthQueryError,
    ClientAuthExchange,
    Credential,
    CredentialKind,
    UsersFile,
    UsersFileError,
)

logger = logging.getLogger("dbsight.proxy")

_perf_counter = time.perf_counter
_INT32 = struct.Struct(">i")
# Startup parameters that do not select a pool: who and where, and the client's own name.
_NOT_POOL_SETTINGS = frozenset(("user", "database", "application_name"))
_MAX_NAME_BYTES = 63  # NAMEDATALEN - 1: longer statement names collide in the server
_FORGET_ALL_TAGS = frozenset(("DEALLOCATE ALL", "DISCARD ALL"))
_PARAMETER_PLACEHOLDER = re.compile(r"\$1(?!\d)")

PoolKey = tuple[str, str, tuple[tuple[str, str], ...]]


def _literal(text: str) -> str:
    """``text`` as an escape-string literal: safe whatever standard_conforming_strings says."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


class ServerPools:
    """The proxy-wide side of transaction pooling: one `BackendPool` per (database, user,
    startup settings), the client credentials, and the cancel keys handed to clients."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.upstream = config.upstream_server
        try:
            self.users = UsersFile.load(config.auth_file) if config.auth_file else None
        except UsersFileError as exc:
            raise ConfigError(f"invalid proxy configuration: auth_file: {exc}") from None
        self.auth_query = AuthQuery(config.auth_query) if config.auth_query else None
        self._pools: dict[PoolKey, BackendPool] = {}
        self._parameters: dict[PoolKey, dict[str, str]] = {}
        self._sessions: dict[tuple[int, bytes], PooledSession] = {}
        self._client_ids = 0
        self._closed = False

    # -- pools ---------------------------------------------------------------------------
    async def pool_for(
        self, database: str, user: str, settings: dict[str, str]
    ) -> tuple[PoolKey, BackendPool]:
        key: PoolKey = (database, user, tuple(sorted(settings.items())))
        pool = self._pools.get(key)
        if pool is None:
            config = self.config
            spec = BackendSpec(
                host=self.upstream.host,
                port=self.upstream.port,
                user=user,
                database=database,
                password=self.backend_password(user),
                parameters=MappingProxyType(dict(settings)),
                connect_timeout_s=config.connect_timeout_s,
                max_message_size=config.max_message_size,
            )
            pool = BackendPool(
                spec,
                min_size=config.pool_min_size,
                max_size=config.pool_size,
                acquire_timeout_s=config.pool_timeout_s,
                idle_timeout_s=config.idle_timeout_s,
                max_lifetime_s=config.max_lifetime_s,
            )
            self._pools[key] = pool
            await pool.start()
        return key, pool

    def backend_password(self, user: str) -> str | None:
        """The users file's plaintext password of ``user``, else the upstream URL's."""
        credential = self.users.lookup(user) if self.users is not None else None
        if credential is not None and credential.kind is CredentialKind.PLAINTEXT:
            return credential.secret
        return self.upstream.password

    async def server_parameters(self, key: PoolKey, pool: BackendPool) -> dict[str, str]:
        """The server's ParameterStatus values for this pool (learned once, from a connection)."""
        known = self._parameters.get(key)
        if known is None:
            async with pool.connection() as conn:
                known = self._parameters[key] = dict(conn.parameters)
        return known

    def stats(self) -> list[dict[str, Any]]:
        return [{"mode": "transaction", **pool.stats()} for pool in list(self._pools.values())]

    async def close(self) -> None:
        self._closed = True
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(pool.close() for pool in pools), return_exceptions=True)

    # -- credentials -------------------------------------------------------------------------
    async def credential(self, user: str, database: str) -> Credential | None:
        """``user``'s secret from the users file, else from the auth query; None: unknown."""
        if self.users is not None:
            found = self.users.lookup(user)
            if found is not None or self.auth_query is None:
                return found
        if self.auth_query is None:
            return None
        auth_user = self.upstream.user or user
        _, pool = await self.pool_for(database, auth_user, {})
        sql = _PARAMETER_PLACEHOLDER.sub(_literal(user), self.auth_query.sql)
        async with pool.connection() as conn:
            results = await conn.execute(sql)
        try:
            return self.auth_query.credential(user, results[-1].rows if results else ())
        except AuthQueryError as exc:
            logger.warning("dbsight proxy: auth_query for user %r: %s", user, exc)
            return None

    # -- cancel keys and client ids -----------------------------------------------------------
    def next_client_id(self) -> int:
        self._client_ids += 1
        return self._client_ids

    def register(self, session: PooledSession) -> p.BackendKeyData:
        """A BackendKeyData of the proxy's own for ``session`` (what its CancelRequest carries)."""
        while True:
            key = p.BackendKeyData(secrets.randbelow(2**31 - 2) + 1, secrets.token_bytes(4))
            if (key.pid, key.secret_key) not in self._sessions:
                self._sessions[(key.pid, key.secret_key)] = session
                return key

    def unregister(self, key: p.BackendKeyData) -> None:
        self._sessions.pop((key.pid, key.secret_key), None)

    def session_for(self, pid: int, secret_key: bytes) -> PooledSession | None:
        return self._sessions.get((pid, bytes(secret_key)))


class PooledSession(FrontendSession):
    """One client in transaction-pooling mode; see the module docstring."""

    def __init__(
        self,
        config: ProxyConfig,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pools: ServerPools,
        *,
        client_tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(config, reader, writer, client_tls=client_tls)
        self.pools = pools
        self.client_id = pools.next_client_id()
        self._prefix = f"_dbs{self.client_id}_"
        self.statements: dict[str, tuple[str, tuple[int, ...]]] = {}  # name -> query, types
        self._backend_names: dict[str, str] = {}
        self._settings: dict[str, str] = {}
        self.pool: BackendPool | None = None
        self.conn: BackendConnection | None = None  # the server connection held now, if any
        self.key: p.BackendKeyData | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._injected: set[int] = set()  # id(PendingRequest) of the Parse/Close added here
        # id(Parse request) -> (client's name, server's name, sent by the client itself)
        self._parses: dict[int, tuple[str, str, bool]] = {}

    # -- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        try:
            if await self._startup() is None or not await self._login():
                return
            self.info.state = "idle"
            await self._client_loop()
        except p.ProtocolError as exc:
            await self._refuse(exc.sqlstate, exc.message)
        except BackendError as exc:  # no server connection for this client (53300, 08006...)
            await self._refuse(exc.sqlstate, exc.message)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.info.state = "closed"
            await self._finish()

    def request_shutdown(self) -> None:
        """End now when idle, otherwise when the transaction ends (the connection's release)."""
        self._shutting_down = True
        if self.conn is None:
            self._end_for_shutdown()

    async def cancel_running(self) -> None:
        """A CancelRequest with this session's key: cancel on the connection it holds, if a
        statement is running there (never on one already handed to someone else)."""
        conn = self.conn
        if conn is not None and statements_running(conn.state):
            with contextlib.suppress(BackendError):
                await conn.cancel()

    async def _finish(self) -> None:
        if self.key is not None:
            self.pools.unregister(self.key)
        conn, self.conn = self.conn, None
        task = self._server_task
        if conn is not None:
            if task is not None:
                task.cancel()
            if statements_running(conn.state):  # the client left mid-statement: stop it
                with contextlib.suppress(BackendError):
                    await conn.cancel()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        if conn is not None and self.pool is not None:
            with contextlib.suppress(BackendError):
                await self.pool.release(conn)  # reset, or closed when it cannot be trusted
        if self.observer is not None:
            self.observer.abandoned()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    # -- startup and login ------------------------------------------------------------------
    def _startup_received(self, message: p.StartupMessage) -> None:
        self._settings = {
            name: value
            for name, value in message.parameters.items()
            if name not in _NOT_POOL_SETTINGS
        }

    async def _cancel_request(self, message: p.CancelRequest, raw: bytes) -> None:
        target = self.pools.session_for(message.pid, message.secret_key)
        if target is not None:
            await target.cancel_running()

    async def _login(self) -> bool:
        """Authenticate the client and answer its login; False when it was refused."""
        user, database = self.info.user, self.info.database
        if not user or not database:
            await self._refuse("28000", "no PostgreSQL user name specified in startup packet")
            return False
        if self.config.auth_type == "trust":
            self.writer.write(p.authentication_ok())
        elif not await self._authenticate(user, database):
            return False
        key, self.pool = await self.pools.pool_for(database, user, self._settings)
        parameters = await self.pools.server_parameters(key, self.pool)
        own = {"application_name": self.info.application_name or ""}
        for name, value in {**parameters, **own}.items():
            self.writer.write(p.parameter_status(name, value))
        self.key = self.pools.register(self)
        self.writer.write(p.backend_key_data(self.key.pid, self.key.secret_key))
        self.writer.write(p.ready_for_query(p.TransactionStatus.IDLE))
        await self.writer.drain()
        return True

    async def _authenticate(self, user: str, database: str) -> bool:
        credential = await self.pools.credential(user, database)
        exchange = ClientAuthExchange(user, credential, method=self.config.auth_type)
        replies = exchange.start()
        try:
            while True:
                for type_, payload in replies:
                    self.writer.write(type_ + _INT32.pack(len(payload) + 4) + payload)
                await self.writer.drain()
                if exchange.done:
                    return True
                frame = await self._next_client_frame()
                if frame.type != b"p":
                    raise p.ProtocolViolation(
                        f"expected a password message, got message type {frame.type!r}"
                    )
                replies = exchange.receive(frame.body or b"")
        except AuthenticationFailed as exc:
            logger.info("dbsight proxy: client %s: %s", self.client_addr, exc)
            await self._refuse(exc.sqlstate, exc.message)
            return False

    async def _next_client_frame(self) -> p.Frame:
        while (frame := self.frontend.next_frame()) is None:
            data = await self.reader.read(READ_SIZE)
            if not data:
                raise asyncio.IncompleteReadError(b"", None)
            self.frontend.feed(data)
        return frame

    # -- client -> server -------------------------------------------------------------------
    async def _client_loop(self) -> None:
        frontend = self.frontend
        while True:
            data = await self.reader.read(READ_SIZE)
            if not data:
                return
            at = _perf_counter()
            frontend.feed(data)
            out: list[bytes] = []
            conn = self.conn
            frames = []
            while (frame := frontend.next_frame()) is not None:
                frames.append(frame)
            if conn is None and self._answer_prepares(frames):
                await self.writer.drain()
                continue
            for frame in frames:
                if frame.type == b"X":  # Terminate: the server connection stays in the pool
                    await self._send(conn, out)
                    return
                if conn is None:  # only ever here with nothing in `out` (see _acquire)
                    if frame.type == b"H":
                        continue  # a Flush between transactions: nothing to flush
                    conn = await self._acquire()
                self._relay_client_frame(conn, frame, out, at)
            await self._send(conn, out)

    def _answer_prepares(self, frames: list[p.Frame]) -> bool:
        """Answer a bare prepare (named Parse messages, then Sync) from a client between
        transactions without a server connection: the statement is remembered and prepared
        on whichever connection first runs it, as every statement is here. A client that
        prepares with a blocking call on a thread that also drives the clients holding every
        server connection (pgbench -M prepared) would otherwise wait for itself. A mistake in
        the statement is reported when it is first used, not at the prepare."""
        if len(frames) < 2 or frames[-1].type != b"S":
            return False
        parses = []
        for frame in frames[:-1]:
            if frame.type != b"P":
                return False
            message = self.frontend.decode(frame)
            if not message.name or message.name in self.statements:
                return False  # the unnamed statement, or the server's "already exists"
            parses.append(message)
        for message in parses:
            self.statements[message.name] = (message.query, message.param_types)
        self.writer.write(
            p.encode(p.ParseComplete()) * len(parses) + p.ready_for_query(p.TransactionStatus.IDLE)
        )
        return True

    async def _acquire(self) -> BackendConnection:
        """A server connection for the transaction that starts; BackendError (53300 after
        pool_timeout_s) ends the session. Releases happen only while this loop awaits, so
        `out` is always empty when a new connection is taken."""
        assert self.pool is not None
        conn = await self.pool.acquire(self.config.pool_timeout_s)
        self.conn = conn
        self.info.state = "active"
        self._server_task = asyncio.create_task(self._server_loop(conn))
        return conn

    async def _send(self, conn: BackendConnection | None, out: list[bytes]) -> None:
        if conn is None or not out:
            return
        conn.writer.write(b"".join(out))
        await conn.writer.drain()

    def _relay_client_frame(
        self, conn: BackendConnection, frame: p.Frame, out: list[bytes], at: float
    ) -> None:
        if frame.type not in _FRONTEND_DECODED or frame.type == b"H":
            # CopyData and the like: as received. Flush too, and not shown to the state: it
            # asks for no answer and opens nothing, but SessionState counts it as an unsynced
            # pipeline, which would keep the connection from ever being at rest after a
            # client's Sync + Flush (psycopg's pipeline mode sends that).
            out.append(frame.raw or b"")
            return
        message = original = self.frontend.decode(frame)
        recorded: str | None = None  # server name of a statement this Parse records
        if isinstance(message, p.Parse) and message.name:
            parsed_name = message.name
            message, recorded = self._client_parse(conn, message)
        elif isinstance(message, p.Bind) and message.statement:
            message = dataclasses.replace(
                message, statement=self._ensure_prepared(conn, message.statement, out, at)
            )
        elif isinstance(message, p.Describe) and message.kind == "S" and message.name:
            message = dataclasses.replace(
                message, name=self._ensure_prepared(conn, message.name, out, at)
            )
        elif isinstance(message, p.Close) and message.kind == "S" and message.name:
            message = self._client_close(conn, message)
        out.append(p.encode(message) if message is not original else frame.raw or b"")
        state = conn.state
        before = _last(state) if recorded is not None else None
        try:
            self._observe_request(state, message, frame.type, at)
        except Exception as exc:  # the observer's failure, never the relay's
            self._stop_observing("client message", exc)
        if recorded is not None:
            request = _last(state)
            if request is None or request is before:  # the server will skip it (error before)
                conn.forget_prepared(recorded)
                self.statements.pop(parsed_name, None)
            else:
                self._parses[id(request)] = (parsed_name, recorded, True)

    def _client_parse(self, conn: BackendConnection, message: p.Parse) -> tuple[p.Parse, str | None]:
        name = message.name
        self.statements[name] = (message.query, message.param_types)
        backend = self._backend_name(name)
        recorded = None
        if backend not in conn.prepared:  # else the server answers "already exists", as it should
            conn.prepare_messages(backend, message.query, message.param_types)  # records it
            recorded = backend
        return dataclasses.replace(message, name=backend), recorded

    def _client_close(self, conn: BackendConnection, message: p.Close) -> p.Close:
        """Forgotten here and on this connection; forwarded, since PostgreSQL answers
        CloseComplete for a statement it does not have, in the right place."""
        self.statements.pop(message.name, None)
        backend = self._backend_name(message.name)
        conn.forget_prepared(backend)
        return dataclasses.replace(message, name=backend)

    def _ensure_prepared(
        self, conn: BackendConnection, name: str, out: list[bytes], at: float
    ) -> str:
        """The server name of the client's statement ``name``, with its Parse injected into
        ``out`` when ``conn`` does not hold it yet."""
        backend = self._backend_name(name)
        entry = self.statements.get(name)
        if entry is None:
            return backend  # never parsed: the server says it does not exist
        state = conn.state
        for message in conn.prepare_messages(backend, entry[0], entry[1]):
            before = _last(state)
            state.client_message(message, at)
            out.append(p.encode(message))
            request = _last(state)
            if request is None or request is before:  # skipped by the server after an error
                conn.forget_prepared(backend)
                continue
            self._injected.add(id(request))
            if type(message) is p.Parse:
                self._parses[id(request)] = (name, backend, False)
        return backend

    def _backend_name(self, name: str) -> str:
        backend = self._backend_names.get(name)
        if backend is None:
            backend = self._prefix + name
            if len(backend.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES:
                digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()
                backend = self._prefix + digest[: _MAX_NAME_BYTES - len(self._prefix)]
            self._backend_names[name] = backend
        return backend

    # -- server -> client -------------------------------------------------------------------
    async def _server_loop(self, conn: BackendConnection) -> None:
        """Relay ``conn``'s answers until the transaction ends, then give ``conn`` back."""
        try:
            await self._relay_server(conn)
        except (BackendError, p.ProtocolError, OSError, asyncio.IncompleteReadError) as exc:
            conn.broken = True
            sqlstate = exc.sqlstate if isinstance(exc, (BackendError, p.ProtocolError)) else "08006"
            logger.warning("dbsight proxy: server connection failed mid-transaction: %s", exc)
            with contextlib.suppress(Exception):
                self.writer.write(p.error_response(
                    sqlstate, "dbsight proxy: the server connection failed", "FATAL",
                    detail=str(exc) or type(exc).__name__,
                ))
            self.writer.close()  # the client loop sees the end and the session finishes

    async def _relay_server(self, conn: BackendConnection) -> None:
        parser, state, writer = conn.parser, conn.state, self.writer
        at = _perf_counter()
        while True:
            out: list[bytes] = []
            done = False
            while (frame := parser.next_frame()) is not None:
                raw = frame.raw or b""
                if frame.type not in _BACKEND_DECODED:  # DataRow, CopyData, notices
                    out.append(raw)
                    continue
                message = parser.decode(frame)
                if self._server_message(conn, message, at):
                    out.append(raw)
                if type(message) is p.ReadyForQuery and state.at_rest:
                    done = True  # later bytes, if any, belong to whoever reads next
                    break
            if out:
                writer.write(b"".join(out))
            if done:
                self._injected.clear()
                self._parses.clear()
                self.conn = None
                self.info.state = "idle"
                await writer.drain()
                assert self.pool is not None
                await self.pool.release(conn)
                if self._shutting_down:
                    self._end_for_shutdown()
                return
            await writer.drain()
            data = await conn.reader.read(READ_SIZE)
            if not data:
                raise asyncio.IncompleteReadError(b"", None)
            at = _perf_counter()
            parser.feed(data)

    def _server_message(self, conn: BackendConnection, message: Any, at: float) -> bool:
        """Update ``conn``'s state and the observation; False to swallow ``message`` (the
        answer to a Parse or Close the proxy injected)."""
        kind = type(message)
        head: p.PendingRequest | None = None
        if (self._injected or self._parses) and kind in _ANSWERS:
            pending = conn.state.pending
            head = pending[0] if pending else None
        elif kind is p.ParameterStatus:
            self._note_server_parameter(message)
        completion = conn.state.server_message(message, at)  # a mismatch ends the session
        forward = True
        if head is not None:
            if kind is p.ErrorResponse:
                for request in (head, *(completion.skipped if completion is not None else ())):
                    self._injected.discard(id(request))
                    self._forget_parse(conn, id(request))
            else:
                forward = id(head) not in self._injected
                self._injected.discard(id(head))
                self._parses.pop(id(head), None)
        elif isinstance(message, p.CommandComplete) and message.tag in _FORGET_ALL_TAGS:
            self.statements.clear()
            for name in list(conn.prepared):
                conn.forget_prepared(name)
        self._report(completion)
        return forward

    def _forget_parse(self, conn: BackendConnection, request_id: int) -> None:
        """A Parse that failed or was skipped: the statement does not exist on the server."""
        entry = self._parses.pop(request_id, None)
        if entry is not None:
            client_name, backend, own = entry
            conn.forget_prepared(backend)
            if own:  # the client's own Parse: the statement does not exist for it either
                self.statements.pop(client_name, None)


_ANSWERS = frozenset((p.ParseComplete, p.CloseComplete, p.ErrorResponse))


def _last(state: p.SessionState) -> p.PendingRequest | None:
    pending = state.pending
    return pending[-1] if pending else None
