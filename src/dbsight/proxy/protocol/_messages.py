"""Every PostgreSQL protocol 3.0 message as a small immutable value (h11's ``_events.py``).

Strings are decoded as UTF-8 with ``surrogateescape``, so bytes in any other client encoding
survive a decode/encode round trip unchanged. Values that stay opaque to the proxy (row
values, parameters, COPY payloads, SASL data) are ``bytes``; SQL NULL is ``None``.
``TYPE`` is the one-byte message type on the wire (``b""`` for the untyped startup packets).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Literal

from ._errors import ProtocolViolation

#: Startup-packet codes (the int32 after the length of an untyped packet).
PROTOCOL_3_0 = 196608  # 3 << 16
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102

#: Authentication request codes of the backend 'R' message.
AUTH_OK = 0
AUTH_KERBEROS_V5 = 2
AUTH_CLEARTEXT_PASSWORD = 3
AUTH_MD5_PASSWORD = 5
AUTH_GSS = 7
AUTH_GSS_CONTINUE = 8
AUTH_SSPI = 9
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12

DescribeKind = Literal["S", "P"]  # prepared Statement or Portal


class TransactionStatus(enum.Enum):
    """The ReadyForQuery status byte: the server's own word on the transaction state."""

    IDLE = "I"
    IN_TRANSACTION = "T"
    FAILED = "E"


def _utf8(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# ====================================================================== startup phase (frontend)


@dataclass(frozen=True, slots=True)
class StartupMessage:
    """First packet of a session: protocol version and parameters (user, database, options...)."""

    TYPE: ClassVar[bytes] = b""
    parameters: dict[str, str]
    protocol_version: int = PROTOCOL_3_0

    @property
    def major(self) -> int:
        return self.protocol_version >> 16

    @property
    def minor(self) -> int:
        return self.protocol_version & 0xFFFF


@dataclass(frozen=True, slots=True)
class SSLRequest:
    """Asks for TLS; the answer is the single byte ``S`` (go ahead) or ``N`` (no)."""

    TYPE: ClassVar[bytes] = b""


@dataclass(frozen=True, slots=True)
class GSSENCRequest:
    """Asks for GSSAPI encryption; a proxy that does not offer it answers ``N``."""

    TYPE: ClassVar[bytes] = b""


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Sent on a new connection to cancel the query running in session ``pid``.

    ``secret_key`` is 4 bytes in protocol 3.0 and 4 to 256 bytes from protocol 3.2 on.
    """

    TYPE: ClassVar[bytes] = b""
    pid: int
    secret_key: bytes


# ====================================================================== frontend, typed


@dataclass(frozen=True, slots=True)
class Query:
    """Simple query protocol: one or more SQL statements in one string."""

    TYPE: ClassVar[bytes] = b"Q"
    query: str


@dataclass(frozen=True, slots=True)
class Parse:
    """Prepares ``query`` as statement ``name`` (``""``: the unnamed statement)."""

    TYPE: ClassVar[bytes] = b"P"
    name: str
    query: str
    param_types: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Bind:
    """Binds parameter values to a prepared statement, creating a portal."""

    TYPE: ClassVar[bytes] = b"B"
    portal: str
    statement: str
    param_formats: tuple[int, ...] = ()
    values: tuple[bytes | None, ...] = ()
    result_formats: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Describe:
    """Asks for the description of a prepared statement (``S``) or a portal (``P``)."""

    TYPE: ClassVar[bytes] = b"D"
    kind: DescribeKind
    name: str


@dataclass(frozen=True, slots=True)
class Execute:
    """Runs a portal; ``max_rows`` 0 means no limit (else PortalSuspended after that many)."""

    TYPE: ClassVar[bytes] = b"E"
    portal: str
    max_rows: int = 0


@dataclass(frozen=True, slots=True)
class Sync:
    """Ends an extended-protocol pipeline: the server answers ReadyForQuery."""

    TYPE: ClassVar[bytes] = b"S"


@dataclass(frozen=True, slots=True)
class Flush:
    """Asks the server to send what it has buffered, without ending the pipeline."""

    TYPE: ClassVar[bytes] = b"H"


@dataclass(frozen=True, slots=True)
class Close:
    """Closes a prepared statement (``S``) or a portal (``P``)."""

    TYPE: ClassVar[bytes] = b"C"
    kind: DescribeKind
    name: str


@dataclass(frozen=True, slots=True)
class CopyFail:
    """Frontend aborts a COPY FROM STDIN with this error message."""

    TYPE: ClassVar[bytes] = b"f"
    message: str


@dataclass(frozen=True, slots=True)
class Terminate:
    """The client is closing the session."""

    TYPE: ClassVar[bytes] = b"X"


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """The legacy fast-path function call, kept as its raw body."""

    TYPE: ClassVar[bytes] = b"F"
    payload: bytes


@dataclass(frozen=True, slots=True)
class SASLInitialResponse:
    """A ``p`` message read as the first SASL message: chosen mechanism and its data."""

    mechanism: str
    data: bytes | None


@dataclass(frozen=True, slots=True)
class SASLResponse:
    """A ``p`` message read as a later SASL message (SCRAM client-final-message)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PasswordMessage:
    """Every frontend ``p`` message: password, SASL initial/continued response, GSS response.

    The bytes alone do not say which one it is (that depends on the authentication request
    the server sent), so the raw ``payload`` is kept and each reading is a method.
    """

    TYPE: ClassVar[bytes] = b"p"
    payload: bytes

    def password(self) -> str:
        """Read as a cleartext or MD5 ("md5" + hex) password: a NUL-terminated string."""
        data = self.payload
        if not data.endswith(b"\0") or data.find(b"\0") != len(data) - 1:
            raise ProtocolViolation(
                "malformed password message: expected one NUL-terminated string"
            )
        return _utf8(data[:-1])

    def sasl_initial_response(self) -> SASLInitialResponse:
        """Read as SASLInitialResponse: mechanism name, int32 length (-1: none), data."""
        data = self.payload
        end = data.find(b"\0")
        if end < 0:
            raise ProtocolViolation(
                "malformed SASLInitialResponse: mechanism is not NUL-terminated"
            )
        if len(data) < end + 5:
            raise ProtocolViolation("malformed SASLInitialResponse: missing data length")
        length = int.from_bytes(data[end + 1 : end + 5], "big", signed=True)
        rest = data[end + 5 :]
        if length == -1 and not rest:
            return SASLInitialResponse(_utf8(data[:end]), None)
        if length != len(rest):
            raise ProtocolViolation(
                f"malformed SASLInitialResponse: data length {length} but {len(rest)} bytes follow"
            )
        return SASLInitialResponse(_utf8(data[:end]), rest)

    def sasl_response(self) -> SASLResponse:
        """Read as SASLResponse: the whole payload is the mechanism's data."""
        return SASLResponse(self.payload)


# ====================================================================== both directions


@dataclass(frozen=True, slots=True)
class CopyData:
    """A chunk of COPY data (either direction)."""

    TYPE: ClassVar[bytes] = b"d"
    data: bytes


@dataclass(frozen=True, slots=True)
class CopyDone:
    """End of the COPY data stream (either direction)."""

    TYPE: ClassVar[bytes] = b"c"


# ====================================================================== backend: authentication


@dataclass(frozen=True, slots=True)
class EncryptionResponse:
    """The single untyped byte answering SSLRequest/GSSENCRequest: ``S`` (accepted) or ``N``."""

    TYPE: ClassVar[bytes] = b""
    accepted: bool


@dataclass(frozen=True, slots=True)
class AuthenticationOk:
    TYPE: ClassVar[bytes] = b"R"


@dataclass(frozen=True, slots=True)
class AuthenticationCleartextPassword:
    TYPE: ClassVar[bytes] = b"R"


@dataclass(frozen=True, slots=True)
class AuthenticationMD5Password:
    TYPE: ClassVar[bytes] = b"R"
    salt: bytes  # 4 bytes


@dataclass(frozen=True, slots=True)
class AuthenticationSASL:
    """The server offers these SASL mechanisms (e.g. SCRAM-SHA-256, SCRAM-SHA-256-PLUS)."""

    TYPE: ClassVar[bytes] = b"R"
    mechanisms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuthenticationSASLContinue:
    TYPE: ClassVar[bytes] = b"R"
    data: bytes


@dataclass(frozen=True, slots=True)
class AuthenticationSASLFinal:
    TYPE: ClassVar[bytes] = b"R"
    data: bytes


@dataclass(frozen=True, slots=True)
class AuthenticationOther:
    """Any other authentication request (Kerberos, GSS, SSPI, ...) kept raw for relaying."""

    TYPE: ClassVar[bytes] = b"R"
    code: int
    data: bytes = b""


# ====================================================================== backend: session


@dataclass(frozen=True, slots=True)
class ParameterStatus:
    """A run-time parameter's current value (server_version, client_encoding, TimeZone, ...)."""

    TYPE: ClassVar[bytes] = b"S"
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class BackendKeyData:
    """The session's pid and cancel key (4 bytes in 3.0; up to 256 from 3.2)."""

    TYPE: ClassVar[bytes] = b"K"
    pid: int
    secret_key: bytes


@dataclass(frozen=True, slots=True)
class ReadyForQuery:
    """The server finished a request cycle; ``status`` is the transaction state."""

    TYPE: ClassVar[bytes] = b"Z"
    status: TransactionStatus


@dataclass(frozen=True, slots=True)
class NegotiateProtocolVersion:
    """The server supports an older minor version / did not recognise some ``_pq_.`` options."""

    TYPE: ClassVar[bytes] = b"v"
    newest_minor: int
    unrecognized_options: tuple[str, ...] = ()


# ====================================================================== backend: query results


@dataclass(frozen=True, slots=True)
class FieldDescription:
    """One column of a RowDescription."""

    name: str
    table_oid: int = 0
    column_attr: int = 0
    type_oid: int = 0
    type_size: int = -1
    type_modifier: int = -1
    format: int = 0


@dataclass(frozen=True, slots=True)
class RowDescription:
    TYPE: ClassVar[bytes] = b"T"
    fields: tuple[FieldDescription, ...]


@dataclass(frozen=True, slots=True)
class DataRow:
    TYPE: ClassVar[bytes] = b"D"
    values: tuple[bytes | None, ...]


# Commands whose tag ends with a row count ("INSERT 0 3": oid, then the count).
_ROW_COUNT_TAGS = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "FETCH", "MOVE"}
)


def _is_count(word: str) -> bool:
    return word.isascii() and word.isdigit()


@dataclass(frozen=True, slots=True)
class CommandComplete:
    """A statement finished; ``tag`` is e.g. ``"SELECT 5"``, ``"INSERT 0 3"``, ``"BEGIN"``."""

    TYPE: ClassVar[bytes] = b"C"
    tag: str

    @property
    def command(self) -> str:
        """The tag without its counts: ``"INSERT 0 3"`` -> ``"INSERT"``."""
        words = self.tag.split(" ")
        while len(words) > 1 and _is_count(words[-1]):
            words.pop()
        return " ".join(words)

    @property
    def rows(self) -> int | None:
        """Rows returned or affected, for the tags that carry a count; else ``None``."""
        words = self.tag.split(" ")
        if words[0] not in _ROW_COUNT_TAGS or not _is_count(words[-1]):
            return None
        if len(words) == 2 or (len(words) == 3 and words[0] == "INSERT" and _is_count(words[1])):
            return int(words[-1])
        return None


@dataclass(frozen=True, slots=True)
class EmptyQueryResponse:
    TYPE: ClassVar[bytes] = b"I"


# One-letter codes of ErrorResponse / NoticeResponse fields.
FIELD_SEVERITY_LOCALIZED = "S"
FIELD_SEVERITY = "V"
FIELD_SQLSTATE = "C"
FIELD_MESSAGE = "M"
FIELD_DETAIL = "D"
FIELD_HINT = "H"
FIELD_POSITION = "P"
FIELD_INTERNAL_POSITION = "p"
FIELD_INTERNAL_QUERY = "q"
FIELD_WHERE = "W"
FIELD_SCHEMA = "s"
FIELD_TABLE = "t"
FIELD_COLUMN = "c"
FIELD_DATA_TYPE = "d"
FIELD_CONSTRAINT = "n"
FIELD_FILE = "F"
FIELD_LINE = "L"
FIELD_ROUTINE = "R"


class _Fields:
    """Named access to the fields of an ErrorResponse / NoticeResponse."""

    __slots__ = ()
    fields: dict[str, str]

    @property
    def severity(self) -> str | None:
        """Non-localized severity (ERROR, FATAL, PANIC, WARNING, NOTICE, ...)."""
        return self.fields.get(FIELD_SEVERITY) or self.fields.get(FIELD_SEVERITY_LOCALIZED)

    @property
    def sqlstate(self) -> str | None:
        return self.fields.get(FIELD_SQLSTATE)

    @property
    def message(self) -> str | None:
        return self.fields.get(FIELD_MESSAGE)

    @property
    def detail(self) -> str | None:
        return self.fields.get(FIELD_DETAIL)

    @property
    def hint(self) -> str | None:
        return self.fields.get(FIELD_HINT)

    @property
    def position(self) -> int | None:
        """1-based character position of the error in the query text."""
        value = self.fields.get(FIELD_POSITION)
        return int(value) if value is not None and value.isdigit() else None

    @property
    def where(self) -> str | None:
        return self.fields.get(FIELD_WHERE)

    @property
    def schema_name(self) -> str | None:
        return self.fields.get(FIELD_SCHEMA)

    @property
    def table_name(self) -> str | None:
        return self.fields.get(FIELD_TABLE)

    @property
    def column_name(self) -> str | None:
        return self.fields.get(FIELD_COLUMN)

    @property
    def constraint_name(self) -> str | None:
        return self.fields.get(FIELD_CONSTRAINT)


@dataclass(frozen=True, slots=True)
class ErrorResponse(_Fields):
    TYPE: ClassVar[bytes] = b"E"
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class NoticeResponse(_Fields):
    TYPE: ClassVar[bytes] = b"N"
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class ParseComplete:
    TYPE: ClassVar[bytes] = b"1"


@dataclass(frozen=True, slots=True)
class BindComplete:
    TYPE: ClassVar[bytes] = b"2"


@dataclass(frozen=True, slots=True)
class CloseComplete:
    TYPE: ClassVar[bytes] = b"3"


@dataclass(frozen=True, slots=True)
class NoData:
    TYPE: ClassVar[bytes] = b"n"


@dataclass(frozen=True, slots=True)
class ParameterDescription:
    TYPE: ClassVar[bytes] = b"t"
    type_oids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PortalSuspended:
    TYPE: ClassVar[bytes] = b"s"


@dataclass(frozen=True, slots=True)
class CopyInResponse:
    """The server is ready for COPY FROM STDIN data (``format`` 0 text, 1 binary)."""

    TYPE: ClassVar[bytes] = b"G"
    format: int
    column_formats: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CopyOutResponse:
    TYPE: ClassVar[bytes] = b"H"
    format: int
    column_formats: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CopyBothResponse:
    """Streaming replication: COPY in both directions."""

    TYPE: ClassVar[bytes] = b"W"
    format: int
    column_formats: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class NotificationResponse:
    """A NOTIFY delivered to this session (LISTEN)."""

    TYPE: ClassVar[bytes] = b"A"
    pid: int
    channel: str
    payload: str = ""


@dataclass(frozen=True, slots=True)
class FunctionCallResponse:
    TYPE: ClassVar[bytes] = b"V"
    value: bytes | None


# ====================================================================== anything else


@dataclass(frozen=True, slots=True)
class Unknown:
    """A typed message this codec does not model: relayed as is, never an error."""

    type: bytes
    payload: bytes

    @property
    def TYPE(self) -> bytes:
        return self.type


StartupPacket = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest

FrontendMessage = (
    StartupMessage
    | SSLRequest
    | GSSENCRequest
    | CancelRequest
    | Query
    | Parse
    | Bind
    | Describe
    | Execute
    | Sync
    | Flush
    | Close
    | CopyData
    | CopyDone
    | CopyFail
    | Terminate
    | FunctionCall
    | PasswordMessage
    | Unknown
)

Authentication = (
    AuthenticationOk
    | AuthenticationCleartextPassword
    | AuthenticationMD5Password
    | AuthenticationSASL
    | AuthenticationSASLContinue
    | AuthenticationSASLFinal
    | AuthenticationOther
)

BackendMessage = (
    Authentication
    | EncryptionResponse
    | ParameterStatus
    | BackendKeyData
    | ReadyForQuery
    | NegotiateProtocolVersion
    | RowDescription
    | DataRow
    | CommandComplete
    | EmptyQueryResponse
    | ErrorResponse
    | NoticeResponse
    | ParseComplete
    | BindComplete
    | CloseComplete
    | NoData
    | ParameterDescription
    | PortalSuspended
    | CopyInResponse
    | CopyOutResponse
    | CopyBothResponse
    | CopyData
    | CopyDone
    | NotificationResponse
    | FunctionCallResponse
    | Unknown
)

Message = FrontendMessage | BackendMessage
