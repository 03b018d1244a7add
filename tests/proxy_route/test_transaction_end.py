"""What a pooled transaction's end tells, without sockets: the breaker hears of failures that
are the server's fault only, the unit that filled the cache is stored unless it failed, and
after DDL the router and the catalog reach forget what they knew. Against a real server:
tests/proxy_route/test_cache_proxy.py, test_breaker.py and test_routing.py."""

from __future__ import annotations

import time

from dbsight.proxy import protocol as p
from dbsight.proxy._cache_step import CacheStep
from dbsight.proxy._exchange import Exchange
from dbsight.proxy._reach import ReachBook
from dbsight.proxy._result_cache import CacheRule, ResultCache
from dbsight.proxy._transaction_end import TransactionEnd

ANSWER = p.encode(p.CommandComplete("SELECT 0")) + p.ready_for_query(p.TransactionStatus.IDLE)


class Judge:
    def __init__(self) -> None:
        self.forgotten = 0

    def forget(self) -> None:
        self.forgotten += 1


def _exchange(last_sqlstate: str | None = None, *, ddl: bool = False) -> Exchange:
    exchange = Exchange(
        user="app", database="appdb", application_name=None, client_addr=None, pooled=True
    )
    exchange.last_sqlstate = last_sqlstate
    exchange.ddl_seen = ddl
    return exchange


def _recording() -> tuple[list[tuple[str, bool]], TransactionEnd]:
    recorded: list[tuple[str, bool]] = []
    end = TransactionEnd(None, lambda name, ok: recorded.append((name, ok)), None, None)
    return recorded, end


def test_the_breaker_hears_of_the_servers_failures_only() -> None:
    recorded, end = _recording()
    for sqlstate in (None, "23505", "42P01", "57P01", "08006", "53300"):
        exchange = _exchange(sqlstate)
        end.tell(exchange, "primary")
        assert exchange.last_sqlstate is None  # (heard once)
    assert recorded == [
        ("primary", True), ("primary", True), ("primary", True),
        ("primary", False), ("primary", False), ("primary", False),
    ]  # fmt: skip


def test_after_ddl_the_router_and_the_reach_forget_once() -> None:
    router, reach = Judge(), Judge()
    end = TransactionEnd(None, lambda name, ok: None, router, reach)
    end.tell(_exchange(), "replica1")
    assert router.forgotten == reach.forgotten == 0
    exchange = _exchange(ddl=True)
    end.tell(exchange, "primary")
    end.tell(exchange, "primary")
    assert router.forgotten == reach.forgotten == 1 and not exchange.ddl_seen


def _filling(cache: ResultCache) -> CacheStep:
    step = CacheStep(cache, ReachBook(), "appdb", lambda: None)
    tables = ("orders",)
    step.fill = (b"key", tables, 10.0, cache.generation(tables))
    step.collect(ANSWER)
    return step


def test_the_unit_that_filled_the_cache_is_stored_unless_it_failed() -> None:
    cache = ResultCache((CacheRule(table="orders", ttl_s=10),))
    step = _filling(cache)
    TransactionEnd(step, lambda name, ok: None, None, None).tell(_exchange("57014"), "primary")
    assert step.fill is None and cache.get(b"key", time.monotonic()) is None
    step = _filling(cache)
    TransactionEnd(step, lambda name, ok: None, None, None).tell(_exchange(), "primary")
    assert step.fill is None and cache.get(b"key", time.monotonic()) == ANSWER[:-6]
