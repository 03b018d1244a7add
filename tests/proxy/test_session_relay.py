"""`SessionRelay` from the bytes alone: whole client messages go on in order however the reads
cut them, each told to the exchange; a broken header ends the session after what came
before it; the server's bytes reach the client first; a failing observation stops observing
and the relay goes on (the real-server tests are in tests/proxy_server/test_proxy_session.py)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from wire_messages import COLUMNS, IDLE, ROW, wire

from dbsight.proxy import protocol as p
from dbsight.proxy._client_fields import SessionFields
from dbsight.proxy._exchange import Exchange
from dbsight.proxy._session_relay import SessionRelay
from dbsight.proxy.protocol import CommandComplete, Query, Sync


class Transport:
    """What a relay writes to one side."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    @property
    def data(self) -> bytes:
        return b"".join(self.written)


class Session(SessionFields):
    """What the relay tells its session (whose fields it reads in C are `SessionFields`')."""

    def __init__(self) -> None:
        super().__init__()
        self.violations: list[p.ProtocolError] = []
        self.stopped: list[tuple[str, BaseException]] = []
        self.ended_for_shutdown = 0

    def _violation(self, exc: p.ProtocolError) -> None:
        self.violations.append(exc)

    def _stop_observing(self, where: str, exc: BaseException) -> None:
        self.stopped.append((where, exc))

    def _end_for_shutdown(self) -> None:
        self.ended_for_shutdown += 1


def relay_of(exchange: Exchange | None) -> tuple[SessionRelay, Session, Transport, Transport]:
    session, client, server = Session(), Transport(), Transport()
    return SessionRelay(session, exchange, client, server, 1 << 20), session, client, server


def exchange() -> Exchange:
    return Exchange(user="u", database="d", application_name=None, client_addr=None)


def test_client_bytes_cut_anywhere_go_on_as_whole_messages(recorded: Any) -> None:
    messages = [wire(Query("SELECT 1")), wire(Query("SELECT 2")), wire(Sync())]
    sent = b"".join(messages)
    boundaries = {sum(map(len, messages[:k])) for k in range(len(messages) + 1)}
    for cut in range(1, len(sent)):
        watched = exchange()
        relay, session, _, server = relay_of(watched)
        relay.client_data(sent[:cut])
        relay.client_data(sent[cut:])
        assert server.data == sent and not session.violations
        written = [sum(map(len, server.written[: k + 1])) for k in range(len(server.written))]
        assert set(written) <= boundaries, (cut, written)  # none ends inside a message
        assert watched.statement_count == 2


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"\x01" + struct.pack(">i", 8), "invalid frontend message type b'\\x01'"),
        (b"Q" + struct.pack(">i", 3), "invalid message length 3"),
        (b"Q" + struct.pack(">i", -5), "invalid message length -5"),
        (b"Q" + struct.pack(">i", 1 << 21), "over the limit of 1048576"),
    ],
)
def test_a_broken_header_ends_the_session_after_what_came_before(
    recorded: Any, header: bytes, message: str
) -> None:
    relay, session, _, server = relay_of(exchange())
    good = wire(Query("SELECT 1"))
    relay.client_data(good + header + b"rest of it")
    assert server.data == good
    (violation,) = session.violations
    assert violation.sqlstate == "08P01" and message in violation.message


def test_server_bytes_reach_the_client_then_the_exchange(recorded: Any) -> None:
    watched = exchange()
    relay, session, client, _ = relay_of(watched)
    relay.client_data(wire(Query("SELECT n FROM t")))
    answer = wire(COLUMNS, ROW, CommandComplete("SELECT 1"), IDLE)
    relay.server_data(answer[:7])
    relay.server_data(answer[7:])
    assert client.data == answer and session.ended_for_shutdown == 0
    assert recorded.rows() == [("SELECT n FROM t", 1, "ok")]
    session._shutting_down = True  # an idle session ends at once when the proxy shuts down
    relay.client_data(wire(Query("SELECT n FROM t")))
    relay.server_data(answer)
    assert session.ended_for_shutdown == 1


class FailingExchange(Exchange):
    """An exchange whose reading of client messages fails (a bug in the observation)."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("observation bug")


def test_a_failing_observation_stops_observing_and_the_relay_goes_on(recorded: Any) -> None:
    relay, session, client, server = relay_of(
        FailingExchange(user="u", database="d", application_name=None, client_addr=None)
    )
    sent = wire(Query("SELECT 1"), Query("SELECT 2"))
    relay.client_data(sent)
    assert server.data == sent
    ((where, exc),) = session.stopped
    assert where == "client message" and str(exc) == "observation bug"
    relay.server_data(b"anything at all")  # not read any more: relayed as it is
    relay.client_data(wire(Query("SELECT 3")))
    assert client.data == b"anything at all" and len(session.stopped) == 1
    assert not session.violations and recorded.rows() == []


def test_without_observation_bytes_are_only_framed(recorded: Any) -> None:
    relay, session, client, server = relay_of(None)
    sent = wire(Query("SELECT 1"))
    relay.client_data(sent[:4])
    assert server.data == b""
    relay.client_data(sent[4:])
    relay.server_data(b"\x00\x01")
    assert server.data == sent and client.data == b"\x00\x01" and not session.stopped
