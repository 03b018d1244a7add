"""The codec against a real PostgreSQL: raw socket, our encoder out, our parser and state in."""

from __future__ import annotations

import socket
import time
from urllib.parse import unquote, urlparse

import pytest

from dbsight.proxy.protocol import (
    AuthenticationOk,
    BackendKeyData,
    BackendParser,
    Bind,
    BindComplete,
    CancelRequest,
    CommandComplete,
    Completion,
    CopyData,
    CopyDone,
    CopyInResponse,
    CopyOutResponse,
    DataRow,
    Describe,
    EncryptionResponse,
    ErrorResponse,
    Execute,
    FrontendParser,
    NotificationResponse,
    ParameterStatus,
    Parse,
    ParseComplete,
    Query,
    ReadyForQuery,
    RequestKind,
    RowDescription,
    SessionState,
    SSLRequest,
    StartupMessage,
    Sync,
    Terminate,
    TransactionStatus,
    encode,
)

INT4, TEXT = 23, 25


class RawSession:
    """A client written with nothing but the codec: every byte goes through encode/parse.

    What it sends is also parsed back with a FrontendParser, so the state sees exactly what a
    proxy relaying these bytes would see.
    """

    def __init__(self, dsn: str) -> None:
        url = urlparse(dsn)
        self.address = (url.hostname or "127.0.0.1", url.port or 5432)
        self.user = unquote(url.username or "postgres")
        self.database = unquote(url.path.lstrip("/"))
        self.sock = socket.create_connection(self.address, timeout=30)
        self.reader = BackendParser()
        self.client_side = FrontendParser()
        self.state = SessionState()
        self.completions: list[Completion] = []

    def send(self, *messages: object) -> None:
        data = b"".join(encode(message) for message in messages)
        self.client_side.feed(data)
        for message in self.client_side:
            self.state.client_message(message, at=time.monotonic())
        self.sock.sendall(data)

    def receive_until(self, last: type) -> list[object]:
        received: list[object] = []
        while not received or not isinstance(received[-1], last):
            message = self.reader.next_message()
            if message is None:
                chunk = self.sock.recv(65536)
                assert chunk, f"server closed the connection; got {received}"
                self.reader.feed(chunk)
                continue
            completion = self.state.server_message(message, at=time.monotonic())
            if completion is not None:
                self.completions.append(completion)
            received.append(message)
        return received

    def startup(self) -> list[object]:
        self.send(
            StartupMessage(
                {"user": self.user, "database": self.database, "application_name": "codec-test"}
            )
        )
        return self.receive_until(ReadyForQuery)

    def close(self) -> None:
        try:
            self.sock.sendall(encode(Terminate()))
        finally:
            self.sock.close()


@pytest.fixture
def session(pg_dsn: str):
    s = RawSession(pg_dsn)
    s.startup()
    yield s
    s.close()


def test_startup_and_authentication(pg_dsn: str) -> None:
    s = RawSession(pg_dsn)
    try:
        received = s.startup()
        assert received[0] == AuthenticationOk()  # trust authentication
        parameters = {m.name: m.value for m in received if isinstance(m, ParameterStatus)}
        assert parameters["application_name"] == "codec-test"
        assert parameters["client_encoding"] == "UTF8"
        assert "server_version" in parameters
        (key,) = [m for m in received if isinstance(m, BackendKeyData)]
        assert key.pid > 0 and len(key.secret_key) == 4
        assert received[-1] == ReadyForQuery(TransactionStatus.IDLE)
        assert s.state.authenticated and s.state.at_rest
        assert s.state.backend_pid == key.pid
        assert s.state.server_parameters == parameters
    finally:
        s.close()


def test_ssl_request_is_answered_with_one_byte(pg_dsn: str) -> None:
    s = RawSession(pg_dsn)
    try:
        s.sock.sendall(encode(SSLRequest()))
        s.reader.expect_encryption_response()
        (answer,) = s.receive_until(EncryptionResponse)
        assert isinstance(answer, EncryptionResponse)
        if not answer.accepted:  # the test cluster runs without TLS: carry on in clear text
            assert s.startup()[-1] == ReadyForQuery(TransactionStatus.IDLE)
    finally:
        s.sock.close()


def test_simple_query(session: RawSession) -> None:
    session.send(Query("SELECT 1 AS one, NULL::text AS nothing, 'x' || 'y' AS s"))
    received = session.receive_until(ReadyForQuery)
    description, row, complete, ready = received
    assert isinstance(description, RowDescription)
    assert [(f.name, f.type_oid, f.format) for f in description.fields] == [
        ("one", INT4, 0),
        ("nothing", TEXT, 0),
        ("s", TEXT, 0),
    ]
    assert description.fields[0].type_size == 4
    assert row == DataRow((b"1", None, b"xy"))
    assert complete == CommandComplete("SELECT 1") and complete.rows == 1
    assert ready == ReadyForQuery(TransactionStatus.IDLE)
    (done,) = session.completions
    assert done.ok and done.request.kind is RequestKind.QUERY and done.rows == 1
    assert done.duration is not None and done.duration >= 0


def test_extended_protocol_pipeline(session: RawSession) -> None:
    session.send(
        Parse("add_one", "SELECT $1::int + 1 AS n", (INT4,)),
        Bind("", "add_one", (0,), (b"41",), (0,)),
        Describe("P", ""),
        Execute("", 0),
        Bind("", "add_one", (1,), ((99).to_bytes(4, "big"),), (1,)),  # binary in, binary out
        Execute("", 0),
        Sync(),
    )
    received = session.receive_until(ReadyForQuery)
    assert received[:2] == [ParseComplete(), BindComplete()]
    description = received[2]
    assert isinstance(description, RowDescription)
    assert [(f.name, f.type_oid) for f in description.fields] == [("n", INT4)]
    assert received[3:] == [
        DataRow((b"42",)),
        CommandComplete("SELECT 1"),
        BindComplete(),
        DataRow(((100).to_bytes(4, "big"),)),
        CommandComplete("SELECT 1"),
        ReadyForQuery(TransactionStatus.IDLE),
    ]
    assert [(c.request.kind, c.request.query, c.rows) for c in session.completions] == [
        (RequestKind.EXECUTE, "SELECT $1::int + 1 AS n", 1),
        (RequestKind.EXECUTE, "SELECT $1::int + 1 AS n", 1),
    ]
    assert session.state.statements == {"add_one": "SELECT $1::int + 1 AS n"}
    assert session.state.at_rest


def test_error_mid_pipeline(session: RawSession) -> None:
    session.send(
        Parse("", "SELECT 1"), Bind("", ""), Execute(""),
        Parse("", "SELECT 1/0"), Bind("", ""), Execute(""),
        Parse("", "SELECT 3"), Bind("", ""), Execute(""),
        Sync(),
    )  # fmt: skip
    received = session.receive_until(ReadyForQuery)
    error = received[-2]
    assert isinstance(error, ErrorResponse) and error.sqlstate == "22012"
    assert error.severity == "ERROR" and error.message == "division by zero"
    ok, failed = session.completions
    assert ok.tag == "SELECT 1"
    # 1/0 is folded when the unnamed statement is planned, at Bind: the error answers the Bind,
    # and its Execute is among the requests the server skipped.
    assert failed.request.kind is RequestKind.BIND and failed.error == error
    assert failed.request.query == "SELECT 1/0"
    assert [(r.kind, r.query) for r in failed.skipped] == [
        (RequestKind.EXECUTE, "SELECT 1/0"),
        (RequestKind.PARSE, "SELECT 3"),
        (RequestKind.BIND, "SELECT 3"),
        (RequestKind.EXECUTE, "SELECT 3"),
    ]
    assert session.state.at_rest


def test_transaction_status_and_syntax_error(session: RawSession) -> None:
    session.send(Query("BEGIN"))
    session.receive_until(ReadyForQuery)
    assert session.state.transaction_status is TransactionStatus.IN_TRANSACTION
    session.send(Query("SELEC 1"))
    received = session.receive_until(ReadyForQuery)
    assert received[0].sqlstate == "42601" and received[0].position == 1
    assert session.state.transaction_status is TransactionStatus.FAILED
    session.send(Query("ROLLBACK"))
    session.receive_until(ReadyForQuery)
    assert session.state.at_rest


def test_copy_in_and_out(session: RawSession) -> None:
    session.send(Query("CREATE TABLE t (id int, name text)"))
    session.receive_until(ReadyForQuery)
    session.send(Query("COPY t FROM STDIN"))
    (copy_in,) = session.receive_until(CopyInResponse)
    assert copy_in == CopyInResponse(0, (0, 0))
    session.send(CopyData(b"1\tone\n"), CopyData(b"2\ttwo\n3\t\\N\n"), CopyDone())
    assert session.receive_until(ReadyForQuery)[0] == CommandComplete("COPY 3")
    session.send(Query("COPY (SELECT * FROM t ORDER BY id) TO STDOUT"))
    received = session.receive_until(ReadyForQuery)
    assert received == [
        CopyOutResponse(0, (0, 0)),
        CopyData(b"1\tone\n"),
        CopyData(b"2\ttwo\n"),
        CopyData(b"3\t\\N\n"),
        CopyDone(),
        CommandComplete("COPY 3"),
        ReadyForQuery(TransactionStatus.IDLE),
    ]
    assert [c.rows for c in session.completions[-2:]] == [3, 3]


def test_listen_notify(session: RawSession) -> None:
    session.send(Query("LISTEN jobs; NOTIFY jobs, 'run'"))
    received = session.receive_until(ReadyForQuery)
    (note,) = [m for m in received if isinstance(m, NotificationResponse)]
    assert (note.channel, note.payload, note.pid) == ("jobs", "run", session.state.backend_pid)
    assert [c.tag for c in session.completions] == ["LISTEN", "NOTIFY"]


def test_cancel_request(pg_dsn: str, session: RawSession) -> None:
    session.send(Query("SELECT pg_sleep(60)"))
    time.sleep(0.2)  # let the query start; the cancel is checked by its outcome, not by time
    with socket.create_connection(session.address, timeout=10) as cancel:
        cancel.sendall(
            encode(CancelRequest(session.state.backend_pid, session.state.backend_secret_key))
        )
        assert cancel.recv(1) == b""  # the server just closes a cancel connection
    received = session.receive_until(ReadyForQuery)
    errors = [m for m in received if isinstance(m, ErrorResponse)]
    assert errors and errors[0].sqlstate == "57014"  # query_canceled


def test_runtime_error_answers_the_execute(session: RawSession) -> None:
    session.send(
        Parse("", "SELECT 1 / (x - 1) FROM generate_series(1, 1) AS x"), Bind("", ""), Execute(""),
        Parse("", "SELECT 2"), Bind("", ""), Execute(""),
        Sync(),
    )  # fmt: skip
    received = session.receive_until(ReadyForQuery)
    assert received[:2] == [ParseComplete(), BindComplete()]
    (failed,) = session.completions
    assert failed.request.kind is RequestKind.EXECUTE and failed.error.sqlstate == "22012"
    assert failed.request.query == "SELECT 1 / (x - 1) FROM generate_series(1, 1) AS x"
    assert [r.kind for r in failed.skipped] == [
        RequestKind.PARSE,
        RequestKind.BIND,
        RequestKind.EXECUTE,
    ]
    assert session.state.at_rest
