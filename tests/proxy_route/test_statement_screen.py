"""One pooled client's statements through the request pipeline, without sockets: the facts
its rules see (an Execute's text is its portal's), a refused statement left unobserved, a
held one not judged again once due, and the firewall's row limit put on the exchange. The
relay acting on the verdicts runs against a real server in test_pipeline_proxy.py."""

from __future__ import annotations

import time
from typing import Any

from pydantic import TypeAdapter

from dbsight.proxy._exchange import Exchange
from dbsight.proxy._pipeline import UNOBSERVED, Pipeline, PipelineStep, Rejection
from dbsight.proxy._session import SessionInfo
from dbsight.proxy._statement_screen import StatementScreen
from dbsight.proxy.protocol import Bind, Execute, Parse, Query, encode

STEPS = TypeAdapter(list[PipelineStep])


def _screen(*steps: dict[str, Any]) -> tuple[StatementScreen, Exchange, list[str]]:
    pipeline = Pipeline.from_config(STEPS.validate_python(list(steps)))
    info = SessionInfo("10.0.0.7")
    info.user, info.database = "app", "appdb"
    exchange = Exchange(
        user="app", database="appdb", application_name="billing", client_addr="10.0.0.7",
        pooled=True,
    )  # fmt: skip
    past: list[str] = []
    return StatementScreen(pipeline, info, "10.0.0.7", lambda: past.append("past")), exchange, past


def _judge(screen: StatementScreen, exchange: Exchange, message: Any) -> Any:
    raw = encode(message)
    return screen.verdict(exchange, raw[0], raw, 0, len(raw))


def _send(exchange: Exchange, *messages: Any) -> None:
    for message in messages:
        raw = encode(message)
        exchange.request(raw[0], raw, 5, len(raw), time.perf_counter())


def test_the_facts_are_the_clients_and_an_executes_text_is_its_portals() -> None:
    screen, exchange, _ = _screen()
    query = encode(Query("SELECT 1"))
    facts = screen.facts(exchange, query[0], query, 0, len(query))
    assert (facts.sql, facts.user, facts.database) == ("SELECT 1", "app", "appdb")
    assert (facts.application_name, facts.client_addr) == ("billing", "10.0.0.7")
    _send(exchange, Parse("", "DELETE FROM orders"), Bind("", ""))
    execute = encode(Execute("", 0))
    assert screen.facts(exchange, execute[0], execute, 0, len(execute)).sql == (
        "DELETE FROM orders"
    )


def test_a_refused_statement_is_not_observed() -> None:
    screen, exchange, _ = _screen(
        {"handler": "firewall", "deny_unbounded_writes": True}, {"handler": "log", "logger": "all"}
    )
    _send(exchange, Parse("", "DELETE FROM orders"), Bind("", ""))
    verdict = _judge(screen, exchange, Execute("", 0))
    assert isinstance(verdict, Rejection) and verdict.reason == "firewall_unbounded_write"
    assert exchange.observation is UNOBSERVED
    assert _judge(screen, exchange, Query("DELETE FROM orders WHERE id = 1")) is None
    assert [log.logger.name for log in exchange.observation.logs] == ["all"]


def test_a_held_statement_is_let_through_once_due_without_a_second_verdict() -> None:
    screen, exchange, _ = _screen(
        {"handler": "rate_limit", "rate": 1, "burst": 1, "mode": "queue", "max_wait_s": 60}
    )
    assert _judge(screen, exchange, Query("SELECT 1")) is None
    delay = _judge(screen, exchange, Query("SELECT 1"))
    assert isinstance(delay, float) and delay > 0
    screen.admitted = True  # (the session, once it has waited)
    assert _judge(screen, exchange, Query("SELECT 1")) is None
    assert not screen.admitted


def test_the_firewalls_row_limit_goes_on_the_exchange_once() -> None:
    screen, exchange, past = _screen({"handler": "firewall", "max_rows": 100})
    assert _judge(screen, exchange, Query("SELECT * FROM orders")) is None
    assert exchange.row_limit == 100
    assert exchange.row_limit_error.startswith(b"E")
    assert exchange.on_row_limit is not None
    exchange.on_row_limit()
    assert past == ["past"]
    error = exchange.row_limit_error
    exchange.row_limit_error = b""
    assert _judge(screen, exchange, Query("SELECT * FROM items")) is None
    assert exchange.row_limit == 100 and exchange.row_limit_error == b""  # (set already)
    assert error
