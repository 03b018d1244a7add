"""Framing: the startup phase, splitting at any byte, raw frames, skipping, strict validation."""

from __future__ import annotations

import struct

import pytest
from proxy_samples import BACKEND, FRONTEND_TYPED, STARTUP, backend_stream, frontend_stream

from dbsight.proxy.protocol import (
    MAX_STARTUP_PACKET_SIZE,
    BackendParser,
    CancelRequest,
    CommandComplete,
    DataRow,
    EncryptionResponse,
    ErrorResponse,
    FrontendParser,
    GSSENCRequest,
    MessageTooLarge,
    ProtocolError,
    ProtocolViolation,
    Query,
    ReadyForQuery,
    SSLRequest,
    StartupMessage,
    Sync,
    Terminate,
    TransactionStatus,
    encode,
    error_response,
)


def i32(value: int) -> bytes:
    return struct.pack(">i", value)


def typed(type_: bytes, body: bytes) -> bytes:
    return type_ + i32(len(body) + 4) + body


def started_frontend(**options: object) -> FrontendParser:
    reader = FrontendParser(**options)  # type: ignore[arg-type]
    reader.feed(encode(StartupMessage({"user": "u"})))
    assert isinstance(reader.next_message(), StartupMessage)
    return reader


def violation(reader: FrontendParser | BackendParser, data: bytes) -> ProtocolViolation:
    reader.feed(data)
    with pytest.raises(ProtocolViolation) as info:
        list(reader)
    return info.value


# ---------------------------------------------------------------------------------- startup phase


def test_startup_phase_then_typed_messages() -> None:
    reader = FrontendParser()
    assert reader.phase == "startup"
    reader.feed(encode(SSLRequest()))
    assert reader.next_message() == SSLRequest()
    assert reader.phase == "startup" and reader.buffered == 0  # safe to answer 'S' now
    reader.feed(encode(GSSENCRequest()) + encode(STARTUP) + encode(Query("SELECT 1")))
    assert list(reader) == [GSSENCRequest(), STARTUP, Query("SELECT 1")]
    assert reader.phase == "messages"
    reader.feed(encode(Terminate()))
    assert list(reader) == [Terminate()]
    assert reader.phase == "done"
    assert violation(reader, b"Q").sqlstate == "08P01"


def test_cancel_request_ends_the_connection() -> None:
    reader = FrontendParser()
    reader.feed(encode(CancelRequest(99, b"\x00\x00\x00\x07")))
    assert reader.next_message() == CancelRequest(99, b"\x00\x00\x00\x07")
    assert reader.phase == "done"
    assert reader.next_message() is None
    error = violation(reader, b"\x00")
    assert "after CancelRequest" in error.message


def test_cancel_request_with_a_long_key_of_protocol_3_2() -> None:
    reader = FrontendParser()
    reader.feed(encode(CancelRequest(99, bytes(range(32)))))
    assert reader.next_message() == CancelRequest(99, bytes(range(32)))


@pytest.mark.parametrize(
    "packet, sqlstate, fragment",
    [
        (i32(8) + i32(2 << 16), "0A000", "unsupported frontend protocol 2.0"),
        (i32(8) + i32((1234 << 16) | 5681), "0A000", "unsupported frontend protocol 1234.5681"),
        (i32(7) + i32(3 << 16), "08P01", "invalid length 7 of startup packet"),
        (i32(-1), "08P01", "invalid length -1 of startup packet"),
        (i32(MAX_STARTUP_PACKET_SIZE + 1), "08P01", "invalid length"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc", "08P01", "TLS handshake"),
        (i32(12) + i32(80877103) + i32(0), "08P01", "invalid length 12 of SSLRequest"),
        (i32(12) + i32(80877104) + i32(0), "08P01", "invalid length 12 of GSSENCRequest"),
        (i32(14) + i32(80877102) + i32(1) + b"\0\0", "08P01", "invalid length 14 of CancelRequest"),
        (i32(269) + i32(80877102), "08P01", "invalid length 269 of CancelRequest"),
        (encode(SSLRequest()) * 2, "08P01", "SSLRequest sent twice"),
        (encode(GSSENCRequest()) * 2, "08P01", "GSSENCRequest sent twice"),
        (i32(13) + i32(3 << 16) + b"user\0", "08P01", "not NUL-terminated"),
        (i32(17) + i32(3 << 16) + b"user\0bob\0", "08P01", "not NUL-terminated"),  # no terminator
        (i32(19) + i32(3 << 16) + b"user\0bob\0\0x", "08P01", "unexpected bytes"),
    ],
)
def test_malformed_startup_packets(packet: bytes, sqlstate: str, fragment: str) -> None:
    error = violation(FrontendParser(), packet)
    assert error.sqlstate == sqlstate
    assert fragment in error.message


def test_startup_length_is_checked_before_the_body_arrives() -> None:
    reader = FrontendParser()
    reader.feed(i32(1_000_000))
    with pytest.raises(ProtocolViolation):
        reader.next_frame()


# ---------------------------------------------------------------------------------- splitting


def test_frontend_stream_fed_byte_by_byte_gives_the_same_messages() -> None:
    data = frontend_stream()
    reader = FrontendParser()
    messages = []
    for i in range(len(data)):
        reader.feed(data[i : i + 1])
        messages.extend(reader)
    assert messages == [STARTUP, *FRONTEND_TYPED]
    assert reader.buffered == 0


def test_backend_stream_fed_byte_by_byte_gives_the_same_messages() -> None:
    data = backend_stream()
    reader = BackendParser()
    messages = []
    for byte in data:
        reader.feed(bytes([byte]))
        messages.extend(reader)
    assert messages == BACKEND


def test_every_split_point_gives_the_same_messages() -> None:
    data = backend_stream()
    for cut in range(len(data) + 1):
        reader = BackendParser()
        reader.feed(data[:cut])
        first = list(reader)
        reader.feed(memoryview(data)[cut:])
        assert first + list(reader) == BACKEND, cut


def test_frames_carry_the_exact_bytes_received() -> None:
    data = frontend_stream()
    reader = FrontendParser()
    reader.feed(bytearray(data))
    frames = list(reader.frames())
    assert b"".join(frame.raw for frame in frames) == data
    assert frames[0].type == b"" and frames[0].body == encode(STARTUP)[4:]
    assert frames[1].type == b"Q" and frames[1].length == len(frames[1].raw) - 1
    assert [reader.decode(frame) for frame in frames] == [STARTUP, *FRONTEND_TYPED]


def test_a_large_message_arriving_in_many_chunks() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    data = encode(DataRow((value,))) + encode(CommandComplete("SELECT 1"))
    reader = BackendParser()
    messages = []
    for start in range(0, len(data), 1000):
        reader.feed(data[start : start + 1000])
        messages.extend(reader)
        assert reader.buffered < len(value) + 1000
    assert messages == [DataRow((value,)), CommandComplete("SELECT 1")]


def test_feeding_without_draining_then_draining() -> None:
    data = backend_stream()
    reader = BackendParser()
    for start in range(0, len(data), 7):
        reader.feed(data[start : start + 7])
    assert list(reader) == BACKEND


# ---------------------------------------------------------------------------------- skipping


def test_skipped_types_are_reported_at_their_header_and_never_buffered() -> None:
    value = b"x" * 100_000
    data = (
        encode(DataRow((value,)))
        + encode(DataRow((b"1",)))
        + encode(CommandComplete("SELECT 2"))
        + encode(ReadyForQuery(TransactionStatus.IDLE))
    )
    reader = BackendParser(skip=[b"D"])
    frames = []
    for start in range(0, len(data), 4096):
        reader.feed(data[start : start + 4096])
        frames.extend(reader.frames())
        assert reader.buffered <= 4096
    assert [(f.type, f.raw) for f in frames[:2]] == [(b"D", None), (b"D", None)]
    assert frames[0].length == len(value) + 10
    assert [reader.decode(f) for f in frames[2:]] == [
        CommandComplete("SELECT 2"),
        ReadyForQuery(TransactionStatus.IDLE),
    ]
    with pytest.raises(ValueError, match="skipped"):
        reader.decode(frames[0])


def test_next_message_passes_over_skipped_types_byte_by_byte() -> None:
    data = backend_stream()
    reader = BackendParser(skip=[b"D", b"d"])
    messages = []
    for byte in data:
        reader.feed(bytes([byte]))
        messages.extend(reader)
    assert messages == [msg for msg in BACKEND if type(msg).__name__ not in ("DataRow", "CopyData")]


def test_skipped_messages_still_obey_the_size_limit() -> None:
    reader = BackendParser(skip=[b"D"], max_message_size=1000)
    reader.feed(b"D" + i32(1001))
    with pytest.raises(MessageTooLarge):
        reader.next_frame()


# ---------------------------------------------------------------------------------- limits


def test_too_large_fails_as_soon_as_the_header_is_seen() -> None:
    reader = started_frontend(max_message_size=1024)
    reader.feed(b"Q" + i32(0x7FFFFFFF))
    with pytest.raises(MessageTooLarge) as info:
        reader.next_message()
    error = info.value
    assert isinstance(error, ProtocolViolation) and isinstance(error, ProtocolError)
    assert error.sqlstate == "08P01"
    assert (error.length, error.limit) == (0x7FFFFFFF, 1024)
    assert "Query" in error.message and "1024" in error.message


def test_limit_is_inclusive_and_configurable() -> None:
    query = Query("x" * 10)
    size = len(encode(query)) - 1
    reader = started_frontend(max_message_size=size)
    reader.feed(encode(query))
    assert reader.next_message() == query
    reader = started_frontend(max_message_size=size - 1)
    reader.feed(encode(query))
    with pytest.raises(MessageTooLarge):
        reader.next_message()
    with pytest.raises(ValueError):
        FrontendParser(max_message_size=3)


def test_messages_that_never_carry_data_have_a_small_limit() -> None:
    reader = started_frontend()
    reader.feed(b"S" + i32(20_000))
    with pytest.raises(MessageTooLarge) as info:
        reader.next_message()
    assert info.value.limit == 10_000


def test_errors_are_sticky() -> None:
    reader = started_frontend()
    reader.feed(b"Q" + i32(3))
    with pytest.raises(ProtocolViolation) as first:
        reader.next_message()
    assert "invalid length 3 of Query" in first.value.message
    assert reader.error is first.value
    with pytest.raises(ProtocolViolation) as again:
        reader.next_frame()
    assert again.value is first.value
    with pytest.raises(ProtocolViolation):
        reader.feed(encode(Sync()))


# ---------------------------------------------------------------------------------- bodies


FRONTEND_MALFORMED = [
    (typed(b"Q", b"SELECT 1"), "Query", "query is not NUL-terminated"),
    (typed(b"Q", b"SELECT 1\0x"), "Query", "1 unexpected bytes"),
    (
        typed(b"P", b"s\0SELECT\0\x00\x02\x00\x00\x00\x17"),
        "Parse",
        "parameter type count 2 does not fit",
    ),
    (typed(b"P", b"s\0SELECT\0\x00"), "Parse", "parameter type count runs past the end"),
    (
        typed(b"B", b"\0\0\x00\x00\x00\x01\x00\x00\x00\x09abc"),
        "Bind",
        "parameter value runs past the end",
    ),
    (typed(b"B", b"\0\0\x00\x00\x00\x01\xff\xff\xff\xfe\x00\x00"), "Bind", "negative length -2"),
    (typed(b"B", b"\0\0\x00\x01\x00"), "Bind", "parameter format count 1 does not fit"),
    (typed(b"D", b"Xname\0"), "Describe", "kind must be 'S' or 'P'"),
    (typed(b"C", b""), "Close", "kind runs past the end"),
    (typed(b"E", b"\0\x00\x00"), "Execute", "max rows runs past the end"),
    (typed(b"S", b"\0"), "Sync", "1 unexpected bytes"),
    (typed(b"X", b"bye"), "Terminate", "3 unexpected bytes"),
    (typed(b"f", b"oops"), "CopyFail", "not NUL-terminated"),
]


BACKEND_MALFORMED = [
    (typed(b"R", b"\x00\x00"), "Authentication", "authentication code runs past the end"),
    (typed(b"R", b"\x00\x00\x00\x05\x01\x02"), "Authentication", "salt runs past the end"),
    (
        typed(b"R", b"\x00\x00\x00\x0aSCRAM-SHA-256\0"),
        "Authentication",
        "mechanism name is not NUL",
    ),
    (typed(b"R", b"\x00\x00\x00\x00x"), "Authentication", "1 unexpected bytes"),
    (typed(b"K", b"\x00\x00\x00\x01\x02\x03"), "BackendKeyData", "secret key of 2 bytes"),
    (typed(b"K", b"\x00\x00\x00\x01" + b"k" * 257), "BackendKeyData", "secret key of 257 bytes"),
    (typed(b"Z", b"X"), "ReadyForQuery", "transaction status must be I, T or E"),
    (typed(b"Z", b""), "ReadyForQuery", "transaction status runs past the end"),
    (typed(b"Z", b"II"), "ReadyForQuery", "1 unexpected bytes"),
    (typed(b"T", b"\x00\x01id\0\x00\x00"), "RowDescription", "field count 1 does not fit"),
    (typed(b"T", b"\x00\x01" + b"x" * 19), "RowDescription", "field name is not NUL-terminated"),
    (
        typed(b"T", b"\x00\x01" + b"\0" * 19 + b"id\0" + b"\0" * 16),
        "RowDescription",
        "unexpected bytes",
    ),
    (typed(b"D", b"\x00\x02\x00\x00\x00\x01x"), "DataRow", "column count 2 does not fit"),
    (typed(b"D", b"\x00\x01\x00\x00\x00\x05x"), "DataRow", "column value runs past the end"),
    (typed(b"D", b"\x00\x01\x80\x00\x00\x00"), "DataRow", "negative length"),
    (typed(b"C", b"SELECT 1"), "CommandComplete", "command tag is not NUL-terminated"),
    (typed(b"E", b"SERROR\0"), "ErrorResponse", "terminating NUL"),
    (typed(b"E", b"SERROR"), "ErrorResponse", "field 'S' is not NUL-terminated"),
    (typed(b"N", b"\0\0"), "NoticeResponse", "1 unexpected bytes"),
    (typed(b"S", b"name\0"), "ParameterStatus", "parameter value is not NUL-terminated"),
    (
        typed(b"t", b"\x00\x03\x00\x00\x00\x17"),
        "ParameterDescription",
        "parameter count 3 does not fit",
    ),
    (typed(b"G", b"\x00\x00\x02\x00\x00"), "CopyInResponse", "column count 2 does not fit"),
    (
        typed(b"A", b"\x00\x00\x00\x01chan\0"),
        "NotificationResponse",
        "payload is not NUL-terminated",
    ),
    (typed(b"v", b"\x00\x00\x00\x00\x7f\xff\xff\xff"), "NegotiateProtocolVersion", "option count"),
    (typed(b"V", b"\x00\x00\x00\x04ab"), "FunctionCallResponse", "result runs past the end"),
    (typed(b"1", b"x"), "ParseComplete", "1 unexpected bytes"),
]


MALFORMED = [("client", *case) for case in FRONTEND_MALFORMED] + [
    ("server", *case) for case in BACKEND_MALFORMED
]


@pytest.mark.parametrize(
    "side, raw, name, fragment", MALFORMED, ids=[f"{c[0]}-{c[2]}" for c in MALFORMED]
)
def test_malformed_bodies(side: str, raw: bytes, name: str, fragment: str) -> None:
    error = violation(started_frontend() if side == "client" else BackendParser(), raw)
    assert error.sqlstate == "08P01"
    assert f"malformed {name} message" in error.message
    assert fragment in error.message


def test_bad_length_in_the_header() -> None:
    for length in (0, 3, -5):
        error = violation(BackendParser(), b"D" + i32(length))
        assert f"invalid length {length} of DataRow" in error.message


# ---------------------------------------------------------------------------------- encryption


def test_encryption_refused_then_typed_messages() -> None:
    reader = BackendParser()
    reader.expect_encryption_response()
    reader.feed(b"N" + encode(ReadyForQuery(TransactionStatus.IDLE)))
    frame = reader.next_frame()
    assert frame is not None and frame.type == b"" and frame.raw == b"N"
    assert reader.decode(frame) == EncryptionResponse(False)
    assert list(reader) == [ReadyForQuery(TransactionStatus.IDLE)]


def test_encryption_accepted() -> None:
    reader = BackendParser()
    reader.expect_encryption_response()
    reader.feed(b"S")
    assert reader.next_message() == EncryptionResponse(True)


def test_unencrypted_bytes_after_encryption_accepted_are_refused() -> None:
    reader = BackendParser()
    reader.expect_encryption_response()
    error = violation(reader, b"S" + encode(ReadyForQuery(TransactionStatus.IDLE)))
    assert "unencrypted data" in error.message


def test_old_server_answers_an_encryption_request_with_an_error() -> None:
    reader = BackendParser()
    reader.expect_encryption_response()
    reader.feed(error_response("08P01", "unsupported frontend protocol 1234.5679", "FATAL"))
    (message,) = list(reader)
    assert isinstance(message, ErrorResponse) and message.sqlstate == "08P01"


def test_invalid_answer_to_an_encryption_request() -> None:
    reader = BackendParser()
    reader.expect_encryption_response()
    assert "invalid answer" in violation(reader, b"X").message
