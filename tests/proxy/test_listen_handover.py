"""A pooled client's notifications, without sockets: those its LISTEN connection passes on
reach it together, at once when it is between transactions and otherwise when its
transaction ends; a client that went away gets none. The handover of a LISTEN itself runs
against a real server in tests/proxy_server/test_proxy_listen.py."""

from __future__ import annotations

import asyncio

from dbsight.proxy._listen_handover import ListenHandover, listen_failed
from dbsight.proxy._listener import ChannelListener
from dbsight.proxy.protocol import BackendParser, NoticeResponse, NotificationResponse, encode


class ClientTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing


def _note(payload: str) -> bytes:
    return encode(NotificationResponse(4242, "jobs", payload))


def _no_listener() -> ChannelListener:
    raise AssertionError("no LISTEN moves here")


class Client:
    def __init__(self) -> None:
        self.holds_connection = False
        self.transport = ClientTransport()
        self.handover = ListenHandover(_no_listener, lambda: not self.holds_connection, None)
        self.handover.relay_to(self.transport)


async def test_notifications_between_transactions_go_out_together_at_the_next_turn() -> None:
    client = Client()
    client.handover.notify(_note("a"))
    client.handover.notify(_note("b"))
    assert client.transport.writes == []  # (what one read brought is passed on first)
    await asyncio.sleep(0)
    assert client.transport.writes == [_note("a") + _note("b")]


async def test_notifications_during_a_transaction_wait_for_its_end() -> None:
    client = Client()
    client.holds_connection = True
    client.handover.notify(_note("a"))
    await asyncio.sleep(0)
    assert client.transport.writes == []
    client.holds_connection = False
    client.handover.deliver()
    assert client.transport.writes == [_note("a")]
    client.handover.deliver()  # nothing more waits
    assert client.transport.writes == [_note("a")]


async def test_a_client_going_away_gets_no_notifications() -> None:
    client = Client()
    client.transport.closing = True
    client.handover.notify(_note("a"))
    await asyncio.sleep(0)
    assert client.transport.writes == []


async def test_before_its_relay_starts_a_client_is_not_between_transactions() -> None:
    handover = ListenHandover(_no_listener, lambda: True, None)
    assert not handover.between_transactions()
    handover.relay_to(ClientTransport())
    assert handover.between_transactions()


def test_a_listen_that_cannot_deliver_warns_the_client() -> None:
    parser = BackendParser()
    parser.feed(listen_failed("the LISTEN connection is down"))
    frame = parser.next_frame()
    assert frame is not None
    notice = parser.decode(frame)
    assert isinstance(notice, NoticeResponse)
    assert notice.fields["C"] == "01000" and notice.fields["S"] == "WARNING"
    assert "the LISTEN connection is down" in notice.fields["M"]
