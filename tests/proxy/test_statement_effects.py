"""What a pooled client's statement on its way to the server changes in what the proxy keeps
of its session, without sockets: the warning for a SET transaction mode will lose (once,
outside a transaction block, never in session mode), the custom settings session mode reads
back, and DEALLOCATE ALL emptying the connection's statements. Against a real server:
tests/proxy_server/test_proxy_client_settings.py and test_proxy_session.py."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest

from dbsight.proxy._backend import BackendConnection
from dbsight.proxy._client_settings import SETTINGS_NOTICE, ClientSettings
from dbsight.proxy._exchange import Exchange
from dbsight.proxy._setting_statements import maybe_sets_in
from dbsight.proxy._statement_effects import (
    _CLEARS,
    _COMMENT,
    _ENDS,
    _SETS,
    _TRANSACTION,
    StatementEffects,
    query_flags,
)
from dbsight.proxy._statement_names import ServerStatements, clears_statements
from dbsight.proxy.protocol import Bind, Execute, Parse, Query, encode


class Pools:
    catalog_generation = 0


class Connection:
    def __init__(self) -> None:
        self.settings: dict[str, str] = {}
        self.prepared: dict[str, str] = {"_dbs_a": "s1"}


class Held:
    def __init__(self) -> None:
        self.custom: set[str] = set()
        self.begun = False


def _effects(*, sticky: bool = False, watch_custom: bool = False) -> tuple[
    StatementEffects, Exchange, Held, BackendConnection
]:  # fmt: skip
    settings = ClientSettings({})
    settings.logged_in({})
    held = Held()
    effects = StatementEffects(
        settings, held, ServerStatements(Pools(), sticky), watch_custom=watch_custom,
        sticky=sticky,
    )  # fmt: skip
    exchange = Exchange(
        user="app", database="appdb", application_name=None, client_addr=None, pooled=True
    )
    return effects, exchange, held, cast(BackendConnection, Connection())


def _sent(effects: StatementEffects, exchange: Exchange, conn: Any, message: Any) -> None:
    raw = encode(message)
    effects.sent(conn, exchange, raw[0], raw, 0, len(raw))
    exchange.request(raw[0], raw, 5, len(raw), time.perf_counter())


def test_a_querys_digit_key_is_made_once_and_handed_to_the_exchange() -> None:
    effects, exchange, _, conn = _effects()
    _sent(effects, exchange, conn, Query("SELECT 1 FROM a_shape_of_its_own"))
    raw = encode(Query("SELECT abalance FROM t WHERE aid = 48213"))
    effects.sent(conn, exchange, raw[0], raw, 0, len(raw))
    assert exchange.query_key == b"SELECT abalance FROM t WHERE aid = 00000"
    assert exchange.query_text == b"SELECT abalance FROM t WHERE aid = 48213"
    exchange.request(raw[0], raw, 5, len(raw), time.perf_counter())
    # taken by this Query's lookup, not left for the next
    assert exchange.query_key is None and exchange.query_text is None
    # a text that is not this one (by its length) is not used: the message is read again
    exchange.query_key, exchange.query_text = b"SELECT 0", b"SELECT 1"
    raw = encode(Query("SELECT abalance FROM t WHERE aid = 7"))
    exchange.request(raw[0], raw, 5, len(raw), time.perf_counter())
    assert exchange.query_key is None and exchange.query_text is None
    assert exchange.statement_count == 3


def test_a_query_of_the_last_querys_shape_takes_its_flags_without_a_key() -> None:
    """A text that differs from the Query's before only in its digits has its key, so its
    flags: none is made, the text alone is handed to the exchange; a text of another shape
    has its own looked up."""
    effects, exchange, _, conn = _effects()
    settings = effects.settings = ReadSettings({})
    settings.reads = []
    settings.logged_in({})
    _sent(effects, exchange, conn, Query("SET work_mem = '64MB'"))
    raw = encode(Query("SET work_mem = '32MB'"))
    effects.sent(conn, exchange, raw[0], raw, 0, len(raw))
    assert exchange.query_key is None and exchange.query_text == b"SET work_mem = '32MB'"
    exchange.request(raw[0], raw, 5, len(raw), time.perf_counter())
    assert exchange.query_text is None
    for sql in ("SELECT 1 FROM t1", "SELECT 7 FROM t1", "SET work_mem = '16MB'"):
        _sent(effects, exchange, conn, Query(sql))
    # each SET read by the settings (their flags), neither SELECT
    assert settings.reads == ["SET work_mem = '64MB'", "SET work_mem = '32MB'",
                              "SET work_mem = '16MB'"]  # fmt: skip
    assert exchange.statement_count == 5 and exchange.query_text is None


def test_a_set_transaction_mode_will_lose_is_warned_of_once() -> None:
    effects, exchange, _, conn = _effects()
    _sent(effects, exchange, conn, Query("SELECT 1"))
    assert exchange.before_ready == b""
    _sent(effects, exchange, conn, Query("SET work_mem = '64MB'"))
    assert exchange.before_ready == SETTINGS_NOTICE
    _sent(effects, exchange, conn, Query("SET work_mem = '32MB'"))
    assert exchange.before_ready == SETTINGS_NOTICE  # (once)


def test_no_warning_inside_a_transaction_block_or_in_session_mode() -> None:
    effects, exchange, held, conn = _effects()
    held.begun = True  # a BEGIN the proxy answered ahead went first
    _sent(effects, exchange, conn, Query("SET work_mem = '64MB'"))
    assert exchange.before_ready == b""
    effects, exchange, _, conn = _effects(sticky=True)
    _sent(effects, exchange, conn, Query("SET work_mem = '64MB'"))
    assert exchange.before_ready == b""


def test_an_executes_text_is_its_portals() -> None:
    effects, exchange, _, conn = _effects()
    _sent(effects, exchange, conn, Parse("", "SET work_mem = '64MB'"))
    _sent(effects, exchange, conn, Bind("", ""))
    _sent(effects, exchange, conn, Execute("", 0))
    assert exchange.before_ready == SETTINGS_NOTICE


def test_session_mode_watches_custom_settings_in_parses_and_queries() -> None:
    effects, exchange, held, conn = _effects(sticky=True, watch_custom=True)
    _sent(effects, exchange, conn, Query("SET app.tenant = 'a'"))
    _sent(effects, exchange, conn, Parse("", "SELECT set_config('app.user_id', $1, false)"))
    assert held.custom == {"app.tenant", "app.user_id"}


def test_deallocate_all_empties_the_connections_statements() -> None:
    effects, exchange, _, conn = _effects()
    _sent(effects, exchange, conn, Query("DEALLOCATE ALL"))
    assert cast(Any, conn).prepared == {}
    assert exchange.full_reset


@pytest.mark.parametrize(
    ("sql", "flags"),
    [
        ("SELECT 1", 0),
        ("select abalance from t where aid = 7", 0),
        (" SET statement_timeout = 1000", _SETS),
        ("SELECT 1; reset all", _SETS),
        ("SELECT set_config('a.b', '1', false)", _SETS),
        ("DISCARD ALL", _SETS | _CLEARS),
        ("deallocate prepare all;", _CLEARS),
        ("SELECT set1 FROM t2", 0),
        ("BEGIN", _TRANSACTION),
        ("start transaction isolation level serializable", _TRANSACTION),
        ("END", _TRANSACTION | _ENDS),
        ("commit; begin", _TRANSACTION | _ENDS),
        ("ROLLBACK", _TRANSACTION | _ENDS),
        ("BEGIN; SET LOCAL work_mem = '64MB'", _SETS),
        ("COMMIT; RESET work_mem", _SETS),
        ("SELECT /* a */ 1", _COMMENT),
        ("SET work_mem = '8MB' /*app='x'*/", _SETS | _COMMENT),
        ("SELECT '/' || '*' FROM t1", 0),
        ("/* app='x' */ SET work_mem = '8MB'", _SETS | _COMMENT),
        ("-- reports\n  /*a*/ /* b */ begin", _TRANSACTION | _COMMENT),
        ("SELECT 1; -- then\nRESET ALL", _SETS),
        ("/* outer /* nested */ */ SELECT 1", _COMMENT),  # (parsed, to be sure: nothing)
        ("/* SET */ SELECT 'SET a = 1'", _COMMENT),
        ("/* app */ DISCARD ALL /* app */;", _SETS | _CLEARS | _COMMENT),
        ("-- x\ndeallocate all -- y", _CLEARS),
    ],
)
def test_what_a_query_may_do_is_known_by_its_text_whatever_its_digits(sql: str, flags: int) -> None:
    for text in (sql, sql.translate(str.maketrans("0123456789", "7777777777"))):
        body = text.encode() + b"\0"
        message = b"Q" + len(body + b"1234").to_bytes(4, "big") + body
        assert query_flags(message, 5, len(message)) == flags
        maybe = maybe_sets_in(message, 5, len(message) - 1)
        assert maybe == (bool(flags & (_SETS | _TRANSACTION)) or "/* nested" in sql)
        assert bool(flags & _CLEARS) == clears_statements(message, 5, len(message))


class ReadSettings(ClientSettings):
    """The client's settings, with the texts they read."""

    __slots__ = ("reads",)

    def statement(self, conn: Any, sql: str, in_block: bool, warn: bool) -> bytes:
        self.reads.append(sql)
        return super().statement(conn, sql, in_block, warn)


def test_a_commit_ends_the_settings_cycle_without_their_reading_it() -> None:
    effects, exchange, _, conn = _effects()
    settings = effects.settings = ReadSettings({})
    settings.reads = []
    settings.logged_in({})
    _sent(effects, exchange, conn, Query("BEGIN"))
    assert effects.settings_read()  # (as if it had reached them: the cycle's end is told)
    _sent(effects, exchange, conn, Query("RESET work_mem"))
    assert settings.reads == ["RESET work_mem"] and settings._resets == {"work_mem"}
    _sent(effects, exchange, conn, Query("COMMIT"))
    assert settings.reads == ["RESET work_mem"]  # not read: transaction control only,
    assert settings._resets == set()  # and ended as its reading would have
    _sent(effects, exchange, conn, Query("COMMIT; RESET work_mem"))
    assert settings.reads[-1] == "COMMIT; RESET work_mem" and settings._resets == {"work_mem"}


def test_a_prepared_commit_ends_the_cycle_as_a_querys_does() -> None:
    """An Execute of a prepared BEGIN or COMMIT (pgbench -M prepared, drivers that prepare
    every text) takes the Query's way: transaction control, told without a reading."""
    effects, exchange, _, conn = _effects()
    settings = effects.settings = ReadSettings({})
    settings.reads = []
    settings.logged_in({})

    def run(sql: str) -> None:
        _sent(effects, exchange, conn, Parse("", sql))
        _sent(effects, exchange, conn, Bind("", ""))
        _sent(effects, exchange, conn, Execute("", 0))

    run("BEGIN")
    assert effects.settings_read() and settings.reads == []
    run("RESET work_mem")
    assert settings.reads == ["RESET work_mem"] and settings._resets == {"work_mem"}
    run("END")
    assert settings.reads == ["RESET work_mem"] and settings._resets == set()
    assert effects.settings_read()
    run("SELECT 'begin'")  # (a word in a literal: nothing for the settings)
    assert not effects.settings_read()


def test_the_cycle_end_is_told_only_when_a_statement_reached_the_settings() -> None:
    effects, exchange, _, conn = _effects()
    _sent(effects, exchange, conn, Query("SELECT 1"))
    assert not effects.settings_read()  # (nothing to forget: the relay skips the call)
    _sent(effects, exchange, conn, Query("RESET work_mem"))
    assert effects.settings_read() and not effects.settings_read()  # (asked once)
    _sent(effects, exchange, conn, Parse("", "SET work_mem = '1MB'"))
    _sent(effects, exchange, conn, Bind("", ""))
    _sent(effects, exchange, conn, Execute("", 0))
    assert effects.settings_read()
