"""`ClientLogin`: the proxy's side of a pooled client's login.

The proxy authenticates the client itself (``auth_type``: trust, or password, md5 or
SCRAM-SHA-256 checked by ``ClientAuthExchange`` against ``auth_file`` and/or ``auth_query``),
takes the client's startup settings (`_client_settings.wanted_settings`), finds the pools of
its database and user on the primary and each replica, and learns the ParameterStatus values
its settings give there (`ServerPools.login_parameters`). What that settled is a `LoggedIn`
for the session to compose; then the rest of the login is answered on the server's behalf
(`ClientLogin.answer`): AuthenticationOk came first, then the ParameterStatus values, a
BackendKeyData of the proxy's own and ReadyForQuery 'I'. A login the proxy refuses gets its
FATAL error (``refuse``) and None.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from . import protocol as p
from ._backend_errors import BackendQueryError
from ._client_settings import StartupSettingsError, wanted_settings
from ._config import ProxyConfig
from ._pool import BackendPool
from ._router import Router
from ._server_pools import PoolKey, ServerPools
from ._session import READ_SIZE
from .auth import AuthenticationFailed, ClientAuthExchange

logger = logging.getLogger("dbsight.proxy")

_INT32 = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """What a client's login settled: the pool of its database and user on the primary
    (``key``, ``pool``) and on each replica, the database's router (with replicas), the
    settings its server connections must have (``wanted``) and the ParameterStatus values
    it is told."""

    database: str
    key: PoolKey
    pool: BackendPool
    replicas: dict[str, BackendPool]
    router: Router | None
    wanted: Mapping[str, str]
    parameters: dict[str, str]


class ClientLogin:
    """One client's login (see the module docstring): its messages come from ``reader``
    through ``frontend``, the proxy's answers go to ``writer``, and ``refuse`` sends a
    refusal (a FATAL error)."""

    __slots__ = ("client_addr", "config", "frontend", "pools", "reader", "refuse", "writer")

    def __init__(
        self, config: ProxyConfig, pools: ServerPools, reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter, frontend: p.FrontendParser, client_addr: str | None,
        refuse: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self.config = config
        self.pools = pools
        self.reader = reader
        self.writer = writer
        self.frontend = frontend
        self.client_addr = client_addr
        self.refuse = refuse

    async def run(
        self, user: str | None, database: str | None, startup: Mapping[str, str]
    ) -> LoggedIn | None:
        """Authenticate the client and settle its login; None when it was refused."""
        if not user or not database:
            await self.refuse("28000", "no PostgreSQL user name specified in startup packet")
            return None
        if self.config.auth_type == "trust":
            self.writer.write(p.authentication_ok())
        elif not await self.authenticate(user, database):
            return None
        pools = self.pools
        try:
            wanted = pools.shared(wanted_settings(startup))
        except StartupSettingsError as exc:
            await self.refuse(exc.sqlstate, exc.message)
            return None
        key, pool = await pools.pool_for(database, user)
        router = pools.topology.router_for(database)
        replicas: dict[str, BackendPool] = {}
        for name in pools.topology.replica_names:
            _, replicas[name] = await pools.pool_for(database, user, name)
        try:
            parameters = await pools.login_parameters(key, pool, wanted)
        except BackendQueryError as exc:  # a startup setting the server refuses, as it would
            await self.refuse(exc.sqlstate, exc.message)
            return None
        parameters = {**parameters, "application_name": wanted["application_name"]}
        return LoggedIn(database, key, pool, replicas, router, wanted, parameters)

    async def answer(self, parameters: Mapping[str, str], key: p.BackendKeyData) -> None:
        """The rest of the login, on the server's behalf: the ParameterStatus values, the
        proxy's own BackendKeyData (what the client's CancelRequest carries), ReadyForQuery."""
        writer = self.writer
        for name, value in parameters.items():
            writer.write(p.parameter_status(name, value))
        writer.write(p.backend_key_data(key.pid, key.secret_key))
        writer.write(p.ready_for_query(p.TransactionStatus.IDLE))
        await writer.drain()

    async def authenticate(self, user: str, database: str) -> bool:
        """The client proves it is ``user`` (``auth_type``); False when it was refused."""
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
                frame = await self._next_frame()
                if frame.type != b"p":
                    raise p.ProtocolViolation(
                        f"expected a password message, got message type {frame.type!r}"
                    )
                replies = exchange.receive(frame.body or b"")
        except AuthenticationFailed as exc:
            logger.info("dbsight proxy: client %s: %s", self.client_addr, exc)
            await self.refuse(exc.sqlstate, exc.message)
            return False

    async def _next_frame(self) -> p.Frame:
        while (frame := self.frontend.next_frame()) is None:
            data = await self.reader.read(READ_SIZE)
            if not data:
                raise asyncio.IncompleteReadError(b"", None)
            self.frontend.feed(data)
        return frame
