"""Each message class: bytes written by hand from the protocol documentation, and round trips."""

from __future__ import annotations

import struct

import pytest
from proxy_samples import BACKEND, FRONTEND_TYPED, STARTUP

from dbsight.proxy.protocol import (
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    BackendKeyData,
    BackendParser,
    Bind,
    CancelRequest,
    Close,
    CommandComplete,
    DataRow,
    EncryptionResponse,
    ErrorResponse,
    Execute,
    FieldDescription,
    FrontendParser,
    GSSENCRequest,
    NoticeResponse,
    NotificationResponse,
    ParameterStatus,
    Parse,
    PasswordMessage,
    ProtocolViolation,
    Query,
    ReadyForQuery,
    RowDescription,
    SASLInitialResponse,
    SASLResponse,
    SSLRequest,
    StartupMessage,
    Sync,
    TransactionStatus,
    authentication_ok,
    authentication_sasl,
    authentication_sasl_continue,
    authentication_sasl_final,
    backend_key_data,
    decode_backend,
    decode_frontend,
    encode,
    encryption_response,
    error_response,
    parameter_status,
    ready_for_query,
)


def parse_backend(data: bytes) -> list[object]:
    reader = BackendParser()
    reader.feed(data)
    messages = list(reader)
    assert reader.buffered == 0
    return messages


def parse_frontend(data: bytes, *, started: bool = True) -> list[object]:
    reader = FrontendParser()
    if started:
        reader.feed(encode(StartupMessage({"user": "u"})))
        assert isinstance(reader.next_message(), StartupMessage)
    reader.feed(data)
    messages = list(reader)
    assert reader.buffered == 0
    return messages


# ---------------------------------------------------------------------------------- captures


FRONTEND_CAPTURES = [
    (b"Q\x00\x00\x00\x0dSELECT 1\x00", Query("SELECT 1")),
    (b"S\x00\x00\x00\x04", Sync()),
    (
        b"P\x00\x00\x00\x17s1\x00SELECT $1\x00\x00\x01\x00\x00\x00\x17",
        Parse("s1", "SELECT $1", (23,)),
    ),
    (
        # portal "", statement "s1", 1 format (binary), 2 values (int4 42, NULL), 0 result formats
        (
            b"B\x00\x00\x00\x1c\x00s1\x00\x00\x01\x00\x01\x00\x02"
            b"\x00\x00\x00\x04\x00\x00\x00\x2a\xff\xff\xff\xff\x00\x00"
        ),
        Bind("", "s1", (1,), (b"\x00\x00\x00\x2a", None), ()),
    ),
    (b"E\x00\x00\x00\x09\x00\x00\x00\x00\x00", Execute("", 0)),
    (b"p\x00\x00\x00\x0bsecret\x00", PasswordMessage(b"secret\x00")),
]

BACKEND_CAPTURES = [
    (b"R\x00\x00\x00\x08\x00\x00\x00\x00", AuthenticationOk()),
    (
        b"R\x00\x00\x00\x0c\x00\x00\x00\x05\xde\xad\xbe\xef",
        AuthenticationMD5Password(b"\xde\xad\xbe\xef"),
    ),
    (
        b"R\x00\x00\x00\x17\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00",
        AuthenticationSASL(("SCRAM-SHA-256",)),
    ),
    (b"R\x00\x00\x00\x0d\x00\x00\x00\x0br=abc", AuthenticationSASLContinue(b"r=abc")),
    (b"S\x00\x00\x00\x19client_encoding\x00UTF8\x00", ParameterStatus("client_encoding", "UTF8")),
    (
        b"K\x00\x00\x00\x0c\x00\x00\x10\x92\x12\x34\x56\x78",
        BackendKeyData(4242, b"\x12\x34\x56\x78"),
    ),
    (b"Z\x00\x00\x00\x05I", ReadyForQuery(TransactionStatus.IDLE)),
    (b"Z\x00\x00\x00\x05E", ReadyForQuery(TransactionStatus.FAILED)),
    (
        (
            b"T\x00\x00\x00\x21\x00\x01?column?\x00\x00\x00\x00\x00\x00\x00"
            b"\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff\x00\x00"
        ),
        RowDescription((FieldDescription("?column?", 0, 0, 23, 4, -1, 0),)),
    ),
    (b"D\x00\x00\x00\x0f\x00\x02\x00\x00\x00\x011\xff\xff\xff\xff", DataRow((b"1", None))),
    (b"C\x00\x00\x00\x0dSELECT 1\x00", CommandComplete("SELECT 1")),
    (
        b"E\x00\x00\x00\x2bSERROR\x00VERROR\x00C42601\x00Msyntax error\x00P8\x00\x00",
        ErrorResponse({"S": "ERROR", "V": "ERROR", "C": "42601", "M": "syntax error", "P": "8"}),
    ),
    (
        b"A\x00\x00\x00\x11\x00\x00\x10\x92jobs\x00run\x00",
        NotificationResponse(4242, "jobs", "run"),
    ),
]


@pytest.mark.parametrize("raw, message", FRONTEND_CAPTURES, ids=lambda v: type(v).__name__)
def test_frontend_capture_decodes_and_encodes_to_the_same_bytes(
    raw: bytes, message: object
) -> None:
    assert parse_frontend(raw) == [message]
    assert encode(message) == raw


@pytest.mark.parametrize("raw, message", BACKEND_CAPTURES, ids=lambda v: type(v).__name__)
def test_backend_capture_decodes_and_encodes_to_the_same_bytes(raw: bytes, message: object) -> None:
    assert parse_backend(raw) == [message]
    assert encode(message) == raw


def test_startup_packets_by_hand() -> None:
    ssl = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
    gss = b"\x00\x00\x00\x08\x04\xd2\x16\x30"
    cancel = b"\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x10\x92\x12\x34\x56\x78"
    startup = b"\x00\x00\x00\x12\x00\x03\x00\x00user\x00bob\x00\x00"
    assert encode(SSLRequest()) == ssl
    assert encode(GSSENCRequest()) == gss
    assert encode(CancelRequest(4242, b"\x12\x34\x56\x78")) == cancel
    assert encode(StartupMessage({"user": "bob"})) == startup
    # 0x12 = 4 (length) + 4 (version) + "user\0bob\0" (9) + terminating "\0" (1)
    assert struct.unpack(">i", startup[:4])[0] == len(startup)
    assert parse_frontend(ssl + gss + startup, started=False) == [
        SSLRequest(),
        GSSENCRequest(),
        StartupMessage({"user": "bob"}),
    ]
    assert parse_frontend(cancel, started=False) == [CancelRequest(4242, b"\x12\x34\x56\x78")]


# ---------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("message", FRONTEND_TYPED, ids=lambda m: type(m).__name__)
def test_frontend_round_trip(message: object) -> None:
    raw = encode(message)
    assert parse_frontend(raw) == [message]
    assert decode_frontend(raw[:1], raw) == message


@pytest.mark.parametrize("message", BACKEND, ids=lambda m: type(m).__name__)
def test_backend_round_trip(message: object) -> None:
    raw = encode(message)
    assert parse_backend(raw) == [message]
    assert decode_backend(raw[:1], raw) == message


def test_startup_round_trip_keeps_version_and_parameters() -> None:
    message = StartupMessage(
        {"user": "u", "options": "-c search_path=x"}, protocol_version=(3 << 16) | 2
    )
    assert parse_frontend(encode(message), started=False) == [message]
    assert (message.major, message.minor) == (3, 2)
    assert parse_frontend(encode(STARTUP), started=False) == [STARTUP]


def test_encode_rejects_what_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError, match="NUL"):
        encode(Query("a\0b"))
    with pytest.raises(ValueError):
        encode(Execute("", 2**31))
    with pytest.raises(ValueError, match="secret key"):
        encode(BackendKeyData(1, b"\x01"))
    with pytest.raises(ValueError, match="kind"):
        encode(Close("X", "n"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="salt"):
        encode(AuthenticationMD5Password(b"\x01"))
    with pytest.raises(TypeError):
        encode("not a message")


# ---------------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    "tag, command, rows",
    [
        ("SELECT 5", "SELECT", 5),
        ("INSERT 0 3", "INSERT", 3),
        ("UPDATE 2", "UPDATE", 2),
        ("DELETE 0", "DELETE", 0),
        ("COPY 10", "COPY", 10),
        ("MERGE 1", "MERGE", 1),
        ("FETCH 7", "FETCH", 7),
        ("MOVE 2", "MOVE", 2),
        ("CREATE TABLE", "CREATE TABLE", None),
        ("BEGIN", "BEGIN", None),
        ("DISCARD ALL", "DISCARD ALL", None),
        ("SELECT", "SELECT", None),
        ("SELECT ５", "SELECT ５", None),  # a non-ASCII digit is no count
    ],
)
def test_command_complete_rows_and_command(tag: str, command: str, rows: int | None) -> None:
    message = CommandComplete(tag)
    assert message.command == command
    assert message.rows == rows


def test_error_and_notice_fields_by_name() -> None:
    error = ErrorResponse(
        {
            "S": "ERREUR",
            "V": "ERROR",
            "C": "23505",
            "M": 'duplicate key value violates unique constraint "t_pkey"',
            "D": "Key (id)=(1) already exists.",
            "H": "try another id",
            "P": "12",
            "s": "public",
            "t": "t",
            "n": "t_pkey",
            "W": "SQL function",
        }
    )
    assert error.severity == "ERROR"  # the non-localized one
    assert error.sqlstate == "23505"
    assert error.message.startswith("duplicate key")
    assert error.detail == "Key (id)=(1) already exists."
    assert error.hint == "try another id"
    assert error.position == 12
    assert (error.schema_name, error.table_name, error.constraint_name) == ("public", "t", "t_pkey")
    assert error.where == "SQL function"
    assert error.column_name is None
    notice = NoticeResponse({"S": "WARNING", "M": "careful"})
    assert notice.severity == "WARNING"  # falls back to the localized severity
    assert notice.sqlstate is None and notice.position is None


def test_password_message_readings() -> None:
    assert PasswordMessage(b"md5deadbeef\x00").password() == "md5deadbeef"
    initial = encode(SASLInitialResponse("SCRAM-SHA-256", b"n,,n=,r=abc"))
    assert initial == b"p\x00\x00\x00\x21SCRAM-SHA-256\x00\x00\x00\x00\x0bn,,n=,r=abc"
    (message,) = parse_frontend(initial)
    assert message.sasl_initial_response() == SASLInitialResponse("SCRAM-SHA-256", b"n,,n=,r=abc")
    assert PasswordMessage(b"X\x00\xff\xff\xff\xff").sasl_initial_response() == SASLInitialResponse(
        "X", None
    )
    (message,) = parse_frontend(encode(SASLResponse(b"c=biws,r=abc,p=proof")))
    assert message.sasl_response() == SASLResponse(b"c=biws,r=abc,p=proof")


@pytest.mark.parametrize(
    "payload, reading",
    [
        (b"secret", "password"),  # no NUL
        (b"a\x00b\x00", "password"),  # two strings
        (b"SCRAM-SHA-256", "sasl_initial_response"),  # mechanism not terminated
        (b"SCRAM-SHA-256\x00\x00\x00", "sasl_initial_response"),  # length cut short
        (
            b"SCRAM-SHA-256\x00\x00\x00\x00\x09abc",
            "sasl_initial_response",
        ),  # data shorter than said
    ],
)
def test_password_message_malformed_readings(payload: bytes, reading: str) -> None:
    with pytest.raises(ProtocolViolation) as info:
        getattr(PasswordMessage(payload), reading)()
    assert info.value.sqlstate == "08P01"


def test_builders() -> None:
    raw = error_response("08P01", "invalid message length", "FATAL", detail="d", hint="h")
    (error,) = parse_backend(raw)
    assert error.fields == {
        "S": "FATAL",
        "V": "FATAL",
        "C": "08P01",
        "M": "invalid message length",
        "D": "d",
        "H": "h",
    }
    assert ready_for_query() == b"Z\x00\x00\x00\x05I"
    assert ready_for_query("T") == b"Z\x00\x00\x00\x05T"
    assert authentication_ok() == b"R\x00\x00\x00\x08\x00\x00\x00\x00"
    assert parse_backend(parameter_status("TimeZone", "UTC")) == [
        ParameterStatus("TimeZone", "UTC")
    ]
    assert parse_backend(backend_key_data(7, 0x12345678)) == [
        BackendKeyData(7, b"\x12\x34\x56\x78")
    ]
    assert parse_backend(backend_key_data(7, -1)) == [BackendKeyData(7, b"\xff\xff\xff\xff")]
    assert parse_backend(backend_key_data(7, b"k" * 32)) == [BackendKeyData(7, b"k" * 32)]
    assert encryption_response(False) == b"N" == encode(EncryptionResponse(False))
    assert parse_backend(
        authentication_sasl()
        + authentication_sasl_continue(b"r=1")
        + authentication_sasl_final(b"v=2")
    ) == [
        AuthenticationSASL(("SCRAM-SHA-256",)),
        AuthenticationSASLContinue(b"r=1"),
        decode_backend(b"R", authentication_sasl_final(b"v=2")),
    ]
    with pytest.raises(ValueError, match="SQLSTATE"):
        error_response("8P01", "x")
