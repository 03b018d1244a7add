"""The rows the relay's Exchange records per statement, from the messages alone: the command
tag's count, else the DataRows relayed, and a suspended portal as one statement until it
completes or goes away (the real-server tests are in tests/proxy_server/test_proxy_rows.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from wire_messages import FAILED, IDLE, IN_TX, ROW

from dbsight.proxy._exchange import _PLAIN_TAGS, Exchange, _plain_tag, command_rows
from dbsight.proxy._listen_statements import ListenOp
from dbsight.proxy.protocol import (
    Bind,
    BindComplete,
    Close,
    CloseComplete,
    CommandComplete,
    EmptyQueryResponse,
    ErrorResponse,
    Execute,
    Parse,
    ParseComplete,
    PortalSuspended,
    Query,
    Sync,
    encode,
)

DIVISION_BY_ZERO = ErrorResponse({"C": "22012", "M": "division by zero"})


class Wire:
    """Messages through an Exchange, as the relay hands them over."""

    def __init__(self) -> None:
        self.exchange = Exchange(user="u", database="d", application_name=None, client_addr=None)

    def client(self, *messages: Any) -> None:
        for message in messages:
            raw = encode(message)
            self.exchange.request(raw[0], raw, 5, len(raw), time.perf_counter())

    def server(self, *messages: Any) -> None:
        self.exchange.answers(b"".join(encode(message) for message in messages))


SELECT = "SELECT n FROM t"


def test_simple_query_counts_the_tag_else_the_rows_and_the_last_statement(recorded: Any) -> None:
    wire = Wire()
    wire.client(Query("SHOW work_mem"))
    wire.server(ROW, CommandComplete("SHOW"), IDLE)
    wire.client(Query("BEGIN"))
    wire.server(CommandComplete("BEGIN"), IN_TX)
    wire.client(Query("UPDATE t SET n = 1; SELECT n FROM t"))
    wire.server(CommandComplete("UPDATE 7"), ROW, ROW, CommandComplete("SELECT 2"), IN_TX)
    wire.client(Query(""))
    wire.server(EmptyQueryResponse(), IN_TX)
    assert recorded.rows() == [
        ("SHOW work_mem", 1, "ok"),
        ("BEGIN", None, "ok"),
        ("UPDATE t SET n = 1; SELECT n FROM t", 2, "ok"),
        ("", None, "ok"),
    ]


def test_fetchrow_is_one_row_suspended_and_ends_with_its_implicit_transaction(
    recorded: Any,
) -> None:
    wire = Wire()
    wire.client(Parse("", SELECT), Bind("", ""), Execute("", 1), Sync())
    wire.server(ParseComplete(), BindComplete(), ROW, PortalSuspended())
    assert recorded.rows() == []  # the portal may still be fetched from
    wire.server(IDLE)
    assert recorded.rows() == [(SELECT, 1, "ok")]
    wire.client(Bind("", ""), Execute("", 1), Sync())  # no row at all: a tag
    wire.server(BindComplete(), CommandComplete("SELECT 0"), IDLE)
    assert recorded.rows()[1:] == [(SELECT, 0, "ok")]


def test_a_portal_fetched_in_batches_is_one_statement(recorded: Any) -> None:
    wire = Wire()
    wire.client(Query("BEGIN"))
    wire.server(CommandComplete("BEGIN"), IN_TX)
    wire.client(Parse("", SELECT), Bind("c", ""), Execute("c", 2), Sync())
    wire.server(ParseComplete(), BindComplete(), ROW, ROW, PortalSuspended(), IN_TX)
    time.sleep(0.1)  # the client's own time between batches is not the statement's
    wire.client(Execute("c", 2), Sync())
    wire.server(ROW, ROW, PortalSuspended(), IN_TX)
    wire.client(Execute("c", 2), Sync())
    wire.server(ROW, CommandComplete("SELECT 1"), IN_TX)  # the tag counts this batch only
    (event,) = recorded.events[1:]
    assert (event.sql, event.rows) == (SELECT, 5)
    assert event.duration_s < 0.1


@pytest.mark.parametrize(
    ("ending", "answer"),
    [
        ((Close("P", "c"), Sync()), (CloseComplete(), IN_TX)),
        ((Bind("c", ""), Sync()), (BindComplete(), IN_TX)),
        ((Query("COMMIT"),), (CommandComplete("COMMIT"), IDLE)),
        ((Query("SELECT 1/0"),), (DIVISION_BY_ZERO, FAILED)),
    ],
)
def test_a_suspended_portal_ends_when_it_goes_away(
    recorded: Any, ending: tuple[Any, ...], answer: tuple[Any, ...]
) -> None:
    wire = Wire()
    wire.client(Query("BEGIN"))
    wire.server(CommandComplete("BEGIN"), IN_TX)
    wire.client(Parse("", SELECT), Bind("c", ""), Execute("c", 3), Sync())
    wire.server(ParseComplete(), BindComplete(), ROW, ROW, ROW, PortalSuspended(), IN_TX)
    wire.client(Query("SELECT 2"))  # a simple Query leaves a named portal alone
    wire.server(ROW, CommandComplete("SELECT 1"), IN_TX)
    assert [sql for sql, _, _ in recorded.rows()] == ["BEGIN", "SELECT 2"]
    wire.client(*ending)
    wire.server(*answer)
    assert (SELECT, 3, "ok") in recorded.rows()


def test_a_simple_query_drops_the_unnamed_portal(recorded: Any) -> None:
    wire = Wire()
    wire.client(Query("BEGIN"))
    wire.server(CommandComplete("BEGIN"), IN_TX)
    wire.client(Parse("", SELECT), Bind("", ""), Execute("", 1), Sync())
    wire.server(ParseComplete(), BindComplete(), ROW, PortalSuspended(), IN_TX)
    wire.client(Query("SELECT 2"))
    assert recorded.rows()[1:] == [(SELECT, 1, "ok")]


def test_a_failed_resumed_execute_has_no_rows(recorded: Any) -> None:
    wire = Wire()
    wire.client(Query("BEGIN"))
    wire.server(CommandComplete("BEGIN"), IN_TX)
    wire.client(Parse("", SELECT), Bind("c", ""), Execute("c", 1), Sync())
    wire.server(ParseComplete(), BindComplete(), ROW, PortalSuspended(), IN_TX)
    wire.client(Execute("c", 1), Sync())
    wire.server(DIVISION_BY_ZERO, FAILED)
    assert recorded.rows()[1:] == [(SELECT, None, "error")]
    assert not wire.exchange._runs.suspended


def test_the_session_ending_ends_its_suspended_portals(recorded: Any) -> None:
    wire = Wire()
    wire.client(Query("BEGIN"))
    wire.server(CommandComplete("BEGIN"), IN_TX)
    wire.client(Parse("", SELECT), Bind("c", ""), Execute("c", 2), Sync())
    wire.server(ParseComplete(), BindComplete(), ROW, ROW, PortalSuspended(), IN_TX)
    wire.exchange.abandon()
    assert recorded.rows()[1:] == [(SELECT, 2, "ok")]


def test_executes_sent_before_the_first_answer_are_each_recorded(recorded: Any) -> None:
    wire = Wire()
    wire.client(Query("BEGIN"))
    wire.server(CommandComplete("BEGIN"), IN_TX)
    wire.client(Parse("", SELECT), Bind("c", ""), Execute("c", 1), Execute("c", 1), Sync())
    wire.server(ParseComplete(), BindComplete(), ROW, PortalSuspended(), ROW, PortalSuspended())
    wire.server(IN_TX)
    wire.client(Query("COMMIT"))
    wire.server(CommandComplete("COMMIT"), IDLE)
    assert [rows for sql, rows, _ in recorded.rows() if sql == SELECT] == [1, 1]


@pytest.mark.parametrize("kind", [b"B", b"E"])
def test_a_bind_or_execute_without_its_portal_name_is_a_malformed_message(kind: bytes) -> None:
    exchange = Exchange(user="u", database="d", application_name=None, client_addr=None)
    empty = kind + b"\x00\x00\x00\x04"  # no body at all: not even the portal's NUL
    with pytest.raises(ValueError):  # (the relay answers it with a ProtocolViolation)
        exchange.request(empty[0], empty, 5, 5, time.perf_counter())


@pytest.mark.parametrize(
    ("tag", "rows"),
    [
        (b"SELECT 3", 3), (b"INSERT 0 5", 5), (b"UPDATE 12", 12), (b"COPY 100", 100),
        (b"SELECT 0012", 12), (b"MERGE 18446744073709551615", 18446744073709551615),
        (b"BEGIN", None), (b"UPDATE ", None), (b"5", None), (b"FETCH 1a", None),
        (b"CREATE TABLE", None),
    ],
)  # fmt: skip
def test_a_command_tag_gives_the_count_after_its_last_space(tag: bytes, rows: int | None) -> None:
    buf = b"C\0\0\0\0" + tag + b"\0Z"  # (read between where the tag starts and its NUL)
    assert command_rows(buf, 5, 5 + len(tag)) == rows


@pytest.mark.parametrize(
    ("sql", "ops"),
    [
        ("UPDATE t SET n = 1", []),
        ("update t set n = 1", []),
        ("UNLISTEN jobs", [ListenOp(False, "jobs")]),
        ("unlisten *", [ListenOp(False, None)]),
        ("LISTEN jobs", [ListenOp(True, "jobs")]),
        ("  listen jobs", [ListenOp(True, "jobs")]),
        ("/* c */ LISTEN jobs", [ListenOp(True, "jobs")]),
        ("-- c\nUNLISTEN jobs", [ListenOp(False, "jobs")]),
        ("SELECT 1", []),
        ("\tListen jobs", [ListenOp(True, "jobs")]),
        ("\r\nuNlIsTeN jobs", [ListenOp(False, "jobs")]),
        ("Upsert_jobs()", []),
        ("\u00fcnlisten jobs", []),
        ("l", []),
    ],
)
def test_a_query_that_listens_is_followed_and_an_update_is_not_mistaken_for_one(
    sql: str, ops: list[ListenOp]
) -> None:
    wire = Wire()
    wire.exchange.listens = []
    wire.client(Query(sql))
    assert wire.exchange.listens == ops


@pytest.mark.parametrize("tag", [
    b"SELECT 1", b"INSERT 0 1", b"UPDATE 3", b"DELETE 0", b"FETCH 5", b"MOVE 2", b"COPY 9",
    b"MERGE 1", b"BEGIN", b"COMMIT", b"SET", b"SHOW", b"DISCARD ALL", b"SELECTED", b"MOVED",
    b"MERG", b"S", b"", b"CREATE TABLE", b"DEALLOCATE", b"FETCH", b"COPY",
])  # fmt: skip
def test_a_plain_tag_is_one_the_pooled_relay_has_nothing_to_do_with(tag: bytes) -> None:
    """What the relay reads of a command tag at a message's offset (compiled, byte by byte)
    says what ``bytes.startswith`` of the tags does, at the start of a buffer and within one."""
    for before in (b"", b"C\x00\x00\x00\x0d"):
        buf = before + tag + b"\x00"
        assert _plain_tag(buf, len(before)) == buf.startswith(_PLAIN_TAGS, len(before)), tag
    assert not _plain_tag(b"SELECT ", 7)
