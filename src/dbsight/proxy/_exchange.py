"""The relay's bookkeeping: which answer belongs to which request, read from message types.

The PostgreSQL server answers a session's requests strictly in order, so a queue of what was
asked (``pending``) tells what each answer completes: a Query ends at its ReadyForQuery, an
Execute at its CommandComplete (or EmptyQueryResponse, PortalSuspended, ErrorResponse), a
Parse at ParseComplete, and so on; after an ErrorResponse in the extended protocol the
server skips everything up to the next Sync, and so does the queue. Only the few bytes that
matter are read (a message's type, a statement's text, a command tag, an error's SQLSTATE):
DataRow and CopyData are never looked into. This is the hot path of ``dbsight proxy``; the
full decoder in ``dbsight.proxy.protocol`` is for everything else (and for the tests that
check the two agree).

An Exchange also makes each statement a recorder event: opened when its Query or Execute is
seen (timed from the first message of its request cycle), finished with its rows, or failed
with the server's SQLSTATE. Rows are the command tag's count, else the DataRows relayed
(`statement_rows`: SHOW, EXPLAIN, a portal suspended at its row limit, which has no tag);
DataRows are counted, never looked into. A portal suspended at its row limit is one
statement however many Executes fetch it (`PortalRuns`). While no observer needs a
statement as it happens (the recorder's lean path, see `dbsight.core.Recorder`), a statement
that no sqlcommenter comment, pipeline step or capture asks for is opened as a plain tuple
instead and its event made later, in a batch, with the same fields.

Transaction pooling adds three kinds of entries: ``SWALLOW`` (a Parse the proxy put in front
of a client's Bind: its ParseComplete is not forwarded), ``SWALLOW_QUERY`` (a Query the proxy
sent itself, such as a BEGIN it had answered ahead or the settings the client needs on this
connection: nothing of its answer is forwarded) and
``REPLY`` (an answer the proxy gives
itself, in its place in the stream: a ParseComplete for a statement the connection already
has, a CloseComplete for a client's Close). `Exchange.answers` returns the server's bytes
with those applied.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Literal

from opentelemetry import context as otel_context

from .. import _hot
from .._runtime import recorder
from ..export._fields import event_fields
from ..sql import SqlInfo, _shapes, analyze
from ..sql._analyze import POSTGRES_SHAPES, SHAPE_HITS, shaped_postgres
from . import _plain_answer, _writes
from ._capture import WorkloadCapture
from ._listen_statements import LISTEN_FIRST, ListenOp, listen_ops, may_listen
from ._observe import SOURCE, SYSTEM, ServerError, SessionFacts, remote_parent, split_comment
from ._param_text import BoundParams, bind_parameters, parameter_types
from ._pipeline import UNOBSERVED, StatementLog
from ._plain_answer import (  # what the client asked, in `pending`: (kind, payload)
    BIND,
    CLOSE,
    DESCRIBE,
    EXECUTE,
    FUNCTION,
    PARSE,
    QUERY,
    REPLY,
    SWALLOW,
    SWALLOW_QUERY,
    SYNC,
)
from ._portal_runs import PortalRuns
from ._units import cstring

# the entries of `pending` that have no payload, made once (one per Bind and Sync otherwise)
_BIND_ENTRY, _SYNC_ENTRY, _DESCRIBE_ENTRY = (BIND, None), (SYNC, None), (DESCRIBE, None)

_unpack_int32 = struct.Struct(">i").unpack_from
# the recorder's `ended` for the lean path, reached in C when this module is compiled
_lean_ending = recorder.lean_ending
_unpack_int16 = struct.Struct(">h").unpack_from
_perf_counter = time.perf_counter
_time = time.time

_STATEMENT_KINDS = (QUERY, EXECUTE)

# message types, as ints
_IDLE = ord("I")
_FAILED = ord("E")
_IN_TRANSACTION = ord("T")


class TrackingLost(Exception):
    """The server's answers do not match what the client asked: the stream cannot be trusted."""


Entry = tuple[int, Any]


def nul_at(buf: bytes, start: int, end: int) -> int:
    """Where the NUL that ends the short field at ``buf[start]`` (a statement's or a
    portal's name) is, before ``end``: found by a loop over the bytes, which compiled is C
    (`bytes.index` is a method call). ValueError when there is none, as `bytes.index`."""
    i = start
    while i < end and buf[i] != 0:
        i += 1
    if i >= end:
        raise ValueError("string without its terminating NUL")
    return i


def _name_end(buf: bytes, start: int, end: int) -> int:
    """Where the short field at ``buf[start]`` (a statement's or a portal's name) ends: the
    position after its NUL (``start + 1`` for the empty name, most clients' only one)."""
    if start < end and buf[start] == 0:
        return start + 1
    return nul_at(buf, start, end) + 1


def _name_between(buf: bytes, start: int, after: int) -> str:
    """The name at ``buf[start]`` that `_name_end` said ends before ``after``, as text (a
    name and where it ends in two calls, not a tuple made for them)."""
    return "" if after == start + 1 else _hot.name_text(buf, start, after - 1)


# The analyses of the statement texts an Execute runs, kept by each session (see `_open`)
_ANALYSES_MAX = 256


def command_rows(buf: bytes, start: int, end: int) -> int | None:
    """The row count at the end of a command tag (``SELECT 3``, ``INSERT 0 5``) at
    ``buf[start:end]``, if any: the digits after its last space. Read byte by byte, which
    compiled is C (this runs for every statement that has a count)."""
    i = end
    while i > start and 48 <= buf[i - 1] <= 57:  # b"0"..b"9"
        i -= 1
    if i == end or i == start or buf[i - 1] != 32:  # no digits, or not after a space
        return None
    if end - i > 18:  # (past what a C long long holds: Python's int)
        return int(buf[i:end])
    rows = 0
    while i < end:
        rows = rows * 10 + (buf[i] - 48)
        i += 1
    return rows


# what a pooled session reads of a Query's analysis (`_query_flags`)
_QUERY_READ_ONLY = 1
_QUERY_DIRTIES = 2  # it leaves something in the server session: DDL, a SELECT that writes


def _query_flags(info: Any) -> int:
    """``info``'s `_QUERY_READ_ONLY` and `_QUERY_DIRTIES`."""
    return (_QUERY_READ_ONLY if info.read_only else 0) | (
        0 if _session_safe_info(info) else _QUERY_DIRTIES
    )


def _may_listen(sql: str) -> bool:
    """`may_listen`, after a look at the first two characters that spares most texts the
    call: a LISTEN or UNLISTEN text starts with one of `LISTEN_FIRST` (a blank, a comment's
    - or /, an L or a U), and in none of those cases is the next character a p — which it is
    in an UPDATE, the usual text that starts with a U."""
    return (
        len(sql) > 1 and sql[0] in LISTEN_FIRST and sql[1] != "p" and sql[1] != "P"
        and may_listen(sql)
    )  # fmt: skip


def _may_start_listen(body: bytes) -> bool:
    """`_may_listen`'s look at the first two characters, at a Query's bytes before they are
    decoded (most are never decoded here: a statement held lean keeps its bytes). The same
    answer: a character of `LISTEN_FIRST` is one byte, and a character that is not one byte
    is neither one of them nor a p."""
    return len(body) > 1 and body[0] in b" \t\r\n-/lLuU" and body[1] != 112 and body[1] != 80


def _statement_rows(tag_rows: int | None, returned: int) -> int | None:
    """`dbsight.core.statement_rows`, here so that compiled it is a C call."""
    if tag_rows is not None:
        return tag_rows
    return returned if returned else None


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """The (code, value) fields of an ErrorResponse or NoticeResponse body."""
    i = start
    while i < end and buf[i] != 0:
        nul = buf.find(b"\0", i + 1, end)
        if nul < 0:
            return
        yield buf[i], buf[i + 1 : nul]
        i = nul + 1


def _errors(data: bytes) -> Iterator[tuple[int, int]]:
    """Where the body of each whole ErrorResponse among the server messages ``data`` is."""
    n = len(data)
    i = 0
    while n - i >= 5:
        end = i + 1 + _unpack_int32(data, i + 1)[0]
        if end > n:
            return
        if data[i] == 69:  # 'E'
            yield i + 5, end
        i = end


def error_fields(buf: bytes, start: int, end: int) -> tuple[str | None, str]:
    """SQLSTATE and message of an ErrorResponse body."""
    sqlstate: str | None = None
    message = ""
    for code, value in _fields(buf, start, end):
        if code == 67:  # 'C'
            sqlstate = value.decode("ascii", "replace")
        elif code == 77:  # 'M'
            message = value.decode("utf-8", "replace")
    return sqlstate, message


def fatal_error(data: bytes) -> bool:
    """Whether ``data`` (whole server messages) holds an ErrorResponse of severity FATAL or
    PANIC: the server is ending the session (a shutdown, pg_terminate_backend)."""
    return _has_field(data, (83, 86), (b"FATAL", b"PANIC"))  # S, V: severity


def recovery_conflict(data: bytes) -> bool:
    """Whether ``data`` (whole server messages) holds an ErrorResponse with SQLSTATE 40001,
    which on a standby, outside a transaction, is a statement cancelled because WAL replay
    needed what it held ("canceling statement due to conflict with recovery")."""
    return _has_field(data, (67,), (b"40001",))  # C: SQLSTATE


def _has_field(data: bytes, codes: tuple[int, ...], values: tuple[bytes, ...]) -> bool:
    return any(
        code in codes and value in values
        for start, end in _errors(data)
        for code, value in _fields(data, start, end)
    )


def error_message(data: bytes) -> str:
    """SQLSTATE and message of the first ErrorResponse in ``data``, for a log line."""
    for start, end in _errors(data):
        sqlstate, message = error_fields(data, start, end)
        return f"{sqlstate}: {message}"
    return "an error"


def session_safe(sql: str) -> bool:
    """What the text of a statement says about the server session it runs in: False when it
    may leave something behind there for the next client of a pooled connection (DDL, which
    may create temporary objects, and a SELECT that is not provably read-only: advisory
    locks, set_config, SELECT INTO...). Commands that are neither (SET, LISTEN, PREPARE...)
    are judged by their command tag instead (`Exchange._command_tag`)."""
    return _session_safe_info(analyze(sql))


def _session_safe_info(info: SqlInfo) -> bool:
    operation = info.operation
    return operation != "ddl" and (operation != "select" or info.read_only)


class Exchange:
    """One relayed session's request queue and statement observation (module docstring).

    ``forget`` is called with the server name of a statement the server did not prepare
    after all (its Parse failed or was skipped); ``on_parameter`` with the name and value of
    each ParameterStatus that goes to the client. ``before_ready`` holds messages of the
    proxy's own (a NoticeResponse, a ParameterStatus) that go to the client just before the
    next ReadyForQuery it gets.
    """

    __slots__ = (
        "pending", "statements", "portals", "status", "discarding", "unsynced", "query_key",
        "query_text", "query_comment", "key", "user", "database", "application_name",
        "client_addr", "statement_count", "dirty",
        "full_reset", "cleared", "forget", "pooled", "last_sqlstate", "ddl_seen", "ddl_count",
        "capture",
        "session_id", "_rolled_back", "row_limit", "row_limit_error", "on_row_limit", "_rows",
        "_over_limit", "_portal_params", "_statement_params", "_param_types", "_cycle_start",
        "_query_rows", "_buffer",
        "observation", "_logs", "_analyses", "wrote", "_returned", "_runs", "_running",
        "_suspended", "_push", "_drop", "on_parameter",
        "before_ready", "listens", "listen_tags", "rolled_back", "_replies", "_facts",
        "_flags_of", "_flags",
    )

    def __init__(
        self,
        *,
        user: str | None,
        database: str | None,
        application_name: str | None,
        client_addr: str | None,
        forget: Callable[[str], None] | None = None,
        pooled: bool = False,
    ) -> None:
        self.pending: deque[Entry] = deque()
        # its append and clear, bound once (the same deque for the exchange's life): a
        # method looked up per request was a tenth of what the exchange spends on one
        self._push = self.pending.append
        self._drop = self.pending.clear
        self.statements: dict[str, str] = {}  # client's statement name -> text
        self.portals: dict[str, str | None] = {}  # portal -> its statement's text
        self.status = _IDLE  # the last ReadyForQuery's transaction status
        self.discarding = False  # after an extended-protocol error until the client's Sync
        # the next Query's text, and that text with its digits zeroed (None: not made),
        # when its sender has read them already (`StatementEffects.sent`): its shape is
        # looked up by that key
        self.query_key: bytes | None = None
        self.query_text: bytes | None = None
        self.query_comment = False  # ... and whether that text has a /* comment
        # a Bind or Execute was sent and its Sync not yet: the server holds an implicit
        # transaction (a pipeline's statements commit or fail together at the Sync)
        self.unsynced = False
        self.key: tuple[int, bytes] | None = None  # the server's BackendKeyData
        self.user = user
        self.database = database
        self.application_name = application_name
        self.client_addr = client_addr
        # the same, as the lean path's statements carry them (replaced, never changed)
        self._facts = SessionFacts(database, user, application_name, client_addr)
        # the last Query's analysis, and what a pooled session reads of it (`_QUERY_READ_ONLY`,
        # `_QUERY_DIRTIES`): a client running one statement again and again reads it once
        self._flags_of: Any = None
        self._flags = 0
        self.statement_count = 0
        self.dirty = False  # something was left in the server session (pooled mode)
        self.wrote = False  # a statement that may change table data was sent (pooled mode)
        self.full_reset = False  # ... that only DISCARD ALL removes (SQL PREPARE, DISCARD)
        self.cleared = False  # the client dropped its prepared statements (DEALLOCATE ALL...)
        self.last_sqlstate: str | None = None  # of the last ErrorResponse (the breaker reads it)
        self.ddl_seen = False  # CREATE/ALTER/DROP ran (function volatility may have changed)
        # DROP/ALTER, and ROLLBACK after DDL, in the transaction held now (statement names)
        self.ddl_count = 0
        self.capture: WorkloadCapture | None = None  # --capture: statements written there too
        self.session_id = 0
        self._rolled_back = False  # the transaction's last command was ROLLBACK (capture)
        # the firewall's max_rows: DataRows past it are dropped, the statement is cancelled
        # (on_row_limit) and its end replaced by row_limit_error (an ErrorResponse)
        self.row_limit = 0
        self._replies = 0  # REPLY entries in `pending`
        self.row_limit_error = b""
        self.on_row_limit: Callable[[], None] | None = None
        self._rows = 0
        self._over_limit = False
        # --capture with parameters: a portal's Bind values, then each Execute's (by its ctx),
        # and each prepared statement's parameter types (declared by its Parse, then the
        # server's ParameterDescription), to turn binary values into text
        self._portal_params: dict[str, BoundParams] = {}
        self._statement_params: dict[int, BoundParams] = {}
        self._param_types: dict[str, list[int]] = {}
        self.forget = forget
        self.on_parameter: Callable[[str, str], None] | None = None
        self.before_ready = b""
        self.pooled = pooled  # judge what each statement leaves in the server session
        self._cycle_start: float | None = None
        self._query_rows: int | None = None
        self._returned = 0  # DataRows relayed since the last statement's end
        self._runs = PortalRuns()  # statements run with a row limit
        # its two dicts, read for every statement (empty unless a client limits rows): the
        # same objects for the session's life, read here in C
        self._running = self._runs.running
        self._suspended = self._runs.suspended
        self._buffer = b""  # an incomplete server message
        # the request pipeline's sample and log steps, for the next statement opened
        self.observation = UNOBSERVED
        self._logs: dict[int, tuple[StatementLog, ...]] = {}  # by id(ctx): logged when it ends
        # the analyses of the texts its Executes ran (the texts of its prepared statements,
        # the same objects each time): looked up here, not in the recorder's front cache
        self._analyses: dict[str, SqlInfo] = {}
        # LISTEN through transaction pooling (`_listener`): the (UN)LISTENs sent in the
        # transaction under way (None: not followed), how many the server has completed, and
        # whether the last transaction-ending command was a ROLLBACK
        self.listens: list[ListenOp] | None = None
        self.listen_tags = 0
        self.rolled_back = False

    # -- state -------------------------------------------------------------------------
    @property
    def at_rest(self) -> bool:
        """Nothing asked is unanswered and the server is outside a transaction (explicit, or
        the implicit one of extended-protocol statements before their Sync)."""
        return not self.pending and self.status == _IDLE and not self.unsynced

    @property
    def buffering(self) -> bool:
        """Part of a server message arrived, the rest has not yet."""
        return bool(self._buffer)

    @property
    def between_requests(self) -> bool:
        """Nothing asked is unanswered (a transaction may be open)."""
        return not self.pending

    def statements_running(self) -> bool:
        """A Query or Execute waits for its answer (what a cancel would stop)."""
        return any(entry[0] in _STATEMENT_KINDS for entry in self.pending)

    # -- client -> server ----------------------------------------------------------------
    def request(
        self, t: int, buf: bytes, start: int, end: int, at: float, server_name: str | None = None
    ) -> None:
        """The client's message of type ``t`` with body ``buf[start:end]`` is on its way to
        the server (after any renaming; ``server_name``: the name a Parse prepares on the
        server, forgotten again if the server does not prepare it)."""
        if self.discarding:
            if t == 83:  # Sync: the server answers again from here
                self.discarding = self.unsynced = False
                self._push(_SYNC_ENTRY)
                self._cycle_start = None
            return  # skipped by the server: nothing will answer it
        if t == 81:  # Query
            if self._suspended:  # it drops the unnamed portal
                self._runs.end("", self._finish)
            key = None
            commented = -1  # (not known yet)
            body = self.query_text
            if body is None:
                body = _hot.sliced(buf, start, end - 1)
            else:  # (handed: `StatementEffects.sent` read this text, and maybe its key)
                key = self.query_key
                self.query_key = self.query_text = None
                commented = self.query_comment
                if len(body) != end - 1 - start:  # (not this text's: read it again)
                    body, key, commented = _hot.sliced(buf, start, end - 1), None, -1
            sql = None  # (decoded where it is read: a statement held lean keeps the bytes)
            if self.listens is not None and _may_start_listen(body):
                sql = body.decode("utf-8", "replace")
                if may_listen(sql):
                    self.listens.extend(listen_ops(sql))
            self.statement_count += 1
            ctx = self._open(sql, at, body, True, key, commented)
            if self.pooled and not (self.dirty and self.wrote):
                if type(ctx) is tuple:  # a `LeanStart`: its analysis is fourth
                    info = ctx[3]
                elif ctx is None:
                    info = shaped_postgres(body) or analyze(body.decode("utf-8", "replace"))
                else:
                    info = ctx.info
                if info is not self._flags_of:
                    self._flags_of = info
                    self._flags = _query_flags(info)
                read_only = self._flags & _QUERY_READ_ONLY
                if not self.dirty and self._flags & _QUERY_DIRTIES:
                    self.dirty = True
                if not (self.wrote or read_only):  # (`may_write`'s first test, inline)
                    self.wrote = _writes.may_write(info)
            self._push((QUERY, ctx))
            return
        if self._cycle_start is None:
            self._cycle_start = at
        if t == 66:  # Bind: portal, statement
            i = _name_end(buf, start, end)
            portal = _name_between(buf, start, i)
            if self._suspended:  # a suspended portal of that name is replaced
                self._runs.end(portal, self._finish)
            j = _name_end(buf, i, end)
            statement = _name_between(buf, i, j)
            self.portals[portal] = self.statements.get(statement)
            if self.capture is not None and self.capture.include_params:
                types = self._param_types.get(statement)
                formats, values = bind_parameters(buf, j, end)
                self._portal_params[portal] = BoundParams(
                    types if types is not None else [], formats, values
                )
            self._push(_BIND_ENTRY)
            self.unsynced = True
        elif t == 69:  # Execute: portal, row limit
            i = _name_end(buf, start, end)
            portal = _name_between(buf, start, i)
            ctx = None
            if self._suspended:  # the rest of a suspended portal: the same statement
                ctx = self._runs.resume(portal, self._cycle_start)
                if ctx is not None:
                    self.observation = UNOBSERVED  # drawn for it already
            if ctx is None:
                text = self.portals.get(portal)
                if self.listens is not None and text and _may_listen(text):
                    self.listens.extend(listen_ops(text))
                self.statement_count += 1
                # with a row limit it may be suspended: a statement of several Executes
                # (its int32 > 0: the sign bit clear, not all zero)
                limited = end - i >= 4 and buf[i] < 128 and (
                    buf[i] != 0 or buf[i + 1] != 0 or buf[i + 2] != 0 or buf[i + 3] != 0
                )
                ctx = self._open(
                    text if text is not None else "", self._cycle_start, None, not limited
                )
                if self.pooled and not self.wrote:
                    self.wrote = text is None or _writes.may_write(
                        analyze(text) if ctx is None
                        else ctx[3] if type(ctx) is tuple else ctx.info
                    )  # fmt: skip
                if ctx is not None:
                    if self._portal_params and portal in self._portal_params:  # (--capture's)
                        self._statement_params[id(ctx)] = self._portal_params[portal]
                    if limited:
                        self._runs.start(ctx, portal)
            self._push((EXECUTE, ctx))
            self._cycle_start = at
            self.unsynced = True
        elif t == 83:  # Sync
            self._push(_SYNC_ENTRY)
            self.unsynced = False
            self._cycle_start = None
        elif t == 80:  # Parse: name, text
            name, i = cstring(buf, start, end)
            query, j = cstring(buf, i, end)
            self.statements[name] = query
            if self.capture is not None and self.capture.include_params:
                self._param_types[name] = parameter_types(buf, j, end)
            if self.pooled and not self.dirty and not session_safe(query):
                self.dirty = True
            self._push((PARSE, server_name))
        elif t == 68:  # Describe
            types = None
            if self.capture is not None and self.capture.include_params and buf[start] == 83:
                # a statement's: its ParameterDescription fills in the types it has now
                types = self._param_types.setdefault(cstring(buf, start + 1, end)[0], [])
            self._push(_DESCRIBE_ENTRY if types is None else (DESCRIBE, types))
        elif t == 67:  # Close
            if buf[start] == 83:  # 'S'
                name, _ = cstring(buf, start + 1, end)
                self.statements.pop(name, None)
            elif self._suspended:  # 'P': a portal, maybe a suspended one
                self._runs.end(cstring(buf, start + 1, end)[0], self._finish)
            self._push((CLOSE, None))
        elif t == 70:  # FunctionCall
            self._push((FUNCTION, None))
            self.wrote = True

    def bind_renamed(self, buf: bytes, start: int, j: int, server: str, at: float) -> bool:
        """`request` of a Bind `StatementNames` renamed, read from the client's message (its
        portal's name at ``buf[start:j]``, NUL included) and the statement's server name; False when
        its parameters are captured (then `request` reads the renamed message)."""
        if self.discarding or (self.capture is not None and self.capture.include_params):
            return False
        if self._cycle_start is None:
            self._cycle_start = at
        portal = "" if j == start + 1 else buf[start : j - 1].decode("utf-8", "surrogateescape")
        if self._suspended:  # a suspended portal of that name is replaced
            self._runs.end(portal, self._finish)
        self.portals[portal] = self.statements.get(server)
        self._push(_BIND_ENTRY)
        self.unsynced = True
        return True

    def prepared(self, name: str, query: str, rest: bytes) -> None:
        """Pooled mode prepared the statement ``name`` for the client (answering its Parse
        itself when the connection has it): its text, and ``rest``, the Parse body after
        the name (the text, then the declared parameter types)."""
        self.statements[name] = query
        if self.capture is not None and self.capture.include_params:
            self._param_types[name] = parameter_types(rest, rest.index(b"\0") + 1, len(rest))

    def expect(self, kind: int, payload: Any = None) -> None:
        """An entry for a message the proxy sends itself (an injected Parse: ``SWALLOW``)."""
        if not self.discarding:
            self._push((kind, payload))

    def reply(self, data: bytes) -> bytes | None:
        """An answer of the proxy's own to a client message it does not forward: returned
        when it can go to the client now (nothing ahead of it), else queued in its place."""
        if self.discarding:
            return None  # the server would have skipped the message: no answer
        pending = self.pending
        if not pending:
            return data
        pending.append((REPLY, data))
        self._replies += 1
        return None

    # -- server -> client ----------------------------------------------------------------
    def answers(self, data: bytes) -> bytes:
        """Account for the server's bytes ``data``; returns what goes to the client: the
        complete messages among them, with swallowed answers taken out and the proxy's own
        replies put in their places (an incomplete message waits for its end)."""
        if not (
            self._buffer or self.row_limit or self._over_limit or self._replies
            or self.before_ready or self.capture is not None
        ):  # fmt: skip
            plain = _plain_answer.plain_answer(data, self.pending)  # the usual answer, whole
            if plain is not None and self._answered(data, plain):
                return data
        buf = self._buffer + data if self._buffer else data
        n = len(buf)
        i = 0
        pieces: list[bytes] | None = None
        seg = 0
        pending = self.pending
        returned = self._returned  # DataRows of the statement under way
        row_limit = self.row_limit
        replies = self._replies  # (none queued: no look at the head for one after a message)
        while n - i >= 5:
            t = buf[i]
            e = i + 1 + _unpack_int32(buf, i + 1)[0]
            if e > n:
                break
            if t == 68:  # DataRow
                returned += 1
                if row_limit:
                    self._rows += 1
                    if self._rows > self.row_limit:  # past the firewall's max_rows: dropped
                        if pieces is None:
                            pieces = []
                        pieces.append(buf[seg:i])
                        seg = e
                        if not self._over_limit:
                            self._over_limit = True
                            if self.on_row_limit is not None:
                                self.on_row_limit()  # cancels the statement on the server
                i = e
                continue
            if row_limit or self._over_limit:
                if self._over_limit and (t == 67 or t == 69 or t == 115 or t == 73):
                    # the end of the statement that went past max_rows: our error in its place
                    if pieces is None:
                        pieces = []
                    pieces.append(buf[seg:i])
                    pieces.append(self.row_limit_error)
                    seg = e
                    self._over_limit = False
                if t == 67 or t == 69 or t == 90:
                    self._rows = 0
            head = pending[0] if pending else None
            kind = head[0] if head is not None else -1
            if kind == SWALLOW_QUERY:  # a Query the proxy sent itself: none of it goes on
                if pieces is None:
                    pieces = []
                pieces.append(buf[seg:i])
                seg = e
                returned = 0
                if t == 69:  # (its settings may be half applied: reset the connection after)
                    self.dirty = True
                if t == 90:
                    pending.popleft()
                    self.status = buf[i + 5]
                    if self._suspended and self.status != _IN_TRANSACTION:
                        self._runs.end_all(self._finish)
                i = e
                continue
            if t == 67:  # CommandComplete
                if kind == EXECUTE:
                    pending.popleft()
                    ctx = head[1]  # type: ignore[index]
                    if ctx is not None:
                        rows = (
                            returned if returned and _tag_is(buf, i + 5, _SELECT_TAG)
                            else command_rows(buf, i + 5, e - 1)
                        )  # fmt: skip  # ("SELECT n" counts the DataRows it sent)
                        if self._running:  # an Execute with a row limit is under way
                            rows = self._runs.completed(ctx, rows, returned)
                        elif rows is None and returned:  # statement_rows, inlined
                            rows = returned
                        self._finish(ctx, rows)
                elif kind == QUERY:
                    self._query_rows = (
                        returned if returned and _tag_is(buf, i + 5, _SELECT_TAG)
                        else _statement_rows(command_rows(buf, i + 5, e - 1), returned)
                    )  # fmt: skip
                returned = 0
                if self.pooled and not _plain_tag(buf, i + 5):
                    self._command_tag(buf, i + 5, e - 1)
                if self.capture is not None:
                    self._rolled_back = buf.startswith(b"ROLLBACK", i + 5)
            elif t == 90:  # ReadyForQuery
                if self.before_ready:  # the proxy's own messages go first
                    if pieces is None:
                        pieces = []
                    pieces.append(buf[seg:i])
                    pieces.append(self.before_ready)
                    seg = i
                    self.before_ready = b""
                if kind == SYNC or kind == FUNCTION:
                    pending.popleft()
                elif kind == QUERY:
                    pending.popleft()
                    ctx = head[1]  # type: ignore[index]
                    if ctx is not None:
                        self._finish(ctx, self._query_rows)
                    self._query_rows = None
                elif kind != -1:
                    raise TrackingLost(f"ReadyForQuery while waiting for entry kind {kind}")
                status = buf[i + 5]
                if self._suspended and status != _IN_TRANSACTION:  # portals are gone
                    self._runs.end_all(self._finish)
                if status != self.status and self.capture is not None:
                    self._transaction(status)
                self.status = status
                returned = 0
            elif t == 84:  # RowDescription: a Describe's answer, or a Query's results
                if kind == DESCRIBE:
                    pending.popleft()
            elif t == 50:  # BindComplete
                if kind != BIND:
                    raise TrackingLost(f"BindComplete while waiting for entry kind {kind}")
                pending.popleft()
            elif t == 49:  # ParseComplete
                if kind == SWALLOW:
                    pending.popleft()
                    if pieces is None:
                        pieces = []
                    pieces.append(buf[seg:i])
                    seg = e
                elif kind == PARSE:
                    pending.popleft()
                else:
                    raise TrackingLost(f"ParseComplete while waiting for entry kind {kind}")
            elif t == 69:  # ErrorResponse
                self._error(buf, i + 5, e, kind)
                returned = 0
                replies = self._replies  # (what it skipped)
            elif t == 110:  # NoData
                if kind != DESCRIBE:
                    raise TrackingLost(f"NoData while waiting for entry kind {kind}")
                pending.popleft()
            elif t == 51:  # CloseComplete
                if kind != CLOSE:
                    raise TrackingLost(f"CloseComplete while waiting for entry kind {kind}")
                pending.popleft()
            elif t == 115:  # PortalSuspended: the Execute's row limit was reached
                if kind == EXECUTE:
                    pending.popleft()
                    ctx = head[1]  # type: ignore[index]
                    if ctx is not None:
                        self._runs.suspend(ctx, returned, self._finish)
                returned = 0
            elif t == 73:  # EmptyQueryResponse
                if kind == EXECUTE:
                    pending.popleft()
                    ctx = head[1]  # type: ignore[index]
                    if ctx is not None:
                        self._finish(ctx, self._runs.completed(ctx, None, 0))
            elif t == 83:  # ParameterStatus
                self._parameter(buf, i + 5, e)
            elif t == 75:  # BackendKeyData
                self.key = (_unpack_int32(buf, i + 5)[0], bytes(buf[i + 9 : e]))
            elif t == 116 and kind == DESCRIBE and head[1] is not None:  # type: ignore[index]
                # ParameterDescription of a statement's Describe, which --capture asked for
                head[1][:] = parameter_types(buf, i + 5, e)  # type: ignore[index]
            i = e
            if replies and pending and pending[0][0] == REPLY:  # the proxy's own come next
                if pieces is None:
                    pieces = []
                pieces.append(buf[seg:i])
                seg = i
                while pending and pending[0][0] == REPLY:
                    pieces.append(pending.popleft()[1])
                    replies -= 1
                self._replies = replies
        self._returned = returned
        if i < n:
            self._buffer = buf[i:]
        elif self._buffer:
            self._buffer = b""
        if pieces is None:
            if i == n:
                return buf
            return buf[:i] if self.pooled else b""  # session mode forwards before it reads
        pieces.append(buf[seg:i])
        return b"".join(pieces)

    def _answered(self, buf: bytes, plain: tuple[Any, int, int, int]) -> bool:
        """`answers` for ``buf``, a whole answer to all that `pending` holds (``plain``:
        `plain_answer`'s reading of it), unless a portal is suspended or limited (False:
        nothing done, `answers` reads it message by message): the statement ends with its
        rows, its tag is judged, the transaction status kept; True."""
        if self._running or self._suspended:
            return False
        ctx, returned, tag, tag_end = plain
        self._drop()
        select = _tag_is(buf, tag, _SELECT_TAG)
        if ctx is not None:  # ("SELECT n" counts the DataRows it sent)
            returned += self._returned
            self._finish(
                ctx,
                returned if returned and select
                else _statement_rows(command_rows(buf, tag, tag_end), returned),
            )  # fmt: skip
        if self.pooled and not select and not _plain_tag(buf, tag):
            self._command_tag(buf, tag, tag_end)
        self._query_rows = None
        self._returned = 0
        self.status = buf[-1]
        return True

    def _error(self, buf: bytes, start: int, end: int, kind: int) -> None:
        pending = self.pending
        self.last_sqlstate = error_fields(buf, start, end)[0]
        if kind == -1:
            return  # not an answer to anything (the server ending the session)
        if kind == QUERY or kind == FUNCTION:
            ctx = pending[0][1]
            if ctx is not None:
                self._fail(ctx, *error_fields(buf, start, end))
                pending[0] = (kind, None)
            return
        # extended protocol: everything up to the Sync is skipped, the first statement
        # among it carries the error
        failed = False
        while pending and pending[0][0] != SYNC:
            entry_kind, payload = pending.popleft()
            if entry_kind == EXECUTE and payload is not None:
                self._runs.forget(payload)
                if not failed:
                    self._fail(payload, *error_fields(buf, start, end))
                    failed = True
                else:
                    self._skip(payload)
            elif entry_kind == SWALLOW and self.forget is not None:
                self.forget(payload)
            elif entry_kind == PARSE and payload is not None and self.forget is not None:
                self.forget(payload)
            elif entry_kind == REPLY:
                self._replies -= 1
        if not pending:
            self.discarding = True  # what the client sends before its Sync is skipped too

    def _command_tag(self, buf: bytes, start: int, end: int) -> None:
        """Pooled mode: tags that leave state in the server session."""
        space = start  # (the tag's first word, found byte by byte: C when compiled)
        while space < end and buf[space] != 32:
            space += 1
        if space - start == 5 and _tag_is(buf, start, b"BEGIN"):
            return  # (every explicit transaction's first: nothing to keep)
        first = _hot.sliced(buf, start, space)
        if first in _FULL_RESET_TAGS:
            self.dirty = self.full_reset = True
            if buf[start:end] in _CLEARING_TAGS:
                self.cleared = True
        elif first in _DIRTY_TAGS:
            self.dirty = True
        if first in _DDL_TAGS:
            self.ddl_seen = True
            if first != b"CREATE":  # (what exists can change under prepared statements)
                self.ddl_count += 1
        elif first == b"ROLLBACK" and self.ddl_seen:  # (what was created may be gone again)
            self.ddl_count += 1
        elif first == b"LISTEN" or first == b"UNLISTEN":
            self.listen_tags += 1
        elif first == b"ROLLBACK" or first == b"COMMIT":
            self.rolled_back = first == b"ROLLBACK"

    def committed_listens(self) -> list[ListenOp]:
        """The (UN)LISTENs the transaction that just ended committed, in order; forgets
        them. Empty when it failed or was rolled back."""
        listens, rolled_back = self.listens, self.rolled_back
        self.rolled_back = False
        if not listens:
            return []
        done = listens[: self.listen_tags]
        self.listens = []
        self.listen_tags = 0
        if rolled_back or self.last_sqlstate is not None:
            return []
        return done

    def _parameter(self, buf: bytes, start: int, end: int) -> None:
        name, i = cstring(buf, start, end)
        value, _ = cstring(buf, i, end)
        if name == "application_name":
            self.application_name = value
            facts = self._facts  # (statements begun before keep the name they ran with)
            self._facts = SessionFacts(facts.database, facts.user, value, facts.client_addr)
        if self.pending:  # a SET during a relayed request, not the login's report
            self.dirty = True
        if self.on_parameter is not None:
            self.on_parameter(name, value)

    # -- observation ---------------------------------------------------------------------
    def cached(self, sql: str, answer: bytes, at: float) -> None:
        """A statement the proxy answered from its result cache (``answer``: the messages
        sent, since ``at``) is observed as any other: in the statistics, metrics, capture and
        logs, with the rows its answer holds."""
        ctx = self._open(sql, at)
        if ctx is None:
            return
        returned = 0
        tag_rows = None
        i, end = 0, len(answer)
        while i + 5 <= end:
            t = answer[i]
            e = i + 1 + _unpack_int32(answer, i + 1)[0]
            if t == 68:  # DataRow
                returned += 1
            elif t == 67:  # CommandComplete
                tag_rows = command_rows(answer, i + 5, e - 1)
            i = e
        self._finish(ctx, _statement_rows(tag_rows, returned))

    def _open(
        self, sql: str | None, at: float | None, encoded: bytes | None = None,
        lean: bool = True, key: bytes | None = None, commented: int = -1,
    ) -> Any:
        """The statement ``sql`` begins (``encoded``: the bytes it was decoded from, ``key``:
        those with their digits zeroed, and ``commented``: whether they have a /* comment (-1:
        not known), when the caller has them already; ``sql`` None: not decoded yet, a Query's
        ``encoded``): its
        `QueryContext`, or on the recorder's lean path (``lean``: it may take it) a
        `LeanStart` tuple, which `_finish` hands to `Recorder.ended` (its event is made when
        the recorder folds its batch). That path is for statements no one needs at once:
        no sqlcommenter comment, no sample or log step of the pipeline, no capture. A Query
        known by its shape is held with its text undecoded (`LeanStart`: decoded if its full
        event is ever made), a decode and a string fewer per statement."""
        if (
            _lean_ending.cutoff >= 0.0  # (`recorder.lean`, read in C: -1 while it is closed)
            and lean and self.observation is UNOBSERVED and self.capture is None
            and at is not None
        ):  # fmt: skip
            if encoded is not None:  # a Query's text: mostly known by its shape
                if commented < 0:
                    commented = _hot.commented(encoded, 0, len(encoded))
                if not commented:
                    info = _shapes.shaped(POSTGRES_SHAPES, SHAPE_HITS, encoded, key)
                    if info is not None:
                        return (
                            sql if sql is not None else encoded,
                            SYSTEM, SOURCE, info, self._facts, None, False, at,
                        )  # fmt: skip
                    if sql is None:
                        sql = encoded.decode("utf-8", "replace")
                    info = recorder.analysis(sql, SYSTEM)
                    return (sql, SYSTEM, SOURCE, info, self._facts, None, False, at)
            else:  # an Execute's: a prepared statement's text, run again and again
                # (kept only for texts without a /* comment: a hit says it has none)
                info = self._analyses.get(sql)
                if info is None and commented <= 0 and "/*" not in sql:
                    info = recorder.analysis(sql, SYSTEM)
                    if len(self._analyses) >= _ANALYSES_MAX:
                        self._analyses.clear()
                    self._analyses[sql] = info
                if info is not None:
                    return (sql, SYSTEM, SOURCE, info, self._facts, None, False, at)
                commented = 1
        if not recorder.active:
            return None
        if sql is None:
            sql = encoded.decode("utf-8", "replace") if encoded is not None else ""
        if commented < 0:
            commented = (
                _hot.commented(encoded, 0, len(encoded)) if encoded is not None else "/*" in sql
            )
        token = comment = info = None
        if commented:  # the sender's request and trace, from a sqlcommenter comment
            sql, comment = split_comment(sql)
            parent = remote_parent(comment) if comment is not None else None
            if parent is not None:
                token = otel_context.attach(parent)
        elif encoded is not None:  # a text inlining its values: known by its shape, mostly
            info = _shapes.shaped(POSTGRES_SHAPES, SHAPE_HITS, encoded, key)
        observation = self.observation
        if observation is not UNOBSERVED:
            self.observation = UNOBSERVED
        try:
            ctx = recorder.start(
                sql, SYSTEM, SOURCE, database=self.database, user=self.user,
                sampled=observation.sampled, comment=comment, info=info,
            )
        finally:
            if token is not None:
                otel_context.detach(token)
        if observation.logs:
            self._logs[id(ctx)] = observation.logs
        if at is not None:  # from the first message of its request cycle, not from now
            ctx.started_at -= ctx.started - at
            ctx.started = at
        ctx.application_name = self.application_name
        ctx.client_addr = self.client_addr
        return ctx

    def _finish(self, ctx: Any, rows: int | None) -> None:
        if type(ctx) is tuple:  # on the lean path (`_open`): nothing else to do
            _lean_ending.ended(ctx, rows)  # (`recorder.ended`, reached in C)
        elif ctx is not None:
            recorder.finish(ctx, rows)
            if self.capture is not None:
                self._captured(ctx, rows, None)
            if self._logs:
                self._log(ctx)

    def _fail(self, ctx: Any, sqlstate: str | None, message: str) -> None:
        if type(ctx) is tuple:
            ctx = recorder.begun_context(ctx)
        recorder.fail(ctx, ServerError(sqlstate, message))
        if self.capture is not None:
            self._captured(ctx, None, sqlstate)
        if self._logs:
            self._log(ctx)

    def _log(self, ctx: Any) -> None:
        """The pipeline's log steps this statement reached: one record on each."""
        logs = self._logs.pop(id(ctx), None)
        if not logs:
            return
        fields = event_fields(ctx, recorder.settings.include_query_bodies)
        fields.update(
            user=self.user, application_name=self.application_name, client=self.client_addr
        )
        for log in logs:
            log.logger.log(
                log.level, "statement %s %s %.3f ms", ctx.operation, ctx.outcome,
                ctx.duration_s * 1000.0, extra=fields,
            )  # fmt: skip

    def _captured(self, ctx: Any, rows: int | None, sqlstate: str | None) -> None:
        assert self.capture is not None
        self.capture.statement(
            self.session_id,
            started_at=ctx.started_at,
            duration_s=ctx.duration_s,
            normalized=ctx.normalized,
            fingerprint=ctx.fingerprint,
            params=self._statement_params.pop(id(ctx), None),
            sql=ctx.sql,
            rows=rows,
            sqlstate=sqlstate,
            in_transaction=self.status != _IDLE,
            route=ctx.route,
            request_id=ctx.request_id,
            trace_id=ctx.trace_id,
            span_id=ctx.span_id,
        )

    def _transaction(self, status: int) -> None:
        """A ReadyForQuery changed the transaction status: a boundary for the capture."""
        assert self.capture is not None
        event: Literal["begin", "commit", "rollback"]
        if self.status == _IDLE:
            event = "begin"
        elif status == _IDLE:
            failed = self.status == _FAILED or self._rolled_back
            event = "rollback" if failed else "commit"
        else:
            return  # in a transaction -> failed: its end says how it ended
        self.capture.transaction(self.session_id, event, _time())

    def _skip(self, ctx: Any) -> None:
        """A statement the server skipped after an earlier error in its pipeline."""
        if type(ctx) is tuple:
            ctx = recorder.begun_context(ctx)
        recorder.fail(ctx, ServerError("25P02", "skipped: an earlier message of its pipeline failed"))
        if self._logs:
            self._log(ctx)

    def restart(self, why: str) -> None:
        """The server went away before answering anything of what is pending: it is all to
        be asked again elsewhere; the statements count as failed here (08006, ``why``)."""
        pending = list(self.pending)
        self._drop()
        self._replies = 0
        self._runs.clear(self._finish)  # what suspended portals returned reached the client
        for kind, payload in pending:
            if kind in _STATEMENT_KINDS and payload is not None:
                if type(payload) is tuple:
                    payload = recorder.begun_context(payload)
                recorder.fail(payload, ServerError("08006", why))
        self._logs.clear()  # logged when they have run again
        self.discarding = self.unsynced = self.wrote = False
        self._buffer = b""
        self._cycle_start = None
        self._query_rows = None
        self._rows = 0
        self._returned = 0

    def abandon(self) -> None:
        """The session ended: statements unanswered failed (the client left mid-statement),
        suspended portals end with what they returned."""
        self._runs.clear(self._finish)
        pending = list(self.pending)
        self._drop()
        self._replies = 0
        for kind, payload in pending:
            if kind in _STATEMENT_KINDS and payload is not None:
                if type(payload) is tuple:
                    payload = recorder.begun_context(payload)
                recorder.fail(
                    payload, ServerError("57014", "client disconnected; statement cancelled")
                )
                if self._logs:
                    self._log(payload)


# Command tags after which a pooled server connection needs a reset before another client.
# (UNLISTEN and CLOSE leave nothing behind, but in session mode they may end what pinned a
# session to its connection: the proxy looks again.)
_DIRTY_TAGS = frozenset((
    b"SET", b"RESET", b"LISTEN", b"DECLARE", b"CREATE", b"LOAD", b"DO", b"CALL", b"ALTER",
    b"UNLISTEN", b"CLOSE",
))
_FULL_RESET_TAGS = frozenset((b"PREPARE", b"DEALLOCATE", b"DISCARD"))
_CLEARING_TAGS = frozenset((b"DEALLOCATE ALL", b"DISCARD ALL"))
_DDL_TAGS = frozenset((b"CREATE", b"ALTER", b"DROP"))
# Tags `_command_tag` has nothing to do with (most statements: not looked at further)
_SELECT_TAG = b"SELECT "


def _tag_is(buf: bytes, at: int, word: bytes) -> bool:
    """Whether the command tag at ``buf[at]`` starts with ``word``: compared byte by byte,
    which compiled is C (`bytes.startswith` is a method call)."""
    n = len(word)
    if at + n > len(buf):
        return False
    for k in range(n):
        if buf[at + k] != word[k]:
            return False
    return True


_PLAIN_TAGS = (
    b"SELECT ", b"INSERT ", b"UPDATE ", b"DELETE ", b"FETCH ", b"MOVE ", b"COPY ", b"MERGE ",
)


def _plain_tag(buf: bytes, at: int) -> bool:
    """Whether the command tag at ``buf[at]`` starts with one of `_PLAIN_TAGS`: its first
    byte names the one or two it may be, then compared by `_tag_is` (``bytes.startswith``
    of the tuple is a method call and up to eight compares, for every statement)."""
    if at >= len(buf):
        return False
    first = buf[at]
    if first == 83:  # S
        return _tag_is(buf, at, b"SELECT ")
    if first == 85:  # U
        return _tag_is(buf, at, b"UPDATE ")
    if first == 73:  # I
        return _tag_is(buf, at, b"INSERT ")
    if first == 68:  # D
        return _tag_is(buf, at, b"DELETE ")
    if first == 70:  # F
        return _tag_is(buf, at, b"FETCH ")
    if first == 77:  # M
        return _tag_is(buf, at, b"MOVE ") or _tag_is(buf, at, b"MERGE ")
    if first == 67:  # C
        return _tag_is(buf, at, b"COPY ")
    return False
