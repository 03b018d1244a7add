"""What the proxy answers itself when a pooled client starts a unit between transactions,
without sockets: a bare prepare, ``SET dbsight.role``, a BEGIN and SET TRANSACTION answered
ahead (with replicas), a refused unit and a cached one, each ending with the ReadyForQuery
the server would send. Against a real server: tests/proxy_server/test_proxy_pooled.py,
test_session_routing.py and test_cache_proxy.py."""

from __future__ import annotations

import time
from typing import Any, cast

from dbsight.proxy import protocol as p
from dbsight.proxy._cache_step import CacheStep
from dbsight.proxy._client_settings import ClientSettings
from dbsight.proxy._config import ProxyConfig
from dbsight.proxy._exchange import Exchange
from dbsight.proxy._own_answers import WAIT, OwnAnswers
from dbsight.proxy._reach import CatalogReach, ReachBook
from dbsight.proxy._result_cache import CacheRule, ResultCache
from dbsight.proxy._router import Router
from dbsight.proxy._session_routing import SessionRouting
from dbsight.proxy._statement_names import StatementNames
from dbsight.proxy._topology import Topology
from dbsight.proxy.protocol import Bind, Execute, Parse, Query, Sync, encode

IDLE = p.ready_for_query(p.TransactionStatus.IDLE)
IN_TRANSACTION = p.ready_for_query(p.TransactionStatus.IN_TRANSACTION)


class ClientTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)


def _answers(
    routed: bool = False,
) -> tuple[OwnAnswers, ClientTransport, StatementNames, SessionRouting, list[Any]]:
    routing = SessionRouting(Topology(ProxyConfig()), lambda name: 0, 0.0)
    if routed:  # (with replicas: the database's router; these answers never call it)
        routing.router = cast(Router, object())
    transport, paused = ClientTransport(), cast(list[Any], [])
    statements = StatementNames(transport.write)
    exchange = Exchange(
        user="app", database="appdb", application_name=None, client_addr=None, pooled=True
    )
    answers = OwnAnswers(
        transport, statements, routing, ClientSettings({}), "app", exchange, paused.append
    )
    return answers, transport, statements, routing, paused


def _bytes(*messages: Any) -> bytes:
    return b"".join(encode(message) for message in messages)


def test_a_bare_prepare_is_answered_and_its_statements_remembered() -> None:
    answers, transport, statements, _, _ = _answers()
    buf = _bytes(Parse("a", "SELECT 1"), Parse("b", "SELECT $1", (23,)), Sync())
    assert answers.bare_prepare(buf)
    assert transport.writes == [encode(p.ParseComplete()) * 2 + IDLE]
    assert (statements.text("a"), statements.text("b")) == ("SELECT 1", "SELECT $1")


def test_a_prepare_with_more_than_parses_or_a_name_in_use_goes_to_the_server() -> None:
    answers, transport, statements, _, _ = _answers()
    assert not answers.bare_prepare(_bytes(Parse("a", "SELECT 1"), Bind("", "a"), Sync()))
    assert not answers.bare_prepare(_bytes(Parse("", "SELECT 1"), Sync()))  # unnamed
    assert answers.bare_prepare(_bytes(Parse("a", "SELECT 1"), Sync()))
    assert not answers.bare_prepare(_bytes(Parse("a", "SELECT 2"), Sync()))  # "already exists"
    assert len(transport.writes) == 1 and statements.text("a") == "SELECT 1"


def test_set_dbsight_role_is_the_proxys_own_setting() -> None:
    answers, transport, _, routing, _ = _answers()
    buf = encode(Query("SET dbsight.role = primary"))
    assert answers.session_command(buf, 0, len(buf))
    assert routing.role == "primary"
    assert transport.writes == [encode(p.CommandComplete("SET")) + IDLE]
    other = encode(Query("SET search_path = app"))
    assert not answers.session_command(other, 0, len(other))


def test_a_begin_and_set_transaction_are_answered_ahead_with_replicas_only() -> None:
    answers, transport, _, routing, _ = _answers()
    begin = encode(Query("BEGIN"))
    assert not answers.defer_begin(begin, 0, len(begin))  # no replicas: the server's BEGIN
    answers, transport, _, routing, _ = _answers(routed=True)
    assert answers.defer_begin(begin, 0, len(begin))
    assert routing.begin is not None
    modes = encode(Query("SET TRANSACTION READ ONLY"))
    assert answers.defer_set_transaction(modes, 0, len(modes))
    assert routing.begin.on_replica
    assert transport.writes == [
        encode(p.CommandComplete("BEGIN")) + IN_TRANSACTION,
        encode(p.CommandComplete("SET")) + IN_TRANSACTION,
    ]


def test_a_refused_unit_is_answered_up_to_its_sync() -> None:
    answers, transport, _, _, _ = _answers()
    unit = _bytes(Parse("", "DELETE FROM orders"), Bind("", ""), Execute("", 0), Sync())
    buf = unit + encode(Query("SELECT 1"))
    assert answers.refuse_unit(buf, 0, -1, "42501", "refused") == len(unit)
    assert transport.writes == [p.error_response("42501", "refused") + IDLE]


def test_a_cached_unit_is_answered_and_a_miss_fills() -> None:
    answers, transport, _, _, paused = _answers()
    reach = CatalogReach([], time.monotonic())
    cache = CacheStep(
        ResultCache([CacheRule(table="orders", ttl_s=60)]), ReachBook(), "appdb", lambda: reach
    )
    buf = encode(Query("SELECT id FROM orders"))
    assert answers.from_cache(cache, buf, 0) == -1 and cache.fill is not None
    answer = encode(p.CommandComplete("SELECT 0"))
    cache.collect(answer + IDLE)  # (as the server's answer was relayed)
    cache.store(True)
    assert answers.from_cache(cache, buf, 0) == len(buf)
    assert transport.writes == [answer + IDLE]
    assert cache.cache.hits == 1
    assert paused == []


def test_a_cache_that_needs_the_catalog_first_pauses_the_client() -> None:
    answers, transport, _, _, paused = _answers()
    book = ReachBook()
    cache = CacheStep(ResultCache([CacheRule(table="orders", ttl_s=60)]), book, "appdb",
                      lambda: None)  # fmt: skip
    book._querying.add("appdb")  # (a load of its catalog is running)
    buf = encode(Query("SELECT id FROM orders"))
    assert answers.from_cache(cache, buf, 0) == WAIT
    assert len(paused) == 1 and transport.writes == []
    paused[0].close()
