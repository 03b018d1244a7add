"""Hypothesis: arbitrary and mutated bytes only ever raise ProtocolError, within bounded memory;
generated messages survive encode -> parse unchanged."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxy_samples import BACKEND, FRONTEND_TYPED, backend_stream, frontend_stream

import dbsight.proxy.protocol as p
from dbsight.proxy.protocol import (
    MAX_STARTUP_PACKET_SIZE,
    BackendParser,
    FrontendParser,
    ProtocolError,
    SessionState,
    encode,
)
from dbsight.proxy.protocol._decoder import BACKEND_NAMES, FRONTEND_NAMES

SMALL_LIMIT = 512
FUZZ = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])


def exercise(message: object) -> None:
    """Touch every derived reading of a decoded message: none may raise anything else."""
    if isinstance(message, p.PasswordMessage):
        for reading in (message.password, message.sasl_initial_response, message.sasl_response):
            try:
                reading()
            except ProtocolError:
                pass
    elif isinstance(message, p.CommandComplete):
        _ = (message.rows, message.command)
    elif isinstance(message, p.ErrorResponse | p.NoticeResponse):
        _ = (message.severity, message.sqlstate, message.message, message.position)
    elif isinstance(message, p.StartupMessage):
        _ = (message.major, message.minor)


def run(reader: FrontendParser | BackendParser, data: bytes, cuts: list[int], bound: int) -> None:
    """Feed ``data`` in pieces, draining after each; check the memory bound; errors end it."""
    state = SessionState()
    pieces = [
        data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True)
    ]
    try:
        for piece in pieces:
            reader.feed(piece)
            for message in reader:
                exercise(message)
                try:
                    if isinstance(reader, FrontendParser):
                        state.client_message(message)  # type: ignore[arg-type]
                    else:
                        state.server_message(message)  # type: ignore[arg-type]
                except ProtocolError:
                    state = SessionState()
            assert reader.buffered <= bound, (reader.buffered, bound)
    except ProtocolError as exc:
        assert exc.sqlstate in ("08P01", "0A000")
        assert reader.error is exc


cut_points = st.lists(st.integers(0, 4096), max_size=8)


@FUZZ
@given(data=st.binary(max_size=2048), cuts=cut_points)
def test_random_bytes_before_startup(data: bytes, cuts: list[int]) -> None:
    reader = FrontendParser(max_message_size=SMALL_LIMIT)
    run(
        reader,
        data,
        [c % (len(data) + 1) for c in cuts],
        max(SMALL_LIMIT + 1, MAX_STARTUP_PACKET_SIZE),
    )


@FUZZ
@given(data=st.binary(max_size=2048), cuts=cut_points)
def test_random_bytes_after_startup(data: bytes, cuts: list[int]) -> None:
    reader = FrontendParser(max_message_size=SMALL_LIMIT)
    reader.feed(encode(p.StartupMessage({"user": "u"})))
    reader.next_message()
    run(reader, data, [c % (len(data) + 1) for c in cuts], SMALL_LIMIT + 1)


@FUZZ
@given(
    data=st.binary(max_size=2048),
    cuts=cut_points,
    skip=st.sets(st.sampled_from([b"D", b"d", b"T", b"E"])),
    encryption=st.booleans(),
)
def test_random_bytes_from_a_server(
    data: bytes, cuts: list[int], skip: set[bytes], encryption: bool
) -> None:
    reader = BackendParser(max_message_size=SMALL_LIMIT, skip=skip)
    if encryption:
        reader.expect_encryption_response()
    run(reader, data, [c % (len(data) + 1) for c in cuts], SMALL_LIMIT + 1)


def mutate(draw: st.DrawFn, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "length"]))
        at = draw(st.integers(0, max(len(buf) - 1, 0)))
        if action == "flip" and buf:
            buf[at] ^= draw(st.integers(1, 255))
        elif action == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete" and buf:
            del buf[at : at + draw(st.integers(1, 8))]
        elif action == "truncate":
            del buf[at:]
        elif action == "length" and len(buf) >= at + 4:
            buf[at : at + 4] = draw(
                st.sampled_from(
                    [b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff", b"\0\0\0\0", b"\0\0\0\x05"]
                )
            )
    return bytes(buf)


@st.composite
def mutated(draw: st.DrawFn, stream: bytes) -> bytes:
    return mutate(draw, stream)


@FUZZ
@given(data=mutated(frontend_stream()), cuts=cut_points)
def test_mutated_client_sessions(data: bytes, cuts: list[int]) -> None:
    reader = FrontendParser(max_message_size=SMALL_LIMIT)
    run(
        reader,
        data,
        [c % (len(data) + 1) for c in cuts],
        max(SMALL_LIMIT + 1, MAX_STARTUP_PACKET_SIZE),
    )


@FUZZ
@given(data=mutated(backend_stream()), cuts=cut_points, skip=st.sets(st.sampled_from([b"D", b"d"])))
def test_mutated_server_streams(data: bytes, cuts: list[int], skip: set[bytes]) -> None:
    reader = BackendParser(max_message_size=SMALL_LIMIT, skip=skip)
    run(reader, data, [c % (len(data) + 1) for c in cuts], SMALL_LIMIT + 1)


@FUZZ
@given(messages=st.lists(st.sampled_from(BACKEND + FRONTEND_TYPED), max_size=30))
def test_session_state_on_arbitrary_message_orders_raises_only_protocol_errors(
    messages: list[Any],
) -> None:
    state = SessionState()
    frontend = {type(m) for m in FRONTEND_TYPED} - {p.CopyData, p.CopyDone, p.Unknown}
    for message in messages:
        try:
            if type(message) in frontend:
                state.client_message(message)
            else:
                state.server_message(message)
        except ProtocolError:
            state = SessionState()


# ---------------------------------------------------------------------------------- round trips

text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=40)
int16 = st.integers(-(2**15), 2**15 - 1)
int32 = st.integers(-(2**31), 2**31 - 1)
oid = st.integers(0, 2**32 - 1)
value = st.none() | st.binary(max_size=40)
key = st.binary(min_size=4, max_size=256)
small = {"max_size": 6}


def unknown(known: dict[bytes, str]) -> st.SearchStrategy[p.Unknown]:
    free = [bytes([i]) for i in range(256) if bytes([i]) not in known]
    return st.builds(p.Unknown, st.sampled_from(free), st.binary(max_size=40))


frontend_messages = st.one_of(
    st.builds(p.Query, text),
    st.builds(p.Parse, text, text, st.tuples() | st.lists(oid, **small).map(tuple)),
    st.builds(
        p.Bind,
        text,
        text,
        st.lists(int16, **small).map(tuple),
        st.lists(value, **small).map(tuple),
        st.lists(int16, **small).map(tuple),
    ),
    st.builds(p.Describe, st.sampled_from("SP"), text),
    st.builds(p.Execute, text, int32),
    st.builds(p.Close, st.sampled_from("SP"), text),
    st.just(p.Sync()),
    st.just(p.Flush()),
    st.builds(p.CopyData, st.binary(max_size=40)),
    st.just(p.CopyDone()),
    st.builds(p.CopyFail, text),
    st.builds(p.FunctionCall, st.binary(max_size=40)),
    st.builds(p.PasswordMessage, st.binary(max_size=40)),
    unknown(FRONTEND_NAMES),
)

field_codes = st.characters(min_codepoint=1, max_codepoint=255)
auth_codes = st.integers(-(2**31), 2**31 - 1).filter(lambda c: c not in (0, 3, 5, 10, 11, 12))
copy_response = st.tuples(st.integers(0, 255), st.lists(int16, **small).map(tuple))

backend_messages = st.one_of(
    st.just(p.AuthenticationOk()),
    st.just(p.AuthenticationCleartextPassword()),
    st.builds(p.AuthenticationMD5Password, st.binary(min_size=4, max_size=4)),
    st.builds(p.AuthenticationSASL, st.lists(text.filter(bool), **small).map(tuple)),
    st.builds(p.AuthenticationSASLContinue, st.binary(max_size=40)),
    st.builds(p.AuthenticationSASLFinal, st.binary(max_size=40)),
    st.builds(p.AuthenticationOther, auth_codes, st.binary(max_size=40)),
    st.builds(p.ParameterStatus, text, text),
    st.builds(p.BackendKeyData, int32, key),
    st.builds(p.ReadyForQuery, st.sampled_from(list(p.TransactionStatus))),
    st.builds(p.NegotiateProtocolVersion, int32, st.lists(text, **small).map(tuple)),
    st.builds(
        p.RowDescription,
        st.lists(
            st.builds(p.FieldDescription, text, oid, int16, oid, int16, int32, int16), **small
        ).map(tuple),
    ),
    st.builds(p.DataRow, st.lists(value, **small).map(tuple)),
    st.builds(p.CommandComplete, text),
    st.just(p.EmptyQueryResponse()),
    st.builds(p.ErrorResponse, st.dictionaries(field_codes, text, **small)),
    st.builds(p.NoticeResponse, st.dictionaries(field_codes, text, **small)),
    st.sampled_from(
        [p.ParseComplete(), p.BindComplete(), p.CloseComplete(), p.NoData(), p.PortalSuspended()]
    ),
    st.builds(p.ParameterDescription, st.lists(oid, **small).map(tuple)),
    copy_response.map(lambda a: p.CopyInResponse(*a)),
    copy_response.map(lambda a: p.CopyOutResponse(*a)),
    copy_response.map(lambda a: p.CopyBothResponse(*a)),
    st.builds(p.CopyData, st.binary(max_size=40)),
    st.just(p.CopyDone()),
    st.builds(p.NotificationResponse, int32, text, text),
    st.builds(p.FunctionCallResponse, value),
    unknown(BACKEND_NAMES),
)

startup_packets = st.one_of(
    st.builds(
        p.StartupMessage,
        st.dictionaries(text.filter(bool), text, **small),
        st.integers(0, 0xFFFF).map(lambda minor: (3 << 16) | minor),
    ),
    st.just(p.SSLRequest()),
    st.just(p.GSSENCRequest()),
    st.builds(p.CancelRequest, int32, key),
)


@FUZZ
@given(startup=startup_packets, messages=st.lists(frontend_messages, max_size=10), cuts=cut_points)
def test_frontend_round_trip(startup: Any, messages: list[Any], cuts: list[int]) -> None:
    if not isinstance(startup, p.StartupMessage):
        messages = []  # typed messages follow only a StartupMessage
    data = encode(startup) + b"".join(map(encode, messages))
    reader = FrontendParser()
    decoded = []
    for a, b in zip(
        [0, *sorted(c % (len(data) + 1) for c in cuts)],
        [*sorted(c % (len(data) + 1) for c in cuts), len(data)],
        strict=True,
    ):
        reader.feed(data[a:b])
        decoded.extend(reader)
    assert decoded == [startup, *messages]
    assert reader.buffered == 0


@FUZZ
@given(messages=st.lists(backend_messages, max_size=10), cuts=cut_points)
def test_backend_round_trip(messages: list[Any], cuts: list[int]) -> None:
    data = b"".join(map(encode, messages))
    reader = BackendParser()
    decoded = []
    for a, b in zip(
        [0, *sorted(c % (len(data) + 1) for c in cuts)],
        [*sorted(c % (len(data) + 1) for c in cuts), len(data)],
        strict=True,
    ):
        reader.feed(data[a:b])
        decoded.extend(reader)
    assert decoded == messages


@FUZZ
@given(message=st.builds(p.SASLInitialResponse, text, st.none() | st.binary(max_size=40)))
def test_sasl_initial_response_round_trip(message: p.SASLInitialResponse) -> None:
    reader = FrontendParser()
    reader.feed(encode(p.StartupMessage({"user": "u"})) + encode(message))
    _, password = list(reader)
    assert password.sasl_initial_response() == message
