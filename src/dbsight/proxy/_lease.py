"""`Lease`: the server connection one pooled client holds, from taking it to giving it back.

A unit takes a connection on its target (the primary, or a replica) from that server's pool:
at once when one is idle (`Lease.take`), else waiting for one with the client's bytes held
(`Lease.wait_for`: 53300 after ``pool_timeout_s``; a replica that has none sends the read to
the primary), its socket paused once some come meanwhile. The other waits of a session (a
lookup the router needs, on a connection borrowed for it: `Lease.resolve`; a rate limit)
hold the client the same way (`Lease.pause_for`). Attached, the connection's bytes go to the
session's relay, after what goes ahead of the unit: the client's settings the connection
lacks, and a start of transaction answered ahead.

Transaction mode's usual end (nothing to reset, the primary) parks the connection
(`BackendPool.park`): it stays relayed to the client, which takes it back for its next
transaction at no cost (`take_primary`, `take`), unless another client needed one meanwhile
(the pool detaches it from this one first: `_unpark`). What the server says to a parked
connection (a notice, a FATAL at shutdown) or its loss lets it go to the pool as if it had
been idle there (`let_go_parked`).

When the unit ends, `release_plan` decides what becomes of the connection from what the unit
left: given back to its pool (`give_back`: as it is, or reset first), handed to the LISTEN
connection first (a committed LISTEN), or kept (session mode: the client's own primary
connection, its state read again when the unit may have changed what routing needs).

The lease knows its session only through `LeaseHolder`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import struct
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ._backend import BackendConnection
from ._backend_errors import BackendError
from ._breaker import is_backend_failure
from ._client_settings import ClientSettings
from ._config import ProxyConfig
from ._exchange import SWALLOW_QUERY, Exchange, TrackingLost
from ._give_back import give_back
from ._health import parse_lsn
from ._link import StreamLink
from ._listen_statements import ListenOp
from ._metrics import routing_decisions
from ._pool import BackendPool
from ._router import Lookup
from ._session_info import SessionInfo
from ._session_routing import LSN_PENDING, SessionRouting
from ._session_state import read_session_state
from ._statement_names import StatementNames
from ._topology import PRIMARY, Topology

logger = logging.getLogger("dbsight.proxy")
_monotonic = time.monotonic

# What a session's state query may report that replica connections do not take from it.
_NOT_SESSION_SETTINGS = frozenset(("user", "database", "application_name"))


class Release(enum.Enum):
    """What becomes of a connection when its unit ends."""

    RELAYED = "relayed"  # session mode, pinned: the client's still, and still relayed
    KEPT = "kept"  # session mode: the client's still, idle until its next unit
    SYNCED = "synced"  # session mode: kept, once the proxy has read the session's state
    HANDED_OVER = "handed over"  # its LISTENs move to the LISTEN connection, then given back
    GIVEN_BACK = "given back"  # to its pool (`give_back`: as it is, or reset first)


def release_plan(*, own: bool, pinned: bool, changed: bool, by_lsn: bool,
                 listens: bool) -> Release:  # fmt: skip
    """What becomes of the connection whose unit ended. ``own``: it is the client's own
    primary connection (session mode); ``pinned``: the session holds state no replica can
    have; ``changed``: the unit may have changed the session state routing or the cache
    needs; ``by_lsn``: the position its write reached is needed (read-your-writes);
    ``listens``: the transaction committed LISTEN or UNLISTEN."""
    if own:
        if changed or by_lsn:
            return Release.SYNCED
        return Release.RELAYED if pinned else Release.KEPT
    return Release.HANDED_OVER if listens else Release.GIVEN_BACK


class LeaseHolder(Protocol):
    """What a `Lease` needs of its session: the exchange that reads the server's answers,
    the client's settings, and where the relay and the waits go on."""

    exchange: Exchange | None
    settings: ClientSettings

    def server_data(self, data: bytes) -> None:
        """Bytes from the server connection held."""

    def server_lost(self, exc: BaseException | None) -> None:
        """The server connection held closed."""

    def server_failed(self, exc: BaseException) -> None:
        """The server's bytes do not follow the protocol."""

    def client_data(self, data: bytes) -> None:
        """The client's bytes (``b""``: go on with those that waited)."""

    def went_idle(self) -> None:
        """A wait ended with no connection held: the client is between transactions."""

    def wait_failed(self, exc: BackendError) -> None:
        """No connection for the client (53300, 08006...): the session ends."""

    def ended(self) -> bool:
        """The session is over (or not relaying yet)."""

    def hand_over(
        self, conn: BackendConnection, exchange: Exchange, listens: list[ListenOp],
        give_back: Callable[[], None],
    ) -> Coroutine[Any, Any, None]:
        """Move the committed ``listens`` of ``conn`` to the LISTEN connection, then
        ``give_back``."""


class Lease:
    """The server connection one pooled client holds (see the module docstring)."""

    def __init__(
        self, holder: LeaseHolder, config: ProxyConfig, topology: Topology,
        routing: SessionRouting, statements: StatementNames, info: SessionInfo,
        background: set[asyncio.Task[Any]], *, cached: bool,
    ) -> None:
        self._holder = holder
        self._timeout = config.pool_timeout_s
        self._topology = topology
        self._routing = routing
        self._statements = statements
        self._info = info
        self._background = background
        self._cached = cached  # a result cache: session mode reads what a SET changes
        # Session mode: the client's own primary connection, held to the end of the session
        # (never reset in between); replicas are still borrowed per read.
        self.sticky = config.pool_mode == "session"
        self.own: BackendConnection | None = None
        self.pinned = False  # session state replicas lack: everything runs on `own`
        self.custom: set[str] = set()  # custom settings its statements may have set
        self.pool: BackendPool | None = None  # the primary's, once logged in
        self.replicas: dict[str, BackendPool] = {}
        self.conn: BackendConnection | None = None  # the server connection held now, if any
        # transaction mode, between transactions: the last one, clean and still relayed here,
        # taken back for the next transaction unless another client took it (`give_back_clean`)
        self.parked: BackendConnection | None = None
        self.target = PRIMARY  # ... and its server
        self.server_transport: Any = None
        self.begun = False  # a BEGIN the proxy answered ahead went to the server
        # a read a replica serves, as the client sent it, until its answer starts: asked
        # again of the primary if the replica goes away before that
        self.retry: bytes | None = None
        # the client's bytes held meanwhile: a task (`pause_for`), or the pool's wait that
        # calls back (`wait_for` on the primary in transaction mode)
        self.waiting: Any = None
        self.paused = False  # ... and its socket paused, once it sent some (`hold_client`)
        self._client_transport: Any = None
        self._client_reading: Any = None  # what pauses the client's reading: its transport,
        # or its `Receiver` while the relay reads the client's socket itself
        self._client_link: StreamLink | None = None
        # the holder's callbacks, bound once (`attach` runs for every unit)
        self._on_server_data: Callable[[bytes], None] = holder.server_data
        self._on_server_lost: Callable[[BaseException | None], None] = holder.server_lost
        self._unpark_here: Callable[[], None] = self._unpark  # (bound once: `give_back_clean`)
        self._came_here: Callable[..., None] = self._primary_came  # (and once: `wait_for`)
        self._on_client_data: Callable[[bytes], None] = holder.client_data  # after a wait
        self._ended: asyncio.Future[None] | None = None  # the holder's relay's end, once known
        self._settings: ClientSettings | None = None  # the holder's, once known (`relay_to`)

    def relay_to(
        self, client_transport: Any, client_link: StreamLink,
        server_data: Callable[[bytes], None] | None = None,
        client_data: Callable[[bytes], None] | None = None,
        ended: asyncio.Future[None] | None = None, settings: ClientSettings | None = None,
        client_reading: Any = None,
    ) -> None:
        """The client's side of the relay (once it is logged in); ``server_data`` and
        ``client_data``: where the server's bytes go, and the client's after a wait, when
        not to the holder's methods (`PlainRelay`); ``ended``: done when the relay ends
        (read in place of the holder's `ended`, once a wait ends); ``settings``: the
        holder's, as they are from now on (read in place of its ``settings``);
        ``client_reading``: what pauses the client's reading, when not its transport (its
        `dbsight.proxy._receiver.Receiver`)."""
        self._settings = settings
        self._client_transport = client_transport
        self._client_reading = client_transport if client_reading is None else client_reading
        self._client_link = client_link
        self._ended = ended
        if server_data is not None:
            self._on_server_data = server_data
        if client_data is not None:
            self._on_client_data = client_data

    @property
    def idle(self) -> bool:
        """No connection held, none waited for."""
        return self.conn is None and self.waiting is None

    def pool_of(self, target: str) -> BackendPool:
        if target == PRIMARY:
            assert self.pool is not None
            return self.pool
        return self.replicas[target]

    # -- taking a connection ---------------------------------------------------------------
    def take(self, target: str) -> BackendConnection | None:
        """A connection on ``target`` now, attached; None when all are busy (`wait_for`)."""
        if target == PRIMARY:
            if not self.sticky:
                return self.take_primary()
            conn = self.own
            if conn is None:
                conn = self.own = self.pool_of(target).try_acquire()
        else:
            conn = self.pool_of(target).try_acquire()
        if conn is not None:
            self.attach(conn, target)
        return conn

    def take_primary(self) -> BackendConnection | None:
        """`take` of the primary in transaction mode: the connection this client parked
        (still relayed here: no `attach`) unless the pool gave it to another client
        meanwhile or let it go, else an idle one of the pool, attached; None when all are
        busy."""
        pool = self.pool
        assert pool is not None
        conn = self.parked
        if conn is not None and pool.take_back(conn, self._unpark_here):  # (else `_unpark` ran)
            self.parked = None
            self.conn = conn  # (its target: the primary, as when it was parked)
            self._info.state = "active"
            settings = self._settings
            if settings is None:
                settings = self._holder.settings
            if self._routing.begin is not None or conn.settings is not settings.wanted:
                exchange = self._holder.exchange
                assert exchange is not None
                self._send_ahead(conn, PRIMARY, exchange, self.server_transport)
            return conn
        conn = pool.try_acquire()
        if conn is not None:
            self.attach(conn, PRIMARY)
        return conn

    def _unpark(self) -> None:
        """The pool takes the connection this client parked (another client needs it, or
        it is let go of): stop relaying it here."""
        conn = self.parked
        assert conn is not None and conn.link is not None and self._client_link is not None
        self.parked = None
        conn.link.stop_relay()
        self._client_link.paired = None
        self.server_transport = None

    def let_go_parked(self, data: bytes = b"") -> None:
        """The parked connection is let go of to its pool: the server said something to it
        between this client's transactions (``data``: kept for whoever takes it next, as
        if it had been idle in the pool), it was lost, or the client has gone."""
        conn, pool = self.parked, self.pool
        assert conn is not None and conn.link is not None and pool is not None
        self._unpark()
        if data:
            conn.link.data_received(data)  # (unrelayed now: to its stream reader)
        pool.unpark(conn)

    def wait_for(self, target: str) -> None:
        """Wait for a connection on ``target`` with the client's bytes held, then go on.
        Transaction mode's usual wait, for the primary, is the pool's called-back one
        (`BackendPool.wait`): with more clients than connections nearly every transaction
        waits, and a task per wait was a tenth of such a transaction's instructions."""
        if target == PRIMARY and not self.sticky:
            assert self.pool is not None
            self._info.state = "waiting"
            self.waiting = self.pool.wait(self._came_here, self._timeout)
            return
        self.pause_for(self._acquire(target))

    def _primary_came(self, conn: BackendConnection | None, error: BackendError | None) -> None:
        """`wait_for`'s end on the primary (the pool calls back): attached, then the bytes
        that waited go on; or the session ends with the pool's error (`_then_resume`)."""
        self.waiting = None
        holder = self._holder
        if conn is None:
            assert error is not None
            if error.sqlstate != "53300" and is_backend_failure(error.sqlstate):
                self._topology.record(PRIMARY, False)  # (a full pool is not its fault)
            holder.wait_failed(error)
            return
        ended = self._ended
        if ended.done() if ended is not None else holder.ended():
            self.pool.release_clean(conn)  # never used
            return
        self.attach(conn, PRIMARY)
        self._go_on()

    def pause_for(self, work: Coroutine[Any, Any, None]) -> None:
        """Hold the client's bytes until ``work`` (waiting for a server connection, looking
        up a function) is done, then go on with those that waited. Its socket is paused only
        once some come meanwhile (`hold_client`): a client waiting for its answer sends
        nothing, and pausing and resuming a socket are a system call each."""
        self._info.state = "waiting"
        self.waiting = asyncio.get_running_loop().create_task(self._then_resume(work))

    def hold_client(self) -> None:
        """The client sent bytes while it waits (`waiting`): stop reading it until then."""
        if not self.paused:
            self.paused = True
            self._client_reading.pause_reading()

    async def _then_resume(self, work: Coroutine[Any, Any, None]) -> None:
        holder = self._holder
        try:
            await work
        except BackendError as exc:  # no server connection (53300, 08006...): ends the session
            self.waiting = None
            holder.wait_failed(exc)
            return
        self.waiting = None
        if holder.ended():
            return
        self._go_on()

    def _go_on(self) -> None:
        """A wait is over: the client's bytes that waited (and its socket, if paused) go on."""
        if self.conn is None:
            self._info.state = "idle"
            self._holder.went_idle()
        if self.paused:
            self.paused = False
            with contextlib.suppress(Exception):
                self._client_reading.resume_reading()
        self._on_client_data(b"")

    async def _acquire(self, target: str) -> None:
        """Wait for a server connection on ``target`` (53300 after pool_timeout_s)."""
        pool = self.pool_of(target)
        try:
            conn = await pool.acquire(self._timeout)
        except BackendError as exc:
            if exc.sqlstate != "53300" and is_backend_failure(exc.sqlstate):
                self._topology.record(target, False)  # (a full pool is not its fault)
            if target == PRIMARY:
                raise
            # A replica's unit is a read: the primary serves it instead of failing the client
            # (the monitor takes the replica out of rotation).
            logger.warning("dbsight proxy: no connection to %s (%s): read on the primary",
                           target, exc.message)  # fmt: skip
            routing_decisions["primary", "failover"] += 1
            self.retry = None
            if self.take(PRIMARY) is None:
                await self._acquire(PRIMARY)
            return
        if self._holder.ended():
            pool.release_clean(conn)  # never used
            return
        if self.sticky and target == PRIMARY:
            self.own = conn
        self.attach(conn, target)

    async def resolve(self, lookup: Lookup) -> None:
        """Ask a server what the router needs to know (function volatility, what a relation
        is): on the client's own primary connection (session mode), else on an idle primary
        connection, else — sessions may hold them all, or the primary is down — on a replica
        that has replayed the last DDL seen (the catalogs are the same), else on the primary
        when a connection is free there. The connection is borrowed for the lookup alone.
        When the primary cannot answer (its idle connection is dead, it cannot be reached),
        any replica in rotation does: catalogs from before the last DDL judge better than
        none, and the client's session goes on."""
        router = self._routing.router
        assert self.pool is not None and router is not None
        if self.own is not None:
            await router.resolve(lookup, self.own.execute, _monotonic())
            return
        pool = self.pool
        conn = pool.try_acquire()
        try:
            if conn is not None:
                await self._look_up(lookup, pool, conn)
                return
            if await self._look_up_on_replica(lookup, router.changed_at or None):
                return
            await self._look_up(lookup, pool, await pool.acquire(self._timeout))
        except BackendError:
            if not await self._look_up_on_replica(lookup, None):
                raise

    async def _look_up_on_replica(self, lookup: Lookup, synced_after: float | None) -> bool:
        """The lookup on a replica in rotation (``synced_after``: one that has replayed the
        primary as it was then); False when there is none or it failed there."""
        name = self._topology.pick_replica(self._routing.outstanding, synced_after=synced_after)
        if name is None:
            return False
        pool = self.replicas[name]
        try:
            await self._look_up(lookup, pool, await pool.acquire(self._timeout))
        except BackendError:
            return False
        return True

    async def _look_up(self, lookup: Lookup, pool: BackendPool, conn: BackendConnection) -> None:
        router = self._routing.router
        assert router is not None
        try:
            await router.resolve(lookup, conn.execute, _monotonic())
        finally:
            await pool.release_after_lookup(conn)

    # -- relaying it -----------------------------------------------------------------------
    def attach(self, conn: BackendConnection, target: str) -> None:
        """Relay ``conn`` to and from the client."""
        holder = self._holder
        exchange = holder.exchange
        assert conn.link is not None and exchange is not None and self._client_link is not None
        self.conn = conn
        self.target = target
        self._info.state = "active"
        transport: Any = conn.transport
        self.server_transport = transport
        # (what pauses the server's reading while the client's socket is full: its link's
        # `Receiver`, when one reads it, else its transport)
        receiver = conn.link.receiver
        self._client_link.paired = transport if receiver is None else receiver
        parser: Any = conn.parser  # (what it holds: read, as `buffered` would, without a call)
        # Relayed `direct` (each chunk to the relay with no call of the link's own, for one
        # `set_protocol` here and one at its `unrelay`) unless others wait for a connection:
        # then it changes hands every transaction, and those two calls would cost more
        pool = self.pool if target == PRIMARY else self.replicas[target]
        early = conn.link.start_relay(
            self._on_server_data, self._on_server_lost, self._client_reading,
            not pool._waiters,
        )
        if parser._buf or parser._chunks:
            early = parser.take_buffered() + early
        if early:  # said while idle in the pool (a notice, a parameter change): the client's now
            try:  # (not through server_data: nothing is pending, yet the unit is not over)
                said = exchange.answers(early)
            except (TrackingLost, ValueError, struct.error) as exc:
                holder.server_failed(exc)
                return
            if said:
                self._client_transport.write(said)
        settings = self._settings
        if settings is None:
            settings = self._holder.settings
        if self._routing.begin is not None or conn.settings is not (
            settings.wanted if target == PRIMARY else settings.on_replicas
        ):  # (`ClientSettings.give` would give nothing: most units)
            self._send_ahead(conn, target, exchange, transport)

    def _send_ahead(
        self, conn: BackendConnection, target: str, exchange: Exchange, transport: Any
    ) -> None:
        """What goes ahead of the unit, its answers dropped: the client's settings the
        connection lacks, then a start of transaction the proxy answered ahead."""
        queries = self._holder.settings.give(conn, target == PRIMARY)
        if queries:
            transport.write(b"".join(queries))
            for _ in queries:
                exchange.expect(SWALLOW_QUERY)
        routing = self._routing
        if routing.begin is not None:
            begin, routing.begin = routing.begin, None
            transport.write(b"".join(begin.messages))
            for _ in begin.messages:
                exchange.expect(SWALLOW_QUERY)
            self.begun = True

    def detach(self, conn: BackendConnection) -> None:
        """Stop relaying ``conn``: the client holds no server connection now."""
        assert conn.link is not None and self._client_link is not None
        conn.link.stop_relay()
        self._client_link.paired = None
        self.server_transport = None
        self.conn = None

    # -- giving it back --------------------------------------------------------------------
    def give_back_clean(self, now: float = -1.0) -> None:
        """Transaction mode's usual end of a unit (`release` with nothing to reset, no LISTEN
        to move, on the primary: no replicas): the connection parked (see the module
        docstring), or straight back to its pool when others wait for one. ``now``: the
        monotonic clock, when the caller has read it."""
        conn, pool = self.conn, self.pool
        assert conn is not None and conn.link is not None and pool is not None
        self.retry = None
        self.begun = False
        self.conn = None
        if pool.park(conn, self._unpark_here, now):  # still relayed here (`take_primary`)
            self.parked = conn
            return
        # (`detach`, and `pool_of` the primary, inline: this runs once per transaction)
        conn.link.stop_relay()
        self._client_link.paired = None  # type: ignore[union-attr]
        self.server_transport = None
        pool.release_clean(conn, relayed=True)

    def release(self, exchange: Exchange, by_lsn: bool, listens: list[ListenOp] | None) -> None:
        """The unit on the connection held has ended (see `release_plan`); ``by_lsn``: reads
        wait for a replica that has the position its write reached."""
        conn, target = self.conn, self.target
        assert conn is not None
        self.retry = None
        self.begun = False
        own = self.sticky and target == PRIMARY  # session mode: the client's own connection
        if not (own or listens or by_lsn or exchange.dirty):
            # the usual end of a transaction in transaction mode (`release_plan`'s GIVEN_BACK,
            # `give_back` with nothing to reset): straight back to the pool
            self.detach(conn)
            self.pool_of(target).release_clean(conn)
            return
        if own:
            if exchange.cleared:  # DISCARD ALL / DEALLOCATE ALL: the server dropped them all
                self._statements.clear()
                conn.prepared.clear()
            if self.pinned and self._routing.router is not None:
                routing_decisions["primary", "session_state"] += 1
        changed = exchange.dirty and (self._routing.router is not None or self._cached)
        plan = release_plan(own=own, pinned=self.pinned, changed=changed, by_lsn=by_lsn,
                            listens=bool(listens))  # fmt: skip
        if own:
            exchange.dirty = exchange.full_reset = exchange.cleared = False
        if plan is Release.RELAYED:
            return
        self.detach(conn)
        if plan is Release.SYNCED:
            conn.settle(exchange.status, True)
            if by_lsn:
                self._routing.write_lsn = LSN_PENDING
            self.pause_for(self._sync_session(conn, changed, by_lsn))
        elif plan is Release.HANDED_OVER:  # then the pool gets it back
            assert listens is not None
            pool = self.pool_of(target)
            self.pause_for(self._holder.hand_over(
                conn, exchange, listens, lambda: self.give_back(conn, exchange, pool, by_lsn)
            ))  # fmt: skip
        elif plan is Release.GIVEN_BACK:
            self.give_back(conn, exchange, self.pool_of(target), by_lsn)

    def give_back(
        self, conn: BackendConnection, exchange: Exchange, pool: BackendPool, by_lsn: bool
    ) -> None:
        give_back(conn, exchange, pool, by_lsn, self._routing, self._statements, self._background)

    async def _sync_session(self, conn: BackendConnection, changed: bool, by_lsn: bool) -> None:
        """Read from the session's own connection what routing needs after a unit there: the
        GUCs the client has SET (replica connections are made with the same values), whether
        it holds state no replica can have (temporary tables, LISTEN, cursors WITH HOLD:
        the session is then pinned to its connection), and a write's WAL position."""
        state, lsn = await read_session_state(
            conn, self._info.user or "", self.custom, changed=changed, by_lsn=by_lsn
        )
        if by_lsn:
            self._routing.write_lsn = parse_lsn(lsn) if lsn else None
        if state is None:
            return
        settings = {
            name.lower(): value
            for name, value in state.settings.items()
            if name.lower() not in _NOT_SESSION_SETTINGS
        }
        client_settings = self._holder.settings
        if settings != client_settings.session:
            client_settings.session_changed(settings)
        self.pinned = state.pinned
        if self.pinned and self.conn is None:
            self.attach(conn, PRIMARY)
            self._info.state = "idle"

    def drop_broken(self, conn: BackendConnection) -> None:
        """``conn`` (a replica's) gave its unit up: closed, and replaced in its pool."""
        conn.broken = True
        self.detach(conn)
        self.pool_of(self.target).release_clean(conn)
        self._info.state = "idle"

    async def close(self, exchange: Exchange | None) -> None:
        """The client has gone: stop waiting, cancel a statement it left running, and give
        its connections back (reset, or closed when they cannot be trusted)."""
        waiting = self.waiting
        if waiting is not None:
            if isinstance(waiting, asyncio.Future):  # a task (`pause_for`)
                waiting.cancel()
                await asyncio.gather(waiting, return_exceptions=True)
            else:  # the pool's called-back wait (`wait_for`)
                self.waiting = None
                waiting.abandon()
        if self.parked is not None:
            self.let_go_parked()
        conn, self.conn = self.conn, None
        if conn is not None:
            if conn.link is not None:
                conn.link.unrelay()
            if exchange is not None and exchange.statements_running():  # stop it
                with contextlib.suppress(BackendError):
                    await conn.cancel()
            if exchange is not None:
                conn.settle(exchange.status, exchange.between_requests)
            if self.pool is not None:
                with contextlib.suppress(BackendError):  # reset, or closed when not trusted
                    await self.pool_of(self.target).release(conn)
        own, self.own = self.own, None
        if own is not None and own is not conn and self.pool is not None:
            with contextlib.suppress(BackendError):
                await self.pool.release(own)
