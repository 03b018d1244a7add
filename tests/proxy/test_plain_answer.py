"""The usual answer read in one pass (`plain_answer`) and message by message agree: what it
takes, it takes whole and exactly; anything else is left to the message-by-message reading,
and an Exchange ends in the same state, with the same events, either way.

Runs on the compiled module after ``./dev setup`` and again on its Python source
(tests/proxy/test_compiled_variants.py).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import pytest
from wire_messages import COLUMNS, IDLE, IN_TX, ROW, Recorded, wire

from dbsight.proxy._exchange import Exchange
from dbsight.proxy._plain_answer import (
    BIND,
    DESCRIBE,
    EXECUTE,
    PARSE,
    QUERY,
    REPLY,
    SWALLOW,
    SYNC,
    plain_answer,
)
from dbsight.proxy.protocol import (
    Bind,
    BindComplete,
    CommandComplete,
    Describe,
    ErrorResponse,
    Execute,
    NoData,
    NoticeResponse,
    ParameterStatus,
    Parse,
    ParseComplete,
    PortalSuspended,
    Query,
    Sync,
    encode,
)

SELECT = "SELECT n FROM t WHERE id = $1"

CTX = object()

# (what pending holds, the answer, the rows counted, the tag)
TAKEN = [
    ([(QUERY, CTX)], wire(COLUMNS, ROW, ROW, CommandComplete("SELECT 2"), IDLE), 2, b"SELECT 2"),
    ([(QUERY, CTX)], wire(CommandComplete("INSERT 0 1"), IN_TX), 0, b"INSERT 0 1"),
    ([(QUERY, CTX)], wire(COLUMNS, CommandComplete("SELECT 0"), IDLE), 0, b"SELECT 0"),
    (
        [(BIND, None), (DESCRIBE, None), (EXECUTE, CTX), (SYNC, None)],
        wire(BindComplete(), COLUMNS, ROW, CommandComplete("SELECT 1"), IDLE),
        1,
        b"SELECT 1",
    ),
    (
        [(BIND, None), (DESCRIBE, None), (EXECUTE, CTX), (SYNC, None)],
        wire(BindComplete(), NoData(), CommandComplete("UPDATE 3"), IDLE),
        0,
        b"UPDATE 3",
    ),
    (
        [(BIND, None), (EXECUTE, CTX), (SYNC, None)],
        wire(BindComplete(), ROW, ROW, ROW, CommandComplete("SELECT 3"), IN_TX),
        3,
        b"SELECT 3",
    ),
    (
        [(PARSE, "s1"), (BIND, None), (DESCRIBE, None), (EXECUTE, CTX), (SYNC, None)],
        wire(ParseComplete(), BindComplete(), COLUMNS, ROW, CommandComplete("SELECT 1"), IDLE),
        1,
        b"SELECT 1",
    ),
]


@pytest.mark.parametrize(("pending", "answer", "rows", "tag"), TAKEN)
def test_a_whole_answer_to_what_is_pending_is_read_at_once(
    pending: list[Any], answer: bytes, rows: int, tag: bytes
) -> None:
    queue = deque(pending)
    found = plain_answer(answer, queue)
    assert found is not None
    ctx, counted, start, end = found
    assert (ctx, counted, answer[start:end]) == (CTX, rows, tag)
    assert list(queue) == pending  # only read


LEFT = [
    ("an error", [(QUERY, CTX)], wire(ErrorResponse({"C": "22012", "M": "x"}), IDLE)),
    ("a notice", [(QUERY, CTX)], wire(NoticeResponse({"M": "n"}), CommandComplete("DO"), IDLE)),
    ("a setting", [(QUERY, CTX)],
     wire(ParameterStatus("TimeZone", "UTC"), CommandComplete("SET"), IDLE)),
    ("two statements", [(QUERY, CTX)],
     wire(CommandComplete("BEGIN"), CommandComplete("SELECT 0"), IN_TX)),
    ("no end yet", [(QUERY, CTX)], wire(COLUMNS, ROW, CommandComplete("SELECT 1"))),
    ("a Query more", [(QUERY, CTX), (QUERY, None)], wire(CommandComplete("BEGIN"), IN_TX)),
    ("a suspended portal", [(BIND, None), (EXECUTE, CTX), (SYNC, None)],
     wire(BindComplete(), ROW, PortalSuspended(), IN_TX)),
    ("an injected Parse", [(SWALLOW, "s1"), (BIND, None), (EXECUTE, CTX), (SYNC, None)],
     wire(ParseComplete(), BindComplete(), CommandComplete("SELECT 0"), IDLE)),
    ("a reply of the proxy's", [(BIND, None), (EXECUTE, CTX), (SYNC, None), (REPLY, b"3")],
     wire(BindComplete(), CommandComplete("SELECT 0"), IDLE)),
    ("answers out of order", [(BIND, None), (EXECUTE, CTX), (SYNC, None)],
     wire(ParseComplete(), CommandComplete("SELECT 0"), IDLE)),
    ("nothing asked", [], wire(CommandComplete("SELECT 0"), IDLE)),
    ("a Sync not answered", [(BIND, None), (EXECUTE, CTX), (SYNC, None), (SYNC, None)],
     wire(BindComplete(), CommandComplete("SELECT 0"), IDLE)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pending", "answer"), [case[1:] for case in LEFT], ids=[c[0] for c in LEFT]
)
def test_anything_else_is_left_to_the_reading_message_by_message(
    pending: list[Any], answer: bytes
) -> None:
    assert plain_answer(answer, deque(pending)) is None


def test_a_cut_answer_or_a_broken_frame_is_never_taken() -> None:
    pending = deque([(QUERY, CTX)])
    answer = wire(COLUMNS, ROW, ROW, CommandComplete("SELECT 2"), IDLE)
    boundaries = {0, *(len(wire(*m)) for m in ([COLUMNS], [COLUMNS, ROW], [COLUMNS, ROW, ROW]))}
    for cut in range(len(answer)):
        assert plain_answer(answer[:cut], pending) is None  # the rest still to come
        if cut not in boundaries:  # (from a message's start on, it is a whole answer)
            assert plain_answer(answer[cut:], pending) is None
    broken = bytearray(answer)
    broken[1:5] = b"\x7f\xff\xff\xff"  # a length past the end
    assert plain_answer(bytes(broken), pending) is None
    broken[1:5] = b"\x00\x00\x00\x02"  # shorter than its own length field
    assert plain_answer(bytes(broken), pending) is None


# client messages, then the server's answer: each cycle as the relay meets it
CYCLES: list[tuple[list[Any], list[Any]]] = [
    ([Query("SELECT n FROM t")], [COLUMNS, ROW, ROW, CommandComplete("SELECT 2"), IDLE]),
    ([Query("BEGIN")], [CommandComplete("BEGIN"), IN_TX]),
    ([Query("SET search_path = s")], [CommandComplete("SET"), IN_TX]),
    ([Parse("", SELECT), Bind("", ""), Describe("P", ""), Execute("", 0), Sync()],
     [ParseComplete(), BindComplete(), COLUMNS, ROW, CommandComplete("SELECT 1"), IN_TX]),
    ([Bind("", ""), Execute("", 0), Sync()], [BindComplete(), CommandComplete("SELECT 0"), IN_TX]),
    ([Query("SHOW work_mem")], [ROW, CommandComplete("SHOW"), IN_TX]),
    ([Query("COMMIT")], [CommandComplete("COMMIT"), IDLE]),
    ([Query("CREATE TEMP TABLE x (n int)")], [CommandComplete("CREATE TABLE"), IDLE]),
]  # fmt: skip


def _run(whole: bool) -> tuple[list[Any], Exchange]:
    exchange = Exchange(user="u", database="d", application_name=None, client_addr=None,
                        pooled=True)  # fmt: skip
    for requests, answer in CYCLES:
        for message in requests:
            raw = encode(message)
            exchange.request(raw[0], raw, 5, len(raw), time.perf_counter())
        data = wire(*answer)
        chunks = [data] if whole else [data[i : i + 1] for i in range(len(data))]
        relayed = b"".join(exchange.answers(chunk) for chunk in chunks)
        assert relayed == data
        assert not exchange.pending
    return [exchange.status, exchange.dirty, exchange.ddl_seen, exchange.ddl_count], exchange


def test_a_pooled_exchange_judges_each_query_by_its_own_analysis(recorded: Recorded) -> None:
    """What a Query leaves in the server session is read from its analysis once per run of
    one statement: a different one after it is judged by its own."""
    exchange = Exchange(user="u", database="d", application_name=None, client_addr=None,
                        pooled=True)  # fmt: skip

    def run(sql: str, tag: str) -> tuple[bool, bool]:
        raw = encode(Query(sql))
        exchange.request(raw[0], raw, 5, len(raw), time.perf_counter())
        exchange.answers(wire(COLUMNS, ROW, CommandComplete(tag), IDLE))
        return exchange.dirty, exchange.wrote

    assert run("SELECT 1", "SELECT 1") == (False, False)
    assert run("SELECT 1", "SELECT 1") == (False, False)
    assert run("SELECT pg_advisory_lock(42)", "SELECT 1")[0] is True
    exchange.dirty = exchange.wrote = False  # (as a new transaction on the connection)
    assert run("SELECT 1", "SELECT 1") == (False, False)
    assert run("SELECT 1 FROM pg_class", "SELECT 1") == (False, False)
    assert run("INSERT INTO t VALUES (1)", "INSERT 0 1") == (False, True)
    assert run("CREATE TEMP TABLE scratch (x int)", "CREATE TABLE")[0] is True


def test_an_exchange_ends_the_same_whether_answers_come_whole_or_byte_by_byte(
    recorded: Recorded,
) -> None:
    whole, _ = _run(whole=True)
    at_once = recorded.rows()
    recorded.events.clear()
    split, _ = _run(whole=False)
    assert whole == split
    assert whole[1] is True  # (the SET and the CREATE left state behind: judged either way)
    assert at_once == recorded.rows()
    assert at_once == [
        ("SELECT n FROM t", 2, "ok"),
        ("BEGIN", None, "ok"),
        ("SET search_path = s", None, "ok"),
        (SELECT, 1, "ok"),
        (SELECT, 0, "ok"),
        ("SHOW work_mem", 1, "ok"),
        ("COMMIT", None, "ok"),
        ("CREATE TEMP TABLE x (n int)", None, "ok"),
    ]

