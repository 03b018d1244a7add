"""What one pooled client's transactions do to the statements its server connections hold,
without sockets: a statement prepared after a transaction that changed the catalog gets a
new server name, the server's own refusal to prepare one is forgotten on the connection
held, and DEALLOCATE ALL or a catalog change fully resets the connection in transaction
mode only. Against a real server: tests/proxy_server/test_proxy_psycopg_suite_statements.py."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dbsight.proxy._exchange import Exchange
from dbsight.proxy._server_fields import ServerFields
from dbsight.proxy._statement_names import ServerStatements, StatementNames
from dbsight.proxy.protocol import Bind, Parse, Query, encode


class Pools:
    def __init__(self) -> None:
        self.catalog_generation = 0


class Connection(ServerFields):
    """A server connection's fields, with no socket."""

    def __init__(self) -> None:
        super().__init__(None, None, {}, 0.0)


class Holder:
    def __init__(self) -> None:
        self.conn: Connection | None = Connection()


def _client(sticky: bool = False) -> tuple[ServerStatements, StatementNames, Exchange, Holder]:
    upkeep = ServerStatements(Pools(), sticky)
    names = StatementNames(lambda reply: None, upkeep.prepared, upkeep.generation)
    exchange = Exchange(
        user="app", database="appdb", application_name=None, client_addr=None, pooled=True
    )
    holder = Holder()
    upkeep.relay(exchange, holder)
    return upkeep, names, exchange, holder


def _parse_rest(query: str) -> bytes:
    raw = encode(Parse("s1", query))
    return raw[5 + len(b"s1\0") :]


def _send(exchange: Exchange, message: Any) -> None:
    raw = encode(message)
    exchange.request(raw[0], raw, 5, len(raw), time.perf_counter())


def test_a_statement_prepared_after_a_catalog_change_gets_a_new_server_name() -> None:
    upkeep, names, exchange, _ = _client()
    before, _ = names.remember("s1", "SELECT * FROM t", _parse_rest("SELECT * FROM t"))
    again, _ = names.remember("s1", "SELECT * FROM t", _parse_rest("SELECT * FROM t"))
    assert again == before  # (the same text: one name, on every connection)
    upkeep.catalog_changed(exchange)
    after, _ = names.remember("s1", "SELECT * FROM t", _parse_rest("SELECT * FROM t"))
    assert after != before
    assert upkeep.generation() == "1.0"


def test_a_drop_in_the_transaction_held_names_statements_anew_at_once() -> None:
    upkeep, _, exchange, _ = _client()
    assert upkeep.generation() == "0.0"
    exchange.ddl_count = 1  # (the Exchange counts a DROP or ALTER that completed)
    assert upkeep.generation() == "0.1"
    upkeep.catalog_changed(exchange)  # the transaction ends
    assert (upkeep.generation(), exchange.ddl_count) == ("1.0", 0)


def test_what_the_server_did_not_prepare_is_forgotten_on_the_connection_held() -> None:
    upkeep, _, exchange, holder = _client()
    assert holder.conn is not None
    holder.conn.prepared.update({"_dbs_a": "s1", "_dbs_b": "s2"})
    assert exchange.forget == upkeep.forget  # (the Exchange calls it when a Parse fails)
    upkeep.forget("_dbs_a")
    assert holder.conn.prepared == {"_dbs_b": "s2"}
    holder.conn = None
    upkeep.forget("_dbs_b")  # nothing held: nothing to forget


def test_deallocate_all_clears_the_connection_and_resets_it_in_transaction_mode() -> None:
    upkeep, _, exchange, _ = _client()
    conn = Connection()
    conn.prepared["_dbs_a"] = "s1"
    _send(exchange, Query("DEALLOCATE ALL"))
    upkeep.cleared(conn, exchange)
    assert conn.prepared == {}
    assert exchange.dirty and exchange.full_reset


def test_session_mode_keeps_the_clients_connection_unreset() -> None:
    upkeep, _, exchange, _ = _client(sticky=True)
    conn = Connection()
    conn.prepared["_dbs_a"] = "s1"
    upkeep.cleared(conn, exchange)
    upkeep.catalog_changed(exchange)
    assert conn.prepared == {}
    assert not exchange.full_reset
    assert upkeep.generation() == "1.0"


def test_the_observation_learns_what_a_server_name_runs() -> None:
    _, names, exchange, _ = _client()
    server, _ = names.remember("s1", "SELECT 1", _parse_rest("SELECT 1"))
    assert exchange.statements[server] == "SELECT 1"  # (what an Execute of it is observed as)


def _rename(names: StatementNames, exchange: Exchange, holder: Holder, message: Any) -> Any:
    raw = encode(message)
    return names.rename(holder.conn, exchange, raw[0], raw, 5, len(raw), time.perf_counter())


def test_a_bind_goes_to_the_server_name_its_parse_injected_ahead_once() -> None:
    _, names, exchange, holder = _client()
    server, parse = names.remember("s1", "SELECT $1", _parse_rest("SELECT $1"))
    bind = Bind("p1", "s1", (0,), (b"42",), (1,))
    first = _rename(names, exchange, holder, bind)
    assert first == parse + encode(Bind("p1", server, (0,), (b"42",), (1,)))
    assert exchange.portals["p1"] == "SELECT $1"  # (what an Execute of p1 is observed as)
    again = _rename(names, exchange, holder, Bind("", "s1"))
    assert again == encode(Bind("", server))  # the connection has it now
    assert exchange.portals[""] == "SELECT $1"
    big = bytes(range(256)) * 300  # (every byte of its length has bits: 76,8xx)
    renamed = _rename(names, exchange, holder, Bind("p2", "s1", (1,), (big,), (1,)))
    assert renamed == encode(Bind("p2", server, (1,), (big,), (1,)))
    assert _rename(names, exchange, holder, Bind("", "")) is None  # the unnamed statement
    assert _rename(names, exchange, holder, Bind("", "never")) is None  # the server says so


def test_a_bind_without_its_nuls_is_malformed() -> None:
    _, names, exchange, holder = _client()
    names.remember("s1", "SELECT 1", _parse_rest("SELECT 1"))
    raw = b"B\0\0\0\x08p1s1"
    with pytest.raises(ValueError):
        names.rename(holder.conn, exchange, raw[0], raw, 5, len(raw), time.perf_counter())
