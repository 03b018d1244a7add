"""The proxy's own server connections: transaction pooling, and session mode with replicas,
cache rules or a request pipeline.

The proxy authenticates the client itself and answers the rest of its login on the server's
behalf (`_client_login`), with a BackendKeyData of its own (registered, so a CancelRequest
carrying it reaches whichever server connection runs the client's statement at that moment).

Units of work. A unit is one Query, or the extended-protocol messages up to a Sync. Each
Query or Execute first gets the request pipeline's verdict (`_statement_screen`; one that
returns more rows than the firewall allows is cancelled on the server, `_row_limit_cancel`).
The first message of a unit outside a transaction may be answered by the proxy itself
(`_own_answers`: a bare prepare, ``SET dbsight.role``, a BEGIN answered ahead, a refusal,
the result cache), picks its server (`_session_routing`: the primary, or a replica for
provably read-only work) and takes a connection (`_lease`) from the `BackendPool` of
(server, database, user) — at once when one is idle, else waiting with the client paused, at
most ``pool_timeout_s`` (then FATAL 53300). The client's startup settings (TimeZone,
DateStyle, application_name, ``options``...) go ahead of its unit when that connection has
others (`_client_settings`). Both directions are then relayed by the event loop's callbacks
and observed by the session's `Exchange`; what a statement changes in the client's session
is noted on its way (`_statement_effects`). When the server's ReadyForQuery says 'I' and
nothing else is in flight, the unit has ended (`Lease.release`, `release_plan`; then what
its end tells the cache, the breaker and the router: `_transaction_end`):

- transaction mode: the connection goes back to its pool as it is, unless the client left
  something in the server session (SET, LISTEN, DECLARE, temporary tables, a SELECT that is not
  provably read-only, DDL): then it is reset first (keeping prepared statements unless SQL-level
  PREPARE, DEALLOCATE or DISCARD ran). Session state does not outlive the transaction, as with
  PgBouncer's transaction mode, but for the reported settings a client SET (TimeZone,
  DateStyle...), which the next units get; the first SET that will be lost gets a warning.
  A committed LISTEN moves to the proxy's LISTEN connection of the database and user
  (`_listener`), whose notifications reach the client between its transactions
  (`_listen_handover`);
- session mode: the primary connection stays the client's to the end of its session (reset
  when it goes back to the pool then). After a unit that may have changed the session, the
  proxy reads its state there (`_session_state`): replica connections get the GUCs it has SET,
  and a session holding what no replica can have (temporary tables, LISTEN, cursors
  WITH HOLD, another role) is pinned to its connection, which then stays relayed.

Prepared statements. Each Parse text (with its parameter types) gets one server-side name,
shared by every client and connection, so a connection prepares it once; the client's names
map to it, and a connection that lacks a statement gets its Parse injected ahead of its use
(`_statement_names`: `StatementNames`, and `ServerStatements` for what DDL or DEALLOCATE ALL
do to them).

Replicas. A unit a replica serves ends at its own end: what the client sends meanwhile waits
and is judged on its own. If the replica gives the read up before any of its answer reached the
client (it shuts down, its connection drops, or it cancels the read for a conflict with WAL
replay), the unit is sent again, to the primary (`_read_retry`). After a unit that may have
changed table data (`_writes.may_write`), the session's reads wait for a replica that has it
(read-your-writes).

Statements are timed from the client's first message, so a wait for a connection counts.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import time
from collections.abc import Callable, Coroutine
from typing import Any

from . import protocol as p
from ._backend import BackendConnection
from ._backend_errors import BackendError
from ._cache_step import CacheStep
from ._client_frames import CLIENT_TYPES, COPY_DATA, TERMINATE, frame_error
from ._client_login import ClientLogin
from ._client_settings import ClientSettings
from ._config import ProxyConfig
from ._exchange import Exchange, TrackingLost
from ._lease import Lease
from ._link import link_of
from ._listen_handover import ListenHandover, committed_listens
from ._listen_statements import ListenOp
from ._listener import ChannelListener
from ._own_answers import WAIT, OwnAnswers
from ._pipeline import Pipeline
from ._plain_relay import PlainRelay, maybe_own
from ._reach import CatalogReach
from ._read_retry import ReadRetry
from ._router import Lookup, Router
from ._row_limit_cancel import RowLimitCancel
from ._server_pools import ServerPools
from ._session import FrontendSession, raising_query
from ._session_routing import SessionRouting
from ._session_state import serializable_by_default
from ._statement_effects import StatementEffects
from ._statement_names import ServerStatements, StatementNames
from ._statement_screen import StatementScreen
from ._topology import PRIMARY
from ._transaction_end import TransactionEnd
from ._units import unit_end

logger = logging.getLogger("dbsight.proxy")

_perf_counter = time.perf_counter
_INT32 = struct.Struct(">i")
_unpack_int32 = _INT32.unpack_from


class PooledSession(FrontendSession):
    """One client in transaction-pooling mode; see the module docstring."""

    pooled = True

    def __init__(
        self,
        config: ProxyConfig,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pools: ServerPools,
        *,
        client_tls: ssl.SSLContext | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        super().__init__(config, reader, writer, client_tls=client_tls, pipeline=pipeline)
        self.pools = pools
        self.client_id = pools.next_client_id()
        self.key: p.BackendKeyData | None = None
        self.cache = pools.cache
        self._cache: CacheStep | None = None  # the client's side of it, once logged in
        self.sticky = config.pool_mode == "session"  # the client keeps its primary connection
        self.server_statements = ServerStatements(pools, self.sticky)
        self.statements = StatementNames(
            self._answer, self.server_statements.prepared, self.server_statements.generation
        )
        self._startup_parameters: dict[str, str] = {}  # the client's, as it sent them
        self.settings = ClientSettings({})  # what its server connections must have (login)
        self.router: Router | None = None  # the database's, once logged in (with replicas)
        self.routing = SessionRouting(
            pools.topology, pools.outstanding, config.read_your_writes_s
        )
        self._background: set[asyncio.Task[Any]] = set()
        self._watch_custom = self.sticky and (pools.topology.routing or pools.cache is not None)
        self.lease = Lease(
            self, config, pools.topology, self.routing, self.statements, self.info,
            self._background, cached=pools.cache is not None,
        )  # fmt: skip
        self.listen = ListenHandover(self._listener, self._holds_nothing, self.client_addr)
        self.screen = (  # the request pipeline's side of the client's statements
            StatementScreen(pipeline, self.info, self.client_addr, self._past_row_limit)
            if pipeline is not None else None
        )  # fmt: skip
        self._held_back = False  # bytes wait in _client_buffer until the replica's unit ends
        self._unit_end = -1  # ... from this offset of _client_buffer on
        self._dropping = False  # a rejected Execute's unit: dropped up to the client's Sync
        self.row_cancel = RowLimitCancel(self._background, self._release_after_cancel)
        self.read_retry = ReadRetry(
            self.lease, self.routing, pools.topology.record, self._ask_again
        )  # a replica's read given up: asked again of the primary
        self._gated = False  # a Query or Execute passes `_gate` (a cache or a pipeline)
        self._plain = False  # (see _login)
        self.relay: PlainRelay | None = None  # (a plain session's, once relayed: `_relay`)
        self.answers: OwnAnswers  # the proxy's own answers, once relayed (`_relay`)
        self.effects: StatementEffects  # what its statements change, once relayed (`_relay`)
        self.transaction_end: TransactionEnd  # what a transaction's end tells, once logged in

    # -- lifecycle -----------------------------------------------------------------------
    async def _serve(self) -> None:
        if await self._startup() is None or not await self._login():
            return
        self.info.state = "idle"
        await self._relay()

    def request_shutdown(self) -> None:
        if self.relay is not None:  # (its transaction's end then goes to `_release`)
            self.relay.shutting_down = True
        super().request_shutdown()

    def _at_rest(self) -> bool:
        """(Then when the transaction ends: `_release`.)"""
        exchange, lease = self.exchange, self.lease
        return lease.conn is None or (lease.pinned and exchange is not None and exchange.at_rest)

    async def cancel_running(self) -> None:
        """A CancelRequest with this session's key: cancel on the connection it holds, if a
        statement is running there (never on one already handed to someone else)."""
        conn, exchange = self.lease.conn, self.exchange
        if conn is not None and exchange is not None and exchange.statements_running():
            with contextlib.suppress(BackendError):
                await conn.cancel()

    async def _finish(self) -> None:
        if self.key is not None:
            self.pools.unregister(self.key)
        await self.listen.drop()
        await self.lease.close(self.exchange)
        if self._background:  # (resets of connections given back)
            await asyncio.gather(*self._background, return_exceptions=True)
        await super()._finish()

    # -- what the lease and the LISTEN handover need of the session --------------------------
    def ended(self) -> bool:
        return self._ended is None or self._ended.done()

    def went_idle(self) -> None:
        self.listen.deliver()

    def wait_failed(self, exc: BackendError) -> None:
        self._fatal(exc.sqlstate, exc.message)

    def hand_over(
        self, conn: BackendConnection, exchange: Exchange, listens: list[ListenOp],
        give_back: Callable[[], None],
    ) -> Coroutine[Any, Any, None]:
        return self.listen.hand_over(conn, exchange, listens, give_back)

    def _listener(self) -> ChannelListener:
        return self.pools.listener_for(self.info.database or "", self.info.user or "")

    def _holds_nothing(self) -> bool:
        return self.lease.idle and self.routing.begin is None

    # -- startup and login ------------------------------------------------------------------
    def _startup_received(self, message: p.StartupMessage) -> None:
        self._startup_parameters = dict(message.parameters)

    async def _cancel_request(self, message: p.CancelRequest, raw: bytes) -> None:
        target = self.pools.session_for(message.pid, message.secret_key)
        if target is not None:
            await target.cancel_running()

    async def _login(self) -> bool:
        """Authenticate the client and answer its login (`ClientLogin`); False when it was
        refused. The session then has its pools, router, cache step and settings."""
        login = ClientLogin(
            self.config, self.pools, self.reader, self.writer, self.frontend, self.client_addr,
            self._refuse,
        )  # fmt: skip
        done = await login.run(self.info.user, self.info.database, self._startup_parameters)
        if done is None:
            return False
        self.routing.serializable = serializable_by_default(done.wanted)
        lease = self.lease
        lease.pool = done.pool
        lease.replicas.update(done.replicas)
        self.router = self.routing.router = done.router
        if self.cache is not None and self.pools.reach is not None:
            self._cache = CacheStep(self.cache, self.pools.reach, done.database, self._reach)
        self._gated = self._cache is not None or self.pipeline is not None  # (see _gate)
        # Transaction mode with nothing between a unit and the pool (no replicas, cache or
        # pipeline): a unit's start and end take the short ways (`_gate`, `_release`).
        self._plain = not (self.sticky or self._gated or done.router is not None)
        self._breaker = self.pools.topology.breakers[PRIMARY]
        self.transaction_end = TransactionEnd(
            self._cache, self.pools.topology.record, done.router, self.pools.reach
        )
        self.settings = ClientSettings(done.wanted)
        self.settings.logged_in(done.parameters)
        self.key = self.pools.register(self)
        await login.answer(done.parameters, self.key)
        return True

    # -- relay -------------------------------------------------------------------------------
    async def _relay(self) -> None:
        assert self.exchange is not None
        self.server_statements.relay(self.exchange, self.lease)
        self.exchange.on_parameter = self._parameter_seen
        if not self.sticky:  # session mode: the client's connection listens itself
            self.exchange.listens = []
        self.effects = StatementEffects(
            self.settings, self.lease, self.server_statements, watch_custom=self._watch_custom,
            sticky=self.sticky,
        )  # fmt: skip
        # transaction mode's usual units: relayed by `PlainRelay`, which hands the rest here
        relay = self.relay = PlainRelay(self, self.exchange) if self._plain else None
        on_client_data = relay.client_data if relay is not None else self.client_data
        early = self._relay_client(on_client_data)
        client_reading = self._receive(self._client_transport, on_client_data)
        self.answers = OwnAnswers(
            self._client_transport, self.statements, self.routing, self.settings,
            self.info.user, self.exchange, self.lease.pause_for,
        )  # fmt: skip
        self.lease.relay_to(
            self._client_transport, link_of(self.writer),
            relay.server_data if relay is not None else None,
            relay.client_data if relay is not None else None,
            self._ended, self.settings, client_reading,
        )  # fmt: skip
        self.listen.relay_to(self._client_transport)
        if early:
            self.client_data(early)
        assert self._ended is not None  # (by _relay_client)
        await self._ended

    def client_data(self, data: bytes) -> None:
        """The client's bytes (kept while it waits for a connection, a lookup or a replica's
        unit before), message by message: one that starts a unit, or a Query or Execute the
        cache or pipeline sees, passes `_gate`; then on to the connection held."""
        lease = self.lease
        if lease.waiting is not None or self._held_back:
            self._client_buffer += data
            if data and lease.waiting is not None:
                lease.hold_client()
            return
        buf = self._client_buffer + data if self._client_buffer else data
        self._client_buffer = b""
        exchange, conn = self.exchange, self.lease.conn
        assert exchange is not None
        n, i, seg = len(buf), 0, 0  # seg: where the bytes not yet in `out` start
        at, max_size, gated = _perf_counter(), self._max_size, self._gated
        out: list[bytes] = []
        barrier, self._unit_end = self._unit_end, -1  # where a replica's unit ends: later wait
        try:
            while n - i >= 5:
                length = _unpack_int32(buf, i + 1)[0]
                t = buf[i]
                if t not in CLIENT_TYPES or length < 4 or length > max_size:
                    raise frame_error(buf, i, length, max_size) or p.ProtocolViolation("bad frame")
                end = i + 1 + length
                if end > n:
                    break
                if i == barrier:
                    self._held_back = True
                    break
                if conn is None or self._dropping or ((t == QUERY or t == EXECUTE) and gated):
                    conn, after, barrier = self._gate(
                        exchange, conn, t, buf, i, end, at, out, seg, barrier
                    )
                    if after == _STOP:
                        return
                    if after >= 0:  # answered here, refused or dropped: go on after it
                        i = seg = after
                        continue
                if t == TERMINATE:  # mid-transaction: _finish rolls back what is open
                    self._end()
                    return
                if t == QUERY or t == EXECUTE or (t == PARSE and self._watch_custom):
                    self.effects.sent(conn, exchange, t, buf, i, end)
                if t != COPY_DATA:
                    if t == BIND or t == DESCRIBE or t == CLOSE or (t == PARSE and buf[i + 5]):
                        replaced = self.statements.rename(conn, exchange, t, buf, i + 5, end, at)
                        if replaced is not None:
                            out.append(buf[seg:i])
                            out.append(replaced)
                            i = seg = end
                            continue
                    exchange.request(t, buf, i + 5, end, at)
                i = end
        except (p.ProtocolError, ValueError) as exc:
            self._malformed(exc, out, buf, seg, i)
            return
        if i < n:
            self._client_buffer = buf[i:]
        elif i == barrier and conn is not None:  # what the client sends next waits too
            self._held_back = True
        if conn is not None:
            self._send(out, buf, seg, i)

    def _gate(
        self, exchange: Exchange, conn: BackendConnection | None, t: int, buf: bytes, i: int,
        end: int, at: float, out: list[bytes], seg: int, barrier: int,
    ) -> tuple[BackendConnection | None, int, int]:
        """What the message at ``buf[i:end]`` passes before it is relayed: a bare prepare
        between transactions is answered here (`OwnAnswers`), the first message after a
        BEGIN answered ahead takes the transaction's connection, a Query or Execute that may
        write invalidates what the cache holds of its tables and gets the pipeline's verdict
        (`_screen`), and one between transactions starts a unit (`_start_unit`). Returns
        (the connection, `_PROCEED`, where a replica's unit ends) to relay it; (-, where to
        go on, -) when it was answered here, refused or dropped; (-, `_STOP`, -) when the
        session ended or waits (the bytes from ``i`` kept). While no connection is held,
        nothing is in ``out`` (``seg`` is ``i``)."""
        if (
            self._plain and conn is None and (t == QUERY or t == BIND)
            and self._breaker.state == "closed"
            and (t == BIND or not maybe_own(buf, i + 5, end))
        ):  # fmt: skip
            # (`_start_unit`'s way for the usual unit: not the proxy's own command, no
            # cache, no router, the primary's breaker closed)
            conn = self.lease.take_primary()
            if conn is not None:
                return conn, _PROCEED, -1
            self._client_buffer = buf[i:]
            self.lease.wait_for(PRIMARY)
            return None, _STOP, -1
        routing, cache = self.routing, self._cache
        if conn is None and i == 0 and t == PARSE and self.answers.bare_prepare(buf):
            return None, len(buf), barrier
        if conn is None and routing.begin is not None and t != TERMINATE and t != FLUSH:
            conn, after = self._begin_transaction(buf, i, t, end)
            if conn is None:
                return None, after, barrier
        if cache is not None and (t == QUERY or t == EXECUTE):
            cache.invalidate(t, buf, i, end, exchange.portals)
        if self._dropping or (
            self.pipeline is not None and (t == QUERY or t == EXECUTE) and not exchange.discarding
        ):
            after = self._screen(exchange, conn, t, buf, i, end, at, out, seg)
            if after != _PROCEED:
                return conn, after, barrier
        if conn is None:
            return self._start_unit(t, buf, i, end, cache, routing)
        return conn, _PROCEED, barrier

    def _malformed(
        self, exc: p.ProtocolError | ValueError, out: list[bytes], buf: bytes, seg: int, i: int
    ) -> None:
        """The client's message at ``buf[i]`` breaks the protocol: what came before it goes
        on, then the client is told (FATAL) and the session ends."""
        if not isinstance(exc, p.ProtocolError):
            exc = p.ProtocolViolation(f"malformed message: {exc}")
        self._send(out, buf, seg, i)
        self._violation(exc)

    def _screen(
        self, exchange: Exchange, conn: BackendConnection | None, t: int, buf: bytes,
        i: int, end: int, at: float, out: list[bytes], seg: int,
    ) -> int:
        """The request pipeline's verdict on the Query or Execute at ``buf[i:end]``:
        `_PROCEED` to run it; `_STOP` when a rate limit queues it (the bytes from ``i`` wait);
        else where to go on, the statement refused — answered here between transactions,
        raised by the server inside one (a Query), or in place of its answer (an Execute,
        whose unit is then dropped up to the client's Sync, the message at ``i`` too)."""
        if self._dropping:  # after a rejected Execute, up to the client's Sync
            if t != SYNC:
                out.append(buf[seg:i])
                return end
            self._dropping = False
            return _PROCEED
        screen = self.screen
        assert screen is not None
        verdict = screen.verdict(exchange, t, buf, i, end)
        if verdict is None:
            return _PROCEED
        if isinstance(verdict, float):  # queued by a rate limit
            if conn is not None:
                self._send(out, buf, seg, i)
            self._client_buffer = buf[i:]
            screen.admitted = True
            self.lease.pause_for(asyncio.sleep(verdict))
            return _STOP
        if conn is None:  # nothing held: answered here, no server needed
            return self.answers.refuse_unit(buf, i, -1, verdict.sqlstate, verdict.message)
        out.append(buf[seg:i])
        if t == QUERY:  # raised by the server: the transaction fails as usual
            out.append(raising_query(verdict.sqlstate, verdict.message))
            exchange.request(t, buf, i + 5, end, at)  # its answer is this one's
        else:  # in place of the Execute's answer; the rest up to Sync dropped
            reply = exchange.reply(p.error_response(verdict.sqlstate, verdict.message))
            if reply is not None:
                self._client_transport.write(reply)
            self._dropping = True
        return end

    def _start_unit(
        self, t: int, buf: bytes, i: int, end: int, cache: CacheStep | None,
        routing: SessionRouting,
    ) -> tuple[BackendConnection | None, int, int]:
        """A message between transactions starts a unit: the proxy's own commands, a BEGIN
        answered ahead, the cache, then the router pick its server and a connection is
        taken. Returns (the connection, `_PROCEED`, where the unit a replica serves ends or -1), or
        (None, where to go on, -1) when the unit was answered here, or (None, `_STOP`, -1)
        when the session ended or waits (the bytes from ``i`` kept)."""
        if t == TERMINATE:
            self._end()
            return None, _STOP, -1
        if t == FLUSH:  # nothing to flush between transactions
            return None, end, -1
        if t == QUERY and (
            self.answers.session_command(buf, i, end)
            or (self.router is not None and self.answers.defer_begin(buf, i, end))
        ):
            return None, end, -1
        cached_end = self.answers.from_cache(cache, buf, i) if cache is not None else -1
        if cached_end >= 0:  # answered from the cache
            return None, cached_end, -1
        if cached_end == WAIT:  # for what the cache needs to know first
            self._client_buffer = buf[i:]
            return None, _STOP, -1
        filling = cache is not None and cache.fill is not None
        route = (
            _PRIMARY_UNIT if self.router is None
            else routing.route(buf, i, self.statements.text, filling)
        )  # fmt: skip
        if isinstance(route, Lookup):  # a function's volatility, say: judged after
            self.lease.pause_for(self.lease.resolve(route))
            self._client_buffer = buf[i:]
            return None, _STOP, -1
        target, barrier = route
        if cache is not None and cache.fill is not None:
            if target != PRIMARY:  # a replica may lag: only the primary fills
                cache.fill = None
            else:  # the answer is this unit's alone: later units wait for it
                barrier = unit_end(buf, i)
        if target == PRIMARY and not self.pools.topology.primary_allowed():
            after = self.answers.refuse_unit(
                buf, i, barrier, "57P03",
                "dbsight proxy: the primary server is unavailable (circuit breaker "
                "open after repeated failures); retry shortly",
            )
            return None, after, -1
        if target != PRIMARY and barrier >= 0:  # a read: kept until answered
            self.lease.retry = bytes(buf[i:barrier])
        conn = self.lease.take(target)
        if conn is None:  # all busy: wait for one, then go on from this message
            self._client_buffer = buf[i:]
            self._unit_end = barrier - i if barrier >= 0 else -1
            self.lease.wait_for(target)
            return None, _STOP, -1
        return conn, _PROCEED, barrier

    def _send(self, out: list[bytes], buf: bytes, seg: int, i: int) -> None:
        transport = self.lease.server_transport
        if transport is None:
            return
        if not out:
            if i > seg:
                transport.write(buf if seg == 0 and i == len(buf) else buf[seg:i])
            return
        out.append(buf[seg:i])
        transport.write(b"".join(out))

    def _answer(self, reply: bytes) -> None:
        """The proxy's own reply to a client message (the unit's answer has begun: a read
        can no longer be asked again elsewhere)."""
        self.lease.retry = None
        self._client_transport.write(reply)

    # -- routing (with replicas) ---------------------------------------------------------------
    def _begin_transaction(
        self, buf: bytes, start: int, t: int, end: int
    ) -> tuple[BackendConnection | None, int]:
        """The first message after a BEGIN answered ahead: a ``SET TRANSACTION`` is answered
        here too (None, where to go on); else the transaction takes a connection where it
        belongs, the BEGIN and SET TRANSACTION going first (`Lease.attach`) — (it, -) — or
        waits for one (None, `_STOP`: the bytes from ``start`` kept)."""
        if t == QUERY and self.answers.defer_set_transaction(buf, start, end):
            return None, end
        target = self.routing.begin_target()
        conn = self.lease.take(target)
        if conn is None:
            self._client_buffer = buf[start:]
            self.lease.wait_for(target)
            return None, _STOP
        return conn, start

    def _past_row_limit(self) -> None:
        """A statement returned more rows than the firewall allows: cancel it on the server
        (its end is replaced by the firewall's error) and count the rejection."""
        assert self.pipeline is not None
        self.pipeline.rejected["firewall_max_rows"] += 1
        conn = self.lease.conn
        if conn is not None:
            self._held_back = True  # until the cancel has been handled (`RowLimitCancel`)
            self.row_cancel.start(conn)

    def _release_after_cancel(self) -> None:
        exchange = self.exchange
        if self.lease.conn is not None and exchange is not None and exchange.at_rest:
            self._release()

    def _reach(self) -> CatalogReach | None:
        assert self.pools.reach is not None and self.lease.pool is not None
        return self.pools.reach.get(self.info.database or "", self.lease.pool)

    # -- the server's side --------------------------------------------------------------------
    def server_data(self, data: bytes) -> None:
        exchange, lease = self.exchange, self.lease
        assert exchange is not None
        if lease.conn is None and lease.parked is not None:
            lease.let_go_parked(data)  # said between the client's transactions: the pool's
            return
        if lease.retry is not None and self.read_retry.server_data(exchange, data):
            return  # a replica's read, unanswered, given up: asked again of the primary
        try:
            out = exchange.answers(data)
        except (TrackingLost, ValueError, struct.error) as exc:
            self.server_failed(exc)
            return
        if out:
            lease.retry = None  # the answer has begun: it cannot be asked again
            self._client_transport.write(out)
            cache = self._cache
            if cache is not None and cache.fill is not None:
                cache.collect(out)
        # (`Exchange.at_rest`, inline: this runs for every chunk the server sends)
        if (
            not exchange.pending and exchange.status == _IDLE and not exchange.unsynced
            and lease.conn is not None and not exchange.buffering
        ):  # fmt: skip
            self._release()

    def _release(self) -> None:
        """The transaction ended: the connection goes back to its pool or stays the client's
        (`Lease.release`), a committed LISTEN moves to the LISTEN connection, then what the
        end tells (`TransactionEnd`) and what waited for it (`_after_unit`)."""
        exchange = self.exchange
        assert exchange is not None
        relay = self.relay
        if relay is not None and relay.end_clean():
            # transaction mode's usual end: parked, a success for the primary's breaker
            # (not `Lease.release`, `TransactionEnd.tell`, `_after_unit`)
            return
        if self.row_cancel.task is not None and self.row_cancel.in_flight():
            return
        target = self.lease.target
        self.info.state = "idle"
        self.settings.cycle_ended()
        wrote = target == PRIMARY and exchange.wrote and self.router is not None
        exchange.wrote = False
        by_lsn = wrote and self.config.read_your_writes_lsn
        if exchange.ddl_count or (exchange.ddl_seen and exchange.last_sqlstate is not None):
            self.server_statements.catalog_changed(exchange)
        if exchange.listens or exchange.rolled_back:
            self.lease.release(exchange, by_lsn, committed_listens(exchange))
        else:  # (nothing for committed_listens to forget)
            self.lease.release(exchange, by_lsn, None)
        self.transaction_end.tell(exchange, target)
        if wrote and not by_lsn:
            self.routing.wrote()
        self._after_unit()

    def _after_unit(self) -> None:
        """What waited for the unit's end: the client's next units (after a replica's), its
        notifications, the proxy's shutdown."""
        if self._held_back:
            self._held_back = False
            asyncio.get_running_loop().call_soon(self.client_data, b"")
        if self.lease.waiting is None:
            self.listen.deliver()
        if self._shutting_down:
            self._end_for_shutdown()

    def _parameter_seen(self, name: str, value: str) -> None:
        """The server reports a setting's value to the client (ParameterStatus)."""
        said = self.settings.parameter(self.lease.conn, name, value)
        if said and self.exchange is not None:  # the client's own value, after the server's
            self.exchange.before_ready += said

    def server_failed(self, exc: BaseException) -> None:
        """The server's bytes do not follow the protocol: this connection cannot be trusted."""
        conn = self.lease.conn
        if conn is not None:
            conn.broken = True
        logger.warning("dbsight proxy: server connection failed mid-transaction: %s", exc)
        self._fatal(
            "08P01", "dbsight proxy: the server connection failed",
            detail=str(exc) or type(exc).__name__,
        )  # fmt: skip

    def server_lost(self, exc: BaseException | None) -> None:
        lease = self.lease
        conn = lease.conn
        if conn is None:
            if lease.parked is not None:  # lost between the client's transactions
                lease.parked.broken = True
                lease.let_go_parked()
            return
        if self.read_retry.server_lost(self.exchange, exc):  # (a replica's read, asked again)
            return
        conn.broken = True
        self.pools.topology.record(lease.target, False)
        self._fatal(
            "08006", "dbsight proxy: the server connection failed",
            detail=str(exc) if exc is not None else "the server closed the connection",
        )  # fmt: skip

    def _ask_again(self, unit: bytes) -> None:
        """`ReadRetry`: the replica's read ``unit`` goes again, ahead of what came since."""
        self._client_buffer = unit + self._client_buffer
        self._held_back = False
        asyncio.get_running_loop().call_soon(self.client_data, b"")

    def _client_lost(self, exc: BaseException | None) -> None:
        self._end()


_STOP = -1  # _start_unit, _begin_transaction, _screen: the session ended or waits; stop reading
_PROCEED = -2  # _screen: no verdict against the statement
_IDLE = ord("I")
_PRIMARY_UNIT = (PRIMARY, -1)  # without replicas: every unit's route
PARSE, BIND, DESCRIBE, CLOSE, SYNC, FLUSH, QUERY, EXECUTE = (ord(c) for c in "PBDCSHQE")
