"""`ServerPools`: the proxy-wide side of pooling — one `BackendPool` per (server, database,
user), the LISTEN connections of transaction mode, the client credentials (users file, auth
query), the ParameterStatus values a login reports, and the cancel keys handed to clients.
Each client's session (`_pooled.PooledSession`) borrows from it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..core._settings import ConfigError
from ..sql._cache import LruMap
from . import protocol as p
from ._backend import BackendSpec
from ._backend_errors import BackendError
from ._client_settings import learn_parameters
from ._config import ProxyConfig
from ._listener import LISTEN_APPLICATION_NAME, ChannelListener
from ._pool import BackendPool
from ._reach import ReachBook
from ._result_cache import ResultCache
from ._session_state import literal
from ._topology import PRIMARY, Topology
from .auth import AuthQuery, AuthQueryError, Credential, CredentialKind, UsersFile, UsersFileError

if TYPE_CHECKING:
    from ._pooled import PooledSession

logger = logging.getLogger("dbsight.proxy")

PoolKey = tuple[str, str, str]  # server, database, user
_PARAMETER_PLACEHOLDER = re.compile(r"\$1(?!\d)")


class ServerPools:
    """The proxy-wide side of transaction pooling: one `BackendPool` per (server, database,
    user), the client credentials, and the cancel keys handed to clients."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.upstream = config.upstream_server
        try:
            self.users = UsersFile.load(config.auth_file) if config.auth_file else None
        except UsersFileError as exc:
            raise ConfigError(f"invalid proxy setting auth_file: {exc}") from None
        self.auth_query = AuthQuery(config.auth_query) if config.auth_query else None
        self.topology = Topology(config)
        self.cache = (
            ResultCache(config.cache, max_bytes=config.cache_max_bytes) if config.cache else None
        )
        # what writes reach besides their tables (views, partitions, cascades, triggers)
        self.reach = ReachBook() if config.cache else None
        self._upstream_tls = config.upstream_tls_context()
        self._pools: dict[PoolKey, BackendPool] = {}
        # ParameterStatus values for a client's login, by pool and settings (name aside)
        self._parameters: LruMap[tuple[PoolKey, tuple[tuple[str, str], ...]], dict[str, str]]
        self._parameters = LruMap(256)
        self._settings: LruMap[tuple[tuple[str, str], ...], Mapping[str, str]] = LruMap(256)
        self._sessions: dict[tuple[int, bytes], PooledSession] = {}
        self._listeners: dict[tuple[str, str], ChannelListener] = {}  # by database, user
        self._client_ids = 0
        # transactions that ran DDL so far: part of prepared statements' server names
        self.catalog_generation = 0
        self._closed = False

    # -- pools ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.topology.start()

    async def pool_for(
        self, database: str, user: str, server: str = PRIMARY
    ) -> tuple[PoolKey, BackendPool]:
        """The pool of (database, user) on ``server`` (a name of the topology: "primary",
        "replica1"...)."""
        key: PoolKey = (server, database, user)
        pool = self._pools.get(key)
        if pool is None:
            config = self.config
            address = self.topology.servers[server]
            spec = BackendSpec(
                host=address.host,
                port=address.port,
                user=user,
                database=database,
                password=self.backend_password(user),
                connect_timeout_s=config.connect_timeout_s,
                max_message_size=config.max_message_size,
                tls=self._upstream_tls,
                tls_optional=config.upstream_tls == "prefer",
            )
            pool = BackendPool(
                spec,
                min_size=config.pool_min_size,
                max_size=config.pool_size,
                acquire_timeout_s=config.pool_timeout_s,
                idle_timeout_s=config.idle_timeout_s,
                max_lifetime_s=config.max_lifetime_s,
                max_prepared=config.max_prepared_statements,
                name=f"{user}@{database}" + ("" if server == PRIMARY else f"/{server}"),
            )
            self._pools[key] = pool
            await pool.start()
        return key, pool

    def listener_for(self, database: str, user: str) -> ChannelListener:
        """The LISTEN connection of (database, user) on the primary (transaction mode)."""
        listener = self._listeners.get((database, user))
        if listener is None:
            pool = self._pools[(PRIMARY, database, user)]
            spec = replace(pool.spec, application_name=LISTEN_APPLICATION_NAME)
            listener = ChannelListener(spec, f"{user}@{database}")
            self._listeners[(database, user)] = listener
        return listener

    def listener_stats(self) -> list[dict[str, Any]]:
        """Each LISTEN connection's channels (how many clients listen to each)."""
        return [
            {"name": listener.name, "channels": listener.channels,
             "delivered": listener.delivered}
            for listener in list(self._listeners.values())
        ]  # fmt: skip

    def backend_password(self, user: str) -> str | None:
        """The users file's plaintext password of ``user``, else the upstream URL's."""
        credential = self.users.lookup(user) if self.users is not None else None
        if credential is not None and credential.kind is CredentialKind.PLAINTEXT:
            return credential.secret
        return self.upstream.password

    async def login_parameters(
        self, key: PoolKey, pool: BackendPool, settings: Mapping[str, str]
    ) -> dict[str, str]:
        """The ParameterStatus values a client whose settings are ``settings`` gets at login:
        what a connection of ``pool`` reports once it has them (learned once per pool and
        settings, the client's name aside). Raises `BackendQueryError` when the server refuses
        a setting: the client's login fails with its error, as it would on the server."""
        shape = (key, tuple(sorted(
            (name, value) for name, value in settings.items() if name != "application_name"
        )))  # (the client's own name is told as it gave it)
        known = self._parameters.get(shape)
        if known is None:
            conn = await pool.acquire()
            try:
                known = await learn_parameters(conn, settings)
            except BaseException:
                with contextlib.suppress(BackendError):
                    await pool.release(conn)  # settings half applied: reset
                raise
            pool.release_clean(conn)
            self._parameters.put(shape, known)
        return known

    def shared(self, settings: dict[str, str]) -> Mapping[str, str]:
        """``settings``, or an equal mapping another client logged in with: clients with the
        same settings share one object, so a connection one of them left needs no look at
        its settings for the next (an identity check, in `ClientSettings.give`)."""
        key = tuple(sorted(settings.items()))
        known = self._settings.get(key)
        if known is None:
            known = settings
            self._settings.put(key, known)
        return known

    def stats(self) -> list[dict[str, Any]]:
        mode = self.config.pool_mode
        return [{"mode": mode, **pool.stats()} for pool in list(self._pools.values())]

    def outstanding(self, server: str) -> int:
        """Server connections lent out or waited for on ``server`` (least-outstanding
        balancing between replicas)."""
        return sum(
            pool.in_use + pool.waiting for key, pool in self._pools.items() if key[0] == server
        )

    async def close(self) -> None:
        self._closed = True
        await self.topology.close()
        if self.reach is not None:
            await self.reach.close()
        pools, self._pools = list(self._pools.values()), {}
        listeners, self._listeners = list(self._listeners.values()), {}
        await asyncio.gather(
            *(pool.close() for pool in pools), *(listener.close() for listener in listeners),
            return_exceptions=True,
        )

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
        _, pool = await self.pool_for(database, auth_user)
        sql = _PARAMETER_PLACEHOLDER.sub(literal(user), self.auth_query.sql)
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

