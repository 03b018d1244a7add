"""What a session is doing, followed from the messages relayed each way (h11's ``_connection``).

The server answers requests strictly in order, so the state keeps a queue of the requests that
still await an answer. Every CommandComplete, EmptyQueryResponse, PortalSuspended or
ErrorResponse is matched to the request it answers and returned as a ``Completion``; that is
what the observation layer times (``started_at`` to ``finished_at``, both clock values the
caller passes in: the state never reads a clock or a socket).

Rules of protocol 3.0 it encodes:

- A simple Query may hold several statements: one completion per CommandComplete, all with the
  same request; ReadyForQuery ends it.
- Extended protocol: Parse/Bind/Describe/Execute/Close are answered one by one, Sync by
  ReadyForQuery. After an ErrorResponse to one of them the server discards every message up
  to the next Sync: those requests are dropped from the queue (``Completion.skipped``).
- Prepared statements and portals are recorded when the server confirms them (ParseComplete,
  BindComplete), forgotten on CloseComplete; an Execute sent before its Parse was confirmed
  still finds its text among the pending requests. Portals end with the transaction.
- The transaction status is the server's own (ReadyForQuery), never guessed from SQL text.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _messages as m
from ._errors import SessionStateError


class RequestKind(enum.Enum):
    QUERY = "Query"
    PARSE = "Parse"
    BIND = "Bind"
    DESCRIBE = "Describe"
    EXECUTE = "Execute"
    CLOSE = "Close"
    SYNC = "Sync"
    FUNCTION_CALL = "FunctionCall"


_EXTENDED = frozenset(
    {
        RequestKind.PARSE,
        RequestKind.BIND,
        RequestKind.DESCRIBE,
        RequestKind.EXECUTE,
        RequestKind.CLOSE,
    }
)
# Requests whose cycle the server closes with ReadyForQuery.
_ENDED_BY_READY = frozenset({RequestKind.QUERY, RequestKind.SYNC, RequestKind.FUNCTION_CALL})


class CopyMode(enum.Enum):
    NONE = "none"
    IN = "in"  # COPY FROM STDIN: the client sends CopyData
    OUT = "out"  # COPY TO STDOUT: the server sends CopyData
    BOTH = "both"  # replication


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """A frontend request the server has not answered yet.

    ``query`` is the SQL text it concerns when known (a Query's text; for Bind/Describe/Execute
    the text of the statement or portal named). ``name`` is the statement or portal name.
    ``started_at`` is the caller's clock at the request's first message (for an Execute, the
    first Parse/Bind/Describe sent since the previous Execute, Sync or Query).
    """

    kind: RequestKind
    query: str | None = None
    name: str | None = None
    describe_kind: m.DescribeKind | None = None
    started_at: float | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """The answer to one statement: a CommandComplete, empty query, suspension or error."""

    request: PendingRequest
    tag: str | None = None
    rows: int | None = None
    error: m.ErrorResponse | None = None
    empty: bool = False
    suspended: bool = False
    finished_at: float | None = None
    skipped: tuple[PendingRequest, ...] = ()  # discarded by the server after this error

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def duration(self) -> float | None:
        if self.finished_at is None or self.request.started_at is None:
            return None
        return self.finished_at - self.request.started_at


class SessionState:
    """Follows one client session; feed it every message relayed, in order, each way.

    ``client_message`` for what the client sends, ``server_message`` for what the server sends
    (messages of skipped types, such as DataRow and CopyData, may be left out). A server
    message that cannot answer anything pending raises ``SessionStateError``.
    """

    def __init__(self) -> None:
        self.transaction_status: m.TransactionStatus | None = None
        self.copy_mode = CopyMode.NONE
        self.authenticated = False
        self.terminated = False
        self.startup_parameters: dict[str, str] = {}
        self.server_parameters: dict[str, str] = {}
        self.backend_pid: int | None = None
        self.backend_secret_key: bytes | None = None
        self._pending: deque[PendingRequest] = deque()
        self._statements: dict[str, str] = {}
        self._portals: dict[str, str | None] = {}
        self._unsynced = False
        self._discarding = False  # after an extended-protocol error, until a Sync is sent
        self._group_start: float | None = None

    # ------------------------------------------------------------------ what callers read

    @property
    def pending(self) -> tuple[PendingRequest, ...]:
        """Requests sent and not answered yet, oldest first."""
        return tuple(self._pending)

    @property
    def statements(self) -> dict[str, str]:
        """Prepared statements the server confirmed: name (``""``: unnamed) -> query text."""
        return dict(self._statements)

    @property
    def portals(self) -> dict[str, str | None]:
        """Portals the server confirmed: name -> query text of their statement."""
        return dict(self._portals)

    @property
    def in_pipeline(self) -> bool:
        """Extended-protocol messages were sent since the last Sync."""
        return self._unsynced

    @property
    def at_rest(self) -> bool:
        """Idle, outside any transaction, nothing in flight: the server may be handed over."""
        return (
            self.transaction_status is m.TransactionStatus.IDLE
            and not self._pending
            and not self._unsynced
            and self.copy_mode is CopyMode.NONE
        )

    def statement_text(self, name: str) -> str | None:
        """Text of prepared statement ``name``, including one whose Parse is still in flight."""
        for request in reversed(self._pending):
            if request.kind is RequestKind.PARSE and request.name == name:
                return request.query
        return self._statements.get(name)

    def portal_text(self, name: str) -> str | None:
        """Text behind portal ``name``, including one whose Bind is still in flight."""
        for request in reversed(self._pending):
            if request.kind is RequestKind.BIND and request.name == name:
                return request.query
        return self._portals.get(name)

    # ------------------------------------------------------------------ client -> server

    def client_message(self, message: m.FrontendMessage, at: float | None = None) -> None:
        kind = type(message)
        if kind is m.CopyData or kind is m.Flush:
            return  # a Flush asks for output; it opens no request (psycopg sends one after Sync)
        if kind is m.Sync:
            self._pending.append(PendingRequest(RequestKind.SYNC, started_at=at))
            self._unsynced = self._discarding = False
            self._group_start = None
            return
        if kind in _EXTENDED_CLASSES:
            self._unsynced = True
            if self._discarding:
                return  # the server drops it: it is skipping to the next Sync
            self._extended(message, at)
            return
        if self._discarding and kind in (m.Query, m.FunctionCall):
            return
        if kind is m.Query:
            self._statements.pop("", None)  # a simple Query replaces the unnamed statement/portal
            self._portals.pop("", None)
            self._pending.append(PendingRequest(RequestKind.QUERY, message.query, started_at=at))  # type: ignore[union-attr]
        elif kind is m.CopyDone or kind is m.CopyFail:
            if self.copy_mode is CopyMode.IN or self.copy_mode is CopyMode.BOTH:
                self.copy_mode = CopyMode.NONE
        elif kind is m.FunctionCall:
            self._pending.append(PendingRequest(RequestKind.FUNCTION_CALL, started_at=at))
        elif kind is m.StartupMessage:
            self.startup_parameters = dict(message.parameters)  # type: ignore[union-attr]
        elif kind is m.Terminate:
            self.terminated = True

    def _extended(self, message: m.FrontendMessage, at: float | None) -> None:
        if type(message) is m.Flush:
            return
        if self._group_start is None:
            self._group_start = at
        if isinstance(message, m.Execute):
            request = PendingRequest(
                RequestKind.EXECUTE,
                self.portal_text(message.portal),
                message.portal,
                started_at=self._group_start,
            )
            self._group_start = None
        elif isinstance(message, m.Parse):
            request = PendingRequest(RequestKind.PARSE, message.query, message.name, started_at=at)
        elif isinstance(message, m.Bind):
            text = self.statement_text(message.statement)
            request = PendingRequest(RequestKind.BIND, text, message.portal, started_at=at)
        elif isinstance(message, m.Describe):
            text = (
                self.statement_text(message.name)
                if message.kind == "S"
                else self.portal_text(message.name)
            )
            request = PendingRequest(RequestKind.DESCRIBE, text, message.name, message.kind, at)
        elif isinstance(message, m.Close):
            request = PendingRequest(RequestKind.CLOSE, None, message.name, message.kind, at)
        else:
            return
        self._pending.append(request)

    # ------------------------------------------------------------------ server -> client

    def server_message(
        self, message: m.BackendMessage, at: float | None = None
    ) -> Completion | None:
        """Update the state; return the completion this message is, if it is one."""
        handler = _SERVER_HANDLERS.get(type(message))
        if handler is None:
            return None
        return handler(self, message, at)

    def _head(self, what: str) -> PendingRequest:
        if not self._pending:
            raise SessionStateError(f"server sent {what} with no request pending")
        return self._pending[0]

    def _pop(self, kind: RequestKind, what: str) -> PendingRequest:
        head = self._head(what)
        if head.kind is not kind:
            raise SessionStateError(
                f"server sent {what} but the oldest pending request is {head.kind.value}"
            )
        return self._pending.popleft()

    def _ready(self, message: m.ReadyForQuery, at: float | None) -> None:
        if self._pending:
            head = self._pending[0]
            if head.kind not in _ENDED_BY_READY:
                raise SessionStateError(
                    f"server sent ReadyForQuery while {head.kind.value} awaits its answer"
                )
            self._pending.popleft()
        self.transaction_status = message.status
        self.copy_mode = CopyMode.NONE
        if message.status is m.TransactionStatus.IDLE:
            self._portals.clear()  # portals do not outlive their transaction

    def _parse_complete(self, message: m.ParseComplete, at: float | None) -> None:
        request = self._pop(RequestKind.PARSE, "ParseComplete")
        self._statements[request.name or ""] = request.query or ""

    def _bind_complete(self, message: m.BindComplete, at: float | None) -> None:
        request = self._pop(RequestKind.BIND, "BindComplete")
        self._portals[request.name or ""] = request.query

    def _close_complete(self, message: m.CloseComplete, at: float | None) -> None:
        request = self._pop(RequestKind.CLOSE, "CloseComplete")
        names = self._statements if request.describe_kind == "S" else self._portals
        names.pop(request.name or "", None)

    def _parameter_description(self, message: m.ParameterDescription, at: float | None) -> None:
        head = self._head("ParameterDescription")
        if head.kind is not RequestKind.DESCRIBE:
            raise SessionStateError(
                f"server sent ParameterDescription while {head.kind.value} is pending"
            )

    def _description(self, message: m.RowDescription | m.NoData, at: float | None) -> None:
        what = type(message).__name__
        head = self._head(what)
        if head.kind is RequestKind.DESCRIBE:
            self._pending.popleft()
        elif not (head.kind is RequestKind.QUERY and type(message) is m.RowDescription):
            raise SessionStateError(f"server sent {what} while {head.kind.value} is pending")

    def _statement_done(self, what: str, at: float | None) -> PendingRequest:
        head = self._head(what)
        if head.kind is RequestKind.EXECUTE:
            return self._pending.popleft()
        if head.kind is RequestKind.QUERY:
            return head  # a simple Query ends at ReadyForQuery, after all its statements
        raise SessionStateError(f"server sent {what} while {head.kind.value} is pending")

    def _command_complete(self, message: m.CommandComplete, at: float | None) -> Completion:
        request = self._statement_done("CommandComplete", at)
        self.copy_mode = CopyMode.NONE
        if message.tag in _FORGET_STATEMENTS_TAGS:
            self._statements.clear()
            self._portals.clear()
        return Completion(request, message.tag, message.rows, finished_at=at)

    def _empty_query(self, message: m.EmptyQueryResponse, at: float | None) -> Completion:
        return Completion(
            self._statement_done("EmptyQueryResponse", at), empty=True, finished_at=at
        )

    def _portal_suspended(self, message: m.PortalSuspended, at: float | None) -> Completion:
        request = self._pop(RequestKind.EXECUTE, "PortalSuspended")
        return Completion(request, suspended=True, finished_at=at)

    def _error(self, message: m.ErrorResponse, at: float | None) -> Completion | None:
        self.copy_mode = CopyMode.NONE
        if not self._pending:
            return None  # a session-level error: authentication failed, server shutting down
        head = self._pending[0]
        if head.kind not in _EXTENDED:
            return Completion(head, error=message, finished_at=at)  # ReadyForQuery follows
        self._pending.popleft()
        skipped = []
        while self._pending and self._pending[0].kind is not RequestKind.SYNC:
            skipped.append(self._pending.popleft())
        if not self._pending:
            self._discarding = True  # whatever the client sends before its Sync is dropped too
        return Completion(head, error=message, finished_at=at, skipped=tuple(skipped))

    def _copy_response(
        self, message: m.CopyInResponse | m.CopyOutResponse | m.CopyBothResponse, at: float | None
    ) -> None:
        what = type(message).__name__
        head = self._head(what)
        if head.kind is not RequestKind.EXECUTE and head.kind is not RequestKind.QUERY:
            raise SessionStateError(f"server sent {what} while {head.kind.value} is pending")
        self.copy_mode = _COPY_MODES[type(message)]

    def _copy_done(self, message: m.CopyDone, at: float | None) -> None:
        if self.copy_mode is CopyMode.OUT:
            self.copy_mode = CopyMode.NONE

    def _function_result(self, message: m.FunctionCallResponse, at: float | None) -> Completion:
        head = self._head("FunctionCallResponse")
        if head.kind is not RequestKind.FUNCTION_CALL:
            raise SessionStateError(
                f"server sent FunctionCallResponse while {head.kind.value} is pending"
            )
        return Completion(head, finished_at=at)

    def _authentication_ok(self, message: m.AuthenticationOk, at: float | None) -> None:
        self.authenticated = True

    def _parameter_status(self, message: m.ParameterStatus, at: float | None) -> None:
        self.server_parameters[message.name] = message.value

    def _backend_key(self, message: m.BackendKeyData, at: float | None) -> None:
        self.backend_pid = message.pid
        self.backend_secret_key = message.secret_key


# Commands that drop every prepared statement, the protocol-level ones included.
_FORGET_STATEMENTS_TAGS = frozenset({"DISCARD ALL", "DEALLOCATE ALL"})

_EXTENDED_CLASSES = frozenset({m.Parse, m.Bind, m.Describe, m.Execute, m.Close, m.Flush})

_COPY_MODES = {
    m.CopyInResponse: CopyMode.IN,
    m.CopyOutResponse: CopyMode.OUT,
    m.CopyBothResponse: CopyMode.BOTH,
}

_SERVER_HANDLERS: dict[type, Callable[[SessionState, Any, float | None], Completion | None]] = {
    m.ReadyForQuery: SessionState._ready,
    m.ParseComplete: SessionState._parse_complete,
    m.BindComplete: SessionState._bind_complete,
    m.CloseComplete: SessionState._close_complete,
    m.ParameterDescription: SessionState._parameter_description,
    m.RowDescription: SessionState._description,
    m.NoData: SessionState._description,
    m.CommandComplete: SessionState._command_complete,
    m.EmptyQueryResponse: SessionState._empty_query,
    m.PortalSuspended: SessionState._portal_suspended,
    m.ErrorResponse: SessionState._error,
    m.CopyInResponse: SessionState._copy_response,
    m.CopyOutResponse: SessionState._copy_response,
    m.CopyBothResponse: SessionState._copy_response,
    m.CopyDone: SessionState._copy_done,
    m.FunctionCallResponse: SessionState._function_result,
    m.AuthenticationOk: SessionState._authentication_ok,
    m.ParameterStatus: SessionState._parameter_status,
    m.BackendKeyData: SessionState._backend_key,
}
