"""The lease's decisions, without sockets: what becomes of a connection when its unit ends
(`release_plan`), the reset it needs from what the client's messages and the server's
answers left (`reset_for`, an `Exchange` fed the bytes), and how the client is paused while
a connection is waited for and resumed after (`Lease.pause_for`). The relay around them runs
against a real server in tests/proxy_server and tests/proxy_route."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

import pytest
from wire_messages import IDLE, IN_TX

from dbsight.proxy._backend_errors import PoolTimeout
from dbsight.proxy._client_settings import ClientSettings
from dbsight.proxy._config import ProxyConfig
from dbsight.proxy._exchange import Exchange
from dbsight.proxy._give_back import reset_for
from dbsight.proxy._lease import Lease, Release, release_plan
from dbsight.proxy._link import StreamLink
from dbsight.proxy._listen_handover import committed_listens
from dbsight.proxy._session import SessionInfo
from dbsight.proxy._session_routing import SessionRouting
from dbsight.proxy._statement_names import StatementNames
from dbsight.proxy._topology import Topology
from dbsight.proxy.protocol import (
    CommandComplete,
    DataRow,
    Query,
    encode,
)


class Wire:
    """A transaction-mode client's messages and its server's answers through an Exchange."""

    def __init__(self) -> None:
        self.exchange = Exchange(
            user="u", database="d", application_name=None, client_addr=None, pooled=True
        )
        self.exchange.listens = []  # (transaction mode: LISTEN moves to the LISTEN connection)

    def query(self, sql: str, *answer: Any) -> None:
        raw = encode(Query(sql))
        self.exchange.request(raw[0], raw, 5, len(raw), time.perf_counter())
        self.exchange.answers(b"".join(encode(message) for message in answer))


@pytest.mark.parametrize(
    ("sql", "tag", "reset"),
    [
        ("SELECT 1", "SELECT 1", None),  # nothing left behind: back as it is
        ("SET TimeZone = 'UTC'", "SET", False),  # reset, prepared statements kept
        ("LISTEN jobs", "LISTEN", False),
        ("SELECT nextval('ids')", "SELECT 1", False),  # not provably read-only
        ("PREPARE s AS SELECT 1", "PREPARE", True),  # SQL-level PREPARE: DISCARD ALL
        ("DISCARD ALL", "DISCARD ALL", True),
    ],
)
def test_the_reset_a_connection_needs_follows_what_the_client_left(
    sql: str, tag: str, reset: bool | None
) -> None:
    wire = Wire()
    rows = (DataRow((b"1",)),) if tag.startswith("SELECT") else ()
    wire.query(sql, *rows, CommandComplete(tag), IDLE)
    assert wire.exchange.at_rest
    assert reset_for(wire.exchange) is reset


def test_discard_all_also_says_the_server_dropped_every_prepared_statement() -> None:
    wire = Wire()
    wire.query("DISCARD ALL", CommandComplete("DISCARD ALL"), IDLE)
    assert wire.exchange.cleared


@pytest.mark.parametrize(
    ("pinned", "changed", "by_lsn", "plan"),
    [
        (False, False, False, Release.KEPT),
        (True, False, False, Release.RELAYED),
        (False, True, False, Release.SYNCED),
        (True, True, False, Release.SYNCED),
        (False, False, True, Release.SYNCED),
    ],
)
def test_session_mode_keeps_the_clients_own_connection(
    pinned: bool, changed: bool, by_lsn: bool, plan: Release
) -> None:
    for listens in (False, True):  # (its own connection listens itself)
        assert (
            release_plan(own=True, pinned=pinned, changed=changed, by_lsn=by_lsn, listens=listens)
            is plan
        )


@pytest.mark.parametrize("changed", [False, True])
@pytest.mark.parametrize("by_lsn", [False, True])
def test_a_borrowed_connection_goes_back_unless_its_listens_move_first(
    changed: bool, by_lsn: bool
) -> None:
    def plan(listens: bool) -> Release:
        return release_plan(own=False, pinned=False, changed=changed, by_lsn=by_lsn,
                            listens=listens)  # fmt: skip

    assert plan(False) is Release.GIVEN_BACK
    assert plan(True) is Release.HANDED_OVER


def test_a_committed_listen_is_handed_over_a_rolled_back_one_is_not() -> None:
    wire = Wire()
    wire.query("LISTEN jobs", CommandComplete("LISTEN"), IDLE)
    listens = committed_listens(wire.exchange)
    assert listens is not None and [op.channel for op in listens] == ["jobs"]
    assert release_plan(own=False, pinned=False, changed=True, by_lsn=False,
                        listens=bool(listens)) is Release.HANDED_OVER  # fmt: skip

    wire.query("BEGIN", CommandComplete("BEGIN"), IN_TX)
    wire.query("LISTEN jobs", CommandComplete("LISTEN"), IN_TX)
    wire.query("ROLLBACK", CommandComplete("ROLLBACK"), IDLE)
    assert not committed_listens(wire.exchange)


def test_a_transaction_without_listen_has_nothing_to_hand_over() -> None:
    wire = Wire()
    wire.query("SELECT 1", DataRow((b"1",)), CommandComplete("SELECT 1"), IDLE)
    assert committed_listens(wire.exchange) is None


# -- pausing the client while a connection is waited for -----------------------------------
class Holder:
    """The session's side of a lease, recording what the lease asks of it."""

    exchange: Exchange | None = None

    def __init__(self) -> None:
        self.settings = ClientSettings({})
        self.calls: list[Any] = []
        self.over = False

    def server_data(self, data: bytes) -> None:
        self.calls.append(("server_data", data))

    def server_lost(self, exc: BaseException | None) -> None:
        self.calls.append("server_lost")

    def server_failed(self, exc: BaseException) -> None:
        self.calls.append("server_failed")

    def client_data(self, data: bytes) -> None:
        self.calls.append(("client_data", data))

    def went_idle(self) -> None:
        self.calls.append("went_idle")

    def wait_failed(self, exc: Exception) -> None:
        self.calls.append(("wait_failed", getattr(exc, "sqlstate", None)))

    def ended(self) -> bool:
        return self.over

    def hand_over(
        self, conn: Any, exchange: Exchange, listens: Any, give_back: Callable[[], None]
    ) -> Coroutine[Any, Any, None]:
        raise AssertionError("nothing to hand over here")


class ClientTransport:
    """The client's socket as a lease touches it: reading paused and resumed."""

    def __init__(self) -> None:
        self.reading = True
        self.calls = 0  # pauses and resumes: a system call each

    def pause_reading(self) -> None:
        self.reading = False
        self.calls += 1

    def resume_reading(self) -> None:
        self.reading = True
        self.calls += 1


def _lease(holder: Holder) -> tuple[Lease, SessionInfo, ClientTransport]:
    config = ProxyConfig()
    topology = Topology(config)
    routing = SessionRouting(topology, lambda name: 0, 0.0)
    info = SessionInfo("test")
    lease = Lease(holder, config, topology, routing, StatementNames(lambda reply: None), info,
                  set(), cached=False)  # fmt: skip
    transport = ClientTransport()
    lease.relay_to(transport, cast(StreamLink, None))
    return lease, info, transport


async def test_the_client_waits_paused_then_goes_on_with_the_bytes_that_waited() -> None:
    holder = Holder()
    lease, info, transport = _lease(holder)
    done = asyncio.Event()

    async def work() -> None:
        await done.wait()

    lease.pause_for(work())
    assert transport.reading and info.state == "waiting" and not lease.idle
    lease.hold_client()  # bytes came meanwhile: its socket paused, once
    lease.hold_client()
    assert not transport.reading and transport.calls == 1
    await asyncio.sleep(0)
    assert holder.calls == []
    done.set()
    assert lease.waiting is not None
    await lease.waiting
    assert transport.reading and transport.calls == 2 and info.state == "idle" and lease.idle
    assert holder.calls == ["went_idle", ("client_data", b"")]


async def test_a_client_that_sends_nothing_while_it_waits_is_never_paused() -> None:
    holder = Holder()
    lease, _, transport = _lease(holder)

    async def work() -> None:
        await asyncio.sleep(0)

    lease.pause_for(work())
    assert lease.waiting is not None
    await lease.waiting
    assert transport.reading and transport.calls == 0
    assert holder.calls == ["went_idle", ("client_data", b"")]


async def test_no_connection_for_the_client_ends_its_session_unresumed() -> None:
    holder = Holder()
    lease, _, transport = _lease(holder)

    async def work() -> None:
        raise PoolTimeout("no connection within pool_timeout_s")

    lease.pause_for(work())
    lease.hold_client()
    assert lease.waiting is not None
    await lease.waiting
    assert holder.calls == [("wait_failed", "53300")]
    assert not transport.reading and lease.waiting is None


async def test_a_session_that_ended_meanwhile_is_not_resumed() -> None:
    holder = Holder()
    lease, _, transport = _lease(holder)

    async def work() -> None:
        holder.over = True

    lease.pause_for(work())
    lease.hold_client()
    assert lease.waiting is not None
    await lease.waiting
    assert holder.calls == [] and not transport.reading and lease.idle
