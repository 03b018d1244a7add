"""Transaction mode's usual relay (`PlainRelay`) over a raw socket, against a real PostgreSQL:
the client's bytes cut anywhere, units that start with a Parse, several units in one read, a
broken frame after a good message, a Terminate between units; each handed on where the
relay stops and answered as the server would."""

from __future__ import annotations

import socket
import struct
from typing import Any
from urllib.parse import urlsplit

import pytest

PROTOCOL_3_0 = 196608


def frame(type_: bytes, payload: bytes = b"") -> bytes:
    return type_ + struct.pack(">i", len(payload) + 4) + payload


def query(sql: str) -> bytes:
    return frame(b"Q", sql.encode() + b"\0")


def extended(sql: str) -> bytes:
    """An unnamed Parse, Bind, Execute and Sync of ``sql`` (no parameters, text results)."""
    return (
        frame(b"P", b"\0" + sql.encode() + b"\0" + struct.pack(">h", 0))
        + frame(b"B", b"\0\0" + struct.pack(">hhh", 0, 0, 0))
        + frame(b"E", b"\0" + struct.pack(">i", 0))
        + frame(b"S")
    )


class Client:
    """A raw protocol client of the proxy, logged in."""

    def __init__(self, port: int, user: str, database: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        body = struct.pack(">i", PROTOCOL_3_0)
        body += b"".join(v.encode() + b"\0" for v in ("user", user, "database", database))
        self.sock.sendall(struct.pack(">i", len(body) + 5) + body + b"\0")
        self.until_ready()

    def read(self) -> tuple[bytes, bytes]:
        head = self._exactly(5)
        return head[:1], self._exactly(struct.unpack(">i", head[1:])[0] - 4)

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the proxy closed the connection")
            data += chunk
        return data

    def until_ready(self) -> list[tuple[bytes, bytes]]:
        """The messages up to ReadyForQuery, it included."""
        seen = []
        while True:
            message = self.read()
            seen.append(message)
            if message[0] == b"Z":
                return seen

    def rows(self) -> list[bytes]:
        """The first column of each DataRow up to ReadyForQuery (which must say idle)."""
        seen = self.until_ready()
        assert seen[-1] == (b"Z", b"I"), seen
        errors = [body for kind, body in seen if kind == b"E"]
        assert not errors, errors
        return [body[6:] for kind, body in seen if kind == b"D"]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client(proxy_factory: Any, pg_dsn: str) -> Any:
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1)
    parts = urlsplit(pg_dsn)
    made: list[Client] = []

    def connect() -> Client:
        made.append(Client(proxy.port, parts.username or "postgres", parts.path.lstrip("/")))
        return made[-1]

    yield connect
    for each in made:
        each.close()


def test_a_query_cut_anywhere_is_answered_once_whole(client: Any) -> None:
    conn = client()
    message = query("SELECT 41 + 1")
    for cut in (1, 3, 5, 9, len(message) - 1):
        conn.sock.sendall(message[:cut])
        conn.sock.sendall(message[cut:])
        assert conn.rows() == [b"42"]


def test_units_that_start_with_a_parse_and_several_in_one_read(client: Any) -> None:
    conn = client()
    conn.sock.sendall(extended("SELECT 1") + query("SELECT 2") + extended("SELECT 3"))
    assert conn.rows() == [b"1"]
    assert conn.rows() == [b"2"]
    assert conn.rows() == [b"3"]
    # a transaction's statements, then its end and a new unit, in one read
    conn.sock.sendall(query("BEGIN") + query("SELECT 4") + query("COMMIT") + query("SELECT 5"))
    assert conn.until_ready()[-1] == (b"Z", b"T")
    assert [m for m in conn.until_ready() if m[0] == b"D"][0][1][6:] == b"4"
    assert conn.rows() == []
    assert conn.rows() == [b"5"]


def test_two_clients_take_turns_on_one_connection(client: Any) -> None:
    first, second = client(), client()
    for i in range(5):
        first.sock.sendall(query(f"SELECT {i}"))
        second.sock.sendall(query(f"SELECT {i} + 100"))
        assert first.rows() == [str(i).encode()]
        assert second.rows() == [str(i + 100).encode()]


def test_a_broken_frame_after_a_good_query_ends_that_client_with_08P01(client: Any) -> None:
    conn, other = client(), client()
    conn.sock.sendall(query("SELECT 7") + b"\x01" + struct.pack(">i", 8) + b"junk")
    seen = []
    while True:
        try:
            seen.append(conn.read())
        except (ConnectionError, OSError):
            break
    assert seen[-1][0] == b"E" and b"C08P01\0" in seen[-1][1], seen
    # the other client goes on, on the one server connection (the good query it was
    # running when its client was ended: waited for, then reset)
    other.sock.sendall(query("SELECT 8"))
    assert other.rows() == [b"8"]


def test_a_terminate_ends_only_that_client(client: Any) -> None:
    between, within, other = client(), client(), client()
    between.sock.sendall(query("SELECT 9"))
    assert between.rows() == [b"9"]
    between.sock.sendall(frame(b"X"))  # between its units
    assert between.sock.recv(1) == b""  # closed by the proxy
    within.sock.sendall(query("SELECT pg_sleep(0.05)") + frame(b"X"))  # before the answer
    assert within.sock.recv(1) == b""
    other.sock.sendall(query("SELECT 10"))  # on the one server connection, reset
    assert other.rows() == [b"10"]


def test_the_proxys_own_command_is_answered_here_in_any_case_and_spacing(client: Any) -> None:
    one = client()
    for command in ("SET dbsight.role = primary", "  \n\tset DBSIGHT.role TO 'auto';",
                    "reset dbsight.role", "\x1cSET dbsight.role = primary",
                    "/* sqlcommenter */ SET dbsight.role = replica /*route='users'*/"):
        one.sock.sendall(query(command))
        seen = one.until_ready()
        assert seen[-1] == (b"Z", b"I") and (b"C", b"SET\0") in seen, (command, seen)
    # none of them reached the server: it has never heard of the setting
    one.sock.sendall(query("SHOW dbsight.role"))
    seen = one.until_ready()
    errors = [body for kind, body in seen if kind == b"E"]
    assert errors and b"C42704\0" in errors[0], seen
    one.sock.sendall(query("  SET application_name = 'plain'"))  # a SET of its own: sent on
    assert one.until_ready()[-1] == (b"Z", b"I")
    one.sock.sendall(query("SELECT 11"))
    assert one.rows() == [b"11"]


@pytest.mark.parametrize(
    "text",
    [
        "SET dbsight.role = replica", "set session dbsight.role to 'primary' ;",
        " RESET dbsight.role", "\r\n\x0b\x0cReSeT dbsight.role", "\x1f SET dbsight.role = auto",
        "\u00a0SET dbsight.role = auto", "\u2003RESET dbsight.role",
        "/* app */ SET dbsight.role = replica", "-- hint\nRESET dbsight.role",
        "SET dbsight.role = replica /*controller='users',framework='django'*/",
        "/*a*/-- b\n SET dbsight.role TO primary; -- c",
    ],
)
def test_every_text_the_proxy_answers_itself_is_one_the_relay_hands_on(text: str) -> None:
    from dbsight.proxy._plain_relay import maybe_own
    from dbsight.proxy._router import set_role_statement

    assert set_role_statement(text) is not None
    body = b"Q\0\0\0\0" + text.encode() + b"\0"
    assert maybe_own(body, 5, len(body))


@pytest.mark.parametrize(
    "text", ["SELECT 1", "select set_config('dbsight.role', 'x', false)", "  UPDATE t SET a = 1",
             "BEGIN", "SE", "", "WITH s AS (SELECT 1) SELECT * FROM s"],
)
def test_the_usual_statements_are_not_taken_for_the_proxys_own(text: str) -> None:
    from dbsight.proxy._plain_relay import maybe_own

    body = b"Q\0\0\0\0" + text.encode() + b"\0"
    assert not maybe_own(body, 5, len(body))
