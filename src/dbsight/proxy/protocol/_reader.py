"""Incremental framing of a byte stream into messages: ``feed()`` bytes, take frames out.

A ``Frame`` is a message's type, announced length and raw bytes (header included), so a proxy
can forward what it does not need to understand without re-encoding it, and decode only the
frames it cares about (``parser.decode(frame)``, or ``next_message()`` for both at once).
Types listed in ``skip`` are not even buffered: their frame is reported as soon as the header
is seen (``raw`` is ``None``) and their body bytes are dropped as they arrive — for a proxy
that forwards the chunks it received as is and only tracks state, DataRow and CopyData then
cost one header parse each, whatever their size.

Lengths are checked as soon as the header is complete: a huge announced length fails before
any of its body is buffered, so a reader never holds more than one incomplete message
(at most ``max_message_size + 1`` bytes) after its complete frames are taken out.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import ClassVar, Generic, NamedTuple, TypeVar

from . import _messages as m
from ._decoder import BACKEND_NAMES, FRONTEND_NAMES, MAX_SECRET_KEY, decode_backend, decode_frontend
from ._errors import MessageTooLarge, ProtocolError, ProtocolViolation

#: Default limit on a message's announced length (which counts its own 4 bytes, not the type
#: byte). PostgreSQL's own limit is 1 GiB - 1; raise this for result sets with larger values.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
#: PostgreSQL's MAX_STARTUP_PACKET_LENGTH: no startup packet is longer.
MAX_STARTUP_PACKET_SIZE = 10_000
#: PostgreSQL's PQ_SMALL_MESSAGE_LIMIT, for frontend messages that never carry data.
SMALL_MESSAGE_LIMIT = 10_000
_SMALL_FRONTEND_TYPES = (b"E", b"D", b"C", b"H", b"S", b"X", b"c", b"f")

_INT32 = struct.Struct(">i")
_TYPES = tuple(bytes([i]) for i in range(256))  # no allocation per type byte

M = TypeVar("M")


class Frame(NamedTuple):
    """One framed message, not decoded.

    ``type`` is the one-byte type (``b""`` for the untyped startup packets and the
    SSL/GSS answer byte), ``length`` the length field as sent (body + 4), ``raw`` the whole
    message as received, header included — or ``None`` when its type is skipped.
    """

    type: bytes
    length: int
    raw: bytes | None

    @property
    def body(self) -> bytes | None:
        if self.raw is None:
            return None
        return self.raw[5:] if self.type else self.raw[4:]


class _Reader(Generic[M]):
    """The side-independent part: buffer, typed-message framing, limits, skipping, errors."""

    _names: ClassVar[dict[bytes, str]] = {}

    def __init__(
        self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, skip: Iterable[bytes] = ()
    ) -> None:
        if max_message_size < 4:
            raise ValueError(f"max_message_size must be at least 4, got {max_message_size}")
        self._max = max_message_size
        self._limits: dict[bytes, int] = {}
        self._skip = frozenset(skip)
        bad = [t for t in self._skip if len(t) != 1]
        if bad:
            raise ValueError(f"skip takes one-byte message types, got {bad!r}")
        self._buf = b""
        self._pos = 0
        self._chunks: list[bytes] = []
        self._chunked = 0
        self._want = 0  # bytes needed from _pos before the next frame can be cut; 0: unknown
        self._skip_remaining = 0
        self._error: ProtocolError | None = None

    @property
    def max_message_size(self) -> int:
        return self._max

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet returned as frames."""
        return len(self._buf) - self._pos + self._chunked

    def take_buffered(self) -> bytes:
        """The bytes fed but not yet returned as frames, removed from this reader (whoever
        reads the stream from here on gets them)."""
        if self._chunks:
            self._join()
        data = self._buf[self._pos :]
        self._buf, self._pos = b"", 0
        self._want = 0
        return data

    @property
    def error(self) -> ProtocolError | None:
        """The error that stopped this reader, if any; every later call raises it again."""
        return self._error

    # ------------------------------------------------------------------ input

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes. Never raises for their content (next_frame does)."""
        if self._error is not None:
            raise self._error
        if self._skip_remaining and self._pos == len(self._buf) and not self._chunks:
            # Still inside a skipped body: drop those bytes without copying them.
            view = memoryview(data)
            dropped = min(self._skip_remaining, len(view))
            self._skip_remaining -= dropped
            data = view[dropped:]
        if not len(data):
            return
        chunk = bytes(data)
        if self._pos == len(self._buf) and not self._chunks:
            self._buf, self._pos = chunk, 0
            return
        # Keep chunks of a message still incomplete in a list: joining on every feed would
        # copy a large message quadratically.
        self._chunks.append(chunk)
        self._chunked += len(chunk)
        if len(self._buf) - self._pos + self._chunked >= self._want:
            self._join()

    def _join(self) -> None:
        self._buf = b"".join([self._buf[self._pos :], *self._chunks])
        self._pos = 0
        self._chunks.clear()
        self._chunked = 0

    # ------------------------------------------------------------------ output

    def next_frame(self) -> Frame | None:
        """The next complete frame, or ``None`` until more bytes are fed."""
        if self._error is not None:
            raise self._error
        try:
            while True:
                frame = self._frame()
                if frame is not None:
                    self._want = 0
                    return frame
                if not self._chunks or len(self._buf) - self._pos + self._chunked < self._want:
                    return None
                self._join()
        except ProtocolError as exc:
            self._error = exc
            raise

    def decode(self, frame: Frame) -> M:
        """Decode a frame returned by ``next_frame`` (not a skipped one)."""
        if frame.raw is None:
            raise ValueError(f"frame of skipped type {frame.type!r} has no bytes to decode")
        return self._decode(frame.type, frame.raw)

    def next_message(self) -> M | None:
        """The next decoded message (skipped types are passed over), or ``None``."""
        while True:
            frame = self.next_frame()
            if frame is None:
                return None
            if frame.raw is not None:
                try:
                    return self._decode(frame.type, frame.raw)
                except ProtocolError as exc:
                    self._error = exc
                    raise

    def __iter__(self) -> Iterator[M]:
        """Every message that can be decoded from the bytes fed so far."""
        while (message := self.next_message()) is not None:
            yield message

    def frames(self) -> Iterator[Frame]:
        """Every frame that can be cut from the bytes fed so far."""
        while (frame := self.next_frame()) is not None:
            yield frame

    # ------------------------------------------------------------------ framing

    def _decode(self, type_: bytes, raw: bytes) -> M:
        raise NotImplementedError

    def _frame(self) -> Frame | None:
        return self._typed_frame()

    def _typed_frame(self) -> Frame | None:
        buf, pos = self._buf, self._pos
        if self._skip_remaining:
            dropped = min(self._skip_remaining, len(buf) - pos)
            self._skip_remaining -= dropped
            pos = self._pos = pos + dropped
            if self._skip_remaining:
                self._want = 1
                return None
        avail = len(buf) - pos
        if avail < 5:
            self._want = 5
            return None
        type_ = _TYPES[buf[pos]]
        length = _INT32.unpack_from(buf, pos + 1)[0]
        if length < 4:
            raise ProtocolViolation(
                f"invalid length {length} of {self._name(type_)} message (minimum is 4)"
            )
        limit = self._limits.get(type_, self._max)
        if length > limit:
            raise MessageTooLarge(
                f"{self._name(type_)} message of {length} bytes exceeds the limit of {limit}",
                length,
                limit,
            )
        total = length + 1
        if type_ in self._skip:
            body_here = min(avail, total) - 5
            self._pos = pos + 5 + body_here
            self._skip_remaining = length - 4 - body_here
            return Frame(type_, length, None)
        if avail < total:
            self._want = total
            return None
        self._pos = pos + total
        return Frame(type_, length, buf if total == len(buf) else buf[pos : pos + total])

    def _name(self, type_: bytes) -> str:
        name = self._names.get(type_)
        return f"{name} ({type_!r})" if name else f"type {type_!r}"


class FrontendParser(_Reader[m.FrontendMessage]):
    """Reads what a client sends: the untyped startup packets, then typed messages.

    Phases: ``"startup"`` (SSLRequest and GSSENCRequest keep it there, at most once each;
    StartupMessage moves on), ``"messages"``, and ``"done"`` after a CancelRequest or
    Terminate, after which any byte is a protocol violation. Answering ``S`` to SSLRequest is
    only safe when ``buffered == 0``: bytes a client sent before the TLS handshake must not be
    read as if they had come through it.
    """

    _names = FRONTEND_NAMES

    def __init__(
        self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, skip: Iterable[bytes] = ()
    ) -> None:
        super().__init__(max_message_size=max_message_size, skip=skip)
        small = min(SMALL_MESSAGE_LIMIT, max_message_size)
        self._limits = dict.fromkeys(_SMALL_FRONTEND_TYPES, small)
        self._phase = "startup"
        self._ssl_requested = False
        self._gss_requested = False

    @property
    def phase(self) -> str:
        return self._phase

    def _decode(self, type_: bytes, raw: bytes) -> m.FrontendMessage:
        return decode_frontend(type_, raw)

    def _frame(self) -> Frame | None:
        if self._phase == "messages":
            frame = self._typed_frame()
            if frame is not None and frame.type == b"X":
                self._phase = "done"
            return frame
        if self._phase == "startup":
            return self._startup_frame()
        if self.buffered:
            raise ProtocolViolation("unexpected data after CancelRequest or Terminate")
        return None

    def _startup_frame(self) -> Frame | None:
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if avail < 4:
            self._want = 4
            return None
        length = _INT32.unpack_from(buf, pos)[0]
        if not 8 <= length <= MAX_STARTUP_PACKET_SIZE:
            hint = ""
            if buf[pos] == 0x16:
                hint = " (a TLS handshake without SSLRequest? direct TLS is not supported)"
            raise ProtocolViolation(
                f"invalid length {length} of startup packet"
                f" (allowed: 8 to {MAX_STARTUP_PACKET_SIZE}){hint}"
            )
        if avail < 8:
            self._want = 8
            return None
        code = _INT32.unpack_from(buf, pos + 4)[0]
        self._check_startup_code(code, length)
        if avail < length:
            self._want = length
            return None
        self._pos = pos + length
        if code == m.SSL_REQUEST_CODE:
            self._ssl_requested = True
        elif code == m.GSSENC_REQUEST_CODE:
            self._gss_requested = True
        elif code == m.CANCEL_REQUEST_CODE:
            self._phase = "done"
        else:
            self._phase = "messages"
        return Frame(b"", length, buf if length == len(buf) else buf[pos : pos + length])

    def _check_startup_code(self, code: int, length: int) -> None:
        if code == m.SSL_REQUEST_CODE or code == m.GSSENC_REQUEST_CODE:
            name = "SSLRequest" if code == m.SSL_REQUEST_CODE else "GSSENCRequest"
            if length != 8:
                raise ProtocolViolation(f"invalid length {length} of {name} (must be 8)")
            if self._ssl_requested if code == m.SSL_REQUEST_CODE else self._gss_requested:
                raise ProtocolViolation(f"{name} sent twice")
        elif code == m.CANCEL_REQUEST_CODE:
            if not 16 <= length <= 12 + MAX_SECRET_KEY:
                raise ProtocolViolation(
                    f"invalid length {length} of CancelRequest (allowed: 16 to {12 + MAX_SECRET_KEY})"
                )
        elif code >> 16 != 3:
            # PostgreSQL answers an unknown protocol or request code with 0A000 too.
            raise ProtocolViolation(
                f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}:"
                " the proxy supports protocol 3.x",
                sqlstate="0A000",
            )


class BackendParser(_Reader[m.BackendMessage]):
    """Reads what a PostgreSQL server sends: typed messages only.

    After sending SSLRequest or GSSENCRequest upstream, call ``expect_encryption_response()``:
    the next item is then the single answer byte (an ``EncryptionResponse`` frame of type
    ``b""``), or an ErrorResponse from a server too old to know the request.
    """

    _names = BACKEND_NAMES

    def __init__(
        self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, skip: Iterable[bytes] = ()
    ) -> None:
        super().__init__(max_message_size=max_message_size, skip=skip)
        self._expect_encryption = False

    def expect_encryption_response(self) -> None:
        self._expect_encryption = True

    def _decode(self, type_: bytes, raw: bytes) -> m.BackendMessage:
        return decode_backend(type_, raw)

    def _frame(self) -> Frame | None:
        if self._expect_encryption:
            return self._encryption_frame()
        return self._typed_frame()

    def _encryption_frame(self) -> Frame | None:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 1:
            self._want = 1
            return None
        answer = buf[pos]
        if answer == 0x45:  # 'E': a server that predates the request sends an ErrorResponse
            self._expect_encryption = False
            return self._typed_frame()
        if answer not in (0x53, 0x4E):
            raise ProtocolViolation(
                f"invalid answer {bytes([answer])!r} to an encryption request (expected S or N)"
            )
        self._expect_encryption = False
        self._pos = pos + 1
        if answer == 0x53 and self.buffered:
            # CVE-2021-23222: bytes before the handshake must not pass as encrypted ones.
            raise ProtocolViolation("server sent unencrypted data after accepting encryption")
        return Frame(b"", 1, _TYPES[answer])
