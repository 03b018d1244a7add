"""A replica's read asked again of the primary, without sockets: a FATAL answer or a lost
connection (both counted against the replica's breaker) and a recovery conflict (not
counted) give the read up before any of its answer reached the client; anything else, a read
already answered or a message cut short does not. Against real replicas:
tests/proxy_route/test_routing.py (a read cancelled by WAL replay, a replica down)."""

from __future__ import annotations

import time
from typing import Any, cast

from dbsight.proxy._backend import BackendConnection
from dbsight.proxy._exchange import Exchange
from dbsight.proxy._metrics import routing_decisions
from dbsight.proxy._read_retry import ReadRetry
from dbsight.proxy.protocol import Query, encode, error_response

READ = encode(Query("SELECT * FROM orders"))


class Connection:
    broken = False


class Lease:
    def __init__(self) -> None:
        self.conn: BackendConnection | None = cast(BackendConnection, Connection())
        self.retry: bytes | None = READ
        self.target = "replica1"
        self.dropped: list[Any] = []

    def drop_broken(self, conn: BackendConnection) -> None:
        self.dropped.append(conn)
        self.conn = None


class Routing:
    to_primary = False


class Setup:
    def __init__(self) -> None:
        self.lease, self.routing = Lease(), Routing()
        self.recorded: list[tuple[str, bool]] = []
        self.asked: list[bytes] = []
        self.retry = ReadRetry(
            self.lease, self.routing, lambda name, ok: self.recorded.append((name, ok)),
            self.asked.append,
        )  # fmt: skip
        self.exchange = Exchange(
            user="app", database="appdb", application_name=None, client_addr=None, pooled=True
        )
        self.exchange.request(READ[0], READ, 5, len(READ), time.perf_counter())

    def asked_again(self) -> bool:
        """The read went to the primary, the replica's connection closed, nothing pending."""
        conn = self.lease.dropped[0] if self.lease.dropped else None
        return (
            self.asked == [READ] and self.lease.retry is None and conn is not None
            and self.routing.to_primary and not self.exchange.pending
        )  # fmt: skip


def test_a_fatal_answer_is_asked_again_and_counts_against_the_replica() -> None:
    setup = Setup()
    before = routing_decisions["primary", "failover"]
    fatal = error_response("57P01", "terminating connection due to administrator command", "FATAL")
    assert setup.retry.server_data(setup.exchange, fatal)
    assert setup.asked_again()
    assert setup.recorded == [("replica1", False)]
    assert routing_decisions["primary", "failover"] == before + 1


def test_a_recovery_conflict_is_asked_again_without_blaming_the_replica() -> None:
    setup = Setup()
    conflict = error_response("40001", "canceling statement due to conflict with recovery")
    assert setup.retry.server_data(setup.exchange, conflict)
    assert setup.asked_again()
    assert setup.recorded == []


def test_a_lost_connection_is_asked_again_and_counts_against_the_replica() -> None:
    setup = Setup()
    assert setup.retry.server_lost(setup.exchange, ConnectionResetError("reset by peer"))
    assert setup.asked_again()
    assert setup.recorded == [("replica1", False)]
    setup = Setup()
    assert setup.retry.server_lost(setup.exchange, None)  # (closed)
    assert setup.asked_again()


def test_an_ordinary_error_is_the_clients_answer() -> None:
    setup = Setup()
    missing = error_response("42P01", 'relation "orders" does not exist')
    assert not setup.retry.server_data(setup.exchange, missing)
    assert setup.asked == [] and setup.lease.retry == READ and setup.recorded == []


def test_nothing_is_asked_again_once_the_answer_has_begun() -> None:
    setup = Setup()
    setup.lease.retry = None  # (the session's, when the first bytes went to the client)
    fatal = error_response("57P01", "terminating connection", "FATAL")
    assert not setup.retry.server_data(setup.exchange, fatal)
    assert not setup.retry.server_lost(setup.exchange, None)
    assert setup.asked == [] and setup.lease.dropped == [] and not setup.routing.to_primary


def test_a_message_cut_short_is_relayed_as_it_is() -> None:
    setup = Setup()
    fatal = error_response("57P01", "terminating connection", "FATAL")
    setup.exchange.answers(fatal[:3])  # the rest has not arrived
    assert setup.exchange.buffering
    assert not setup.retry.server_data(setup.exchange, fatal[3:])
    assert setup.asked == []
