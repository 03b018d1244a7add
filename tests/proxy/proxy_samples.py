"""Sample messages of every class and byte streams built from them, shared by the codec tests."""

from __future__ import annotations

from dbsight.proxy.protocol import (
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationOther,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendKeyData,
    Bind,
    BindComplete,
    Close,
    CloseComplete,
    CommandComplete,
    CopyBothResponse,
    CopyData,
    CopyDone,
    CopyFail,
    CopyInResponse,
    CopyOutResponse,
    DataRow,
    Describe,
    EmptyQueryResponse,
    ErrorResponse,
    Execute,
    FieldDescription,
    Flush,
    FunctionCall,
    FunctionCallResponse,
    NegotiateProtocolVersion,
    NoData,
    NoticeResponse,
    NotificationResponse,
    ParameterDescription,
    ParameterStatus,
    Parse,
    ParseComplete,
    PasswordMessage,
    PortalSuspended,
    Query,
    ReadyForQuery,
    RowDescription,
    StartupMessage,
    Sync,
    Terminate,
    TransactionStatus,
    Unknown,
    encode,
)

STARTUP = StartupMessage({"user": "app", "database": "shop", "application_name": "api"})

FRONTEND_TYPED = [
    Query("SELECT 1"),
    Query("SELECT 'héllo', '\udcff'"),  # non-UTF-8 byte 0xff survives as a surrogate escape
    Query(""),
    Parse("", "SELECT $1::int", (23,)),
    Parse("s1", "SELECT * FROM t WHERE id = $1 AND name = $2", (0, 25)),
    Bind("", "s1", (1,), (b"\x00\x00\x00\x2a", None), (0, 1)),
    Bind("p", "", (), (), ()),
    Describe("S", "s1"),
    Describe("P", ""),
    Execute("", 0),
    Execute("p", 100),
    Sync(),
    Flush(),
    Close("S", "s1"),
    Close("P", "p"),
    CopyData(b"1\tone\n"),
    CopyDone(),
    CopyFail("aborted by client"),
    FunctionCall(b"\x00\x00\x04\xd2\x00\x00\x00\x00\x00\x00"),
    PasswordMessage(b"md5abcdef\x00"),
    Unknown(b"z", b"payload"),
    Terminate(),  # last: nothing may follow it
]

BACKEND = [
    AuthenticationOk(),
    AuthenticationCleartextPassword(),
    AuthenticationMD5Password(b"\x01\x02\x03\x04"),
    AuthenticationSASL(("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS")),
    AuthenticationSASLContinue(b"r=nonce,s=salt,i=4096"),
    AuthenticationSASLFinal(b"v=signature"),
    AuthenticationOther(7),
    AuthenticationOther(8, b"gss-token"),
    ParameterStatus("server_version", "16.2"),
    BackendKeyData(4242, b"\x00\x00\x30\x39"),
    BackendKeyData(4242, bytes(range(32))),  # protocol 3.2 keys are longer
    ReadyForQuery(TransactionStatus.IDLE),
    ReadyForQuery(TransactionStatus.IN_TRANSACTION),
    ReadyForQuery(TransactionStatus.FAILED),
    NegotiateProtocolVersion(0, ("_pq_.compression",)),
    RowDescription(
        (
            FieldDescription("id", 16384, 1, 23, 4, -1, 0),
            FieldDescription("name", 16384, 2, 25, -1, -1, 1),
        )
    ),
    RowDescription(()),
    DataRow((b"1", None, b"")),
    DataRow(()),
    CommandComplete("SELECT 5"),
    CommandComplete("INSERT 0 3"),
    EmptyQueryResponse(),
    ErrorResponse(
        {"S": "ERROR", "V": "ERROR", "C": "42P01", "M": 'relation "x" does not exist', "P": "15"}
    ),
    NoticeResponse({"S": "NOTICE", "V": "NOTICE", "C": "00000", "M": "hello"}),
    ParseComplete(),
    BindComplete(),
    CloseComplete(),
    NoData(),
    ParameterDescription((23, 25, 4294967295)),
    PortalSuspended(),
    CopyInResponse(0, (0, 0)),
    CopyOutResponse(1, (1,)),
    CopyBothResponse(0, ()),
    CopyData(b"\x00\x01binary"),
    CopyDone(),
    NotificationResponse(4242, "jobs", '{"id": 1}'),
    FunctionCallResponse(b"\x00\x00\x00\x01"),
    FunctionCallResponse(None),
    Unknown(b"?", b""),
]


def frontend_stream() -> bytes:
    """A whole client session: startup, then every typed frontend sample."""
    return encode(STARTUP) + b"".join(encode(message) for message in FRONTEND_TYPED)


def backend_stream() -> bytes:
    return b"".join(encode(message) for message in BACKEND)
