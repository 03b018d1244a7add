"""SessionState: which answer belongs to which statement, through every query flow."""

from __future__ import annotations

import pytest
from wire_messages import COLUMNS, FAILED, IDLE, IN_TX

from dbsight.proxy.protocol import (
    AuthenticationOk,
    BackendKeyData,
    Bind,
    BindComplete,
    Close,
    CloseComplete,
    CommandComplete,
    Completion,
    CopyData,
    CopyDone,
    CopyFail,
    CopyInResponse,
    CopyMode,
    CopyOutResponse,
    DataRow,
    Describe,
    EmptyQueryResponse,
    ErrorResponse,
    Execute,
    Flush,
    FunctionCall,
    FunctionCallResponse,
    NoData,
    NoticeResponse,
    NotificationResponse,
    ParameterDescription,
    ParameterStatus,
    Parse,
    ParseComplete,
    PortalSuspended,
    Query,
    RequestKind,
    SessionState,
    SessionStateError,
    StartupMessage,
    Sync,
    Terminate,
    TransactionStatus,
)


def error(sqlstate: str = "42601", message: str = "syntax error") -> ErrorResponse:
    return ErrorResponse({"S": "ERROR", "V": "ERROR", "C": sqlstate, "M": message})


class Session:
    """Drives a SessionState like a proxy would, with a fake clock value per message."""

    def __init__(self) -> None:
        self.state = SessionState()
        self.clock = 0.0
        self.client(StartupMessage({"user": "app", "database": "shop", "application_name": "api"}))
        self.server(
            AuthenticationOk(),
            ParameterStatus("server_version", "16.2"),
            BackendKeyData(321, b"\x00\x00\x00\x01"),
            IDLE,
        )

    def client(self, *messages: object) -> None:
        for message in messages:
            self.clock += 1
            self.state.client_message(message, at=self.clock)  # type: ignore[arg-type]

    def server(self, *messages: object) -> list[Completion]:
        completions = []
        for message in messages:
            self.clock += 1
            completion = self.state.server_message(message, at=self.clock)  # type: ignore[arg-type]
            if completion is not None:
                completions.append(completion)
        return completions


def test_startup_is_recorded() -> None:
    s = Session()
    state = s.state
    assert state.authenticated
    assert state.startup_parameters["application_name"] == "api"
    assert state.server_parameters == {"server_version": "16.2"}
    assert (state.backend_pid, state.backend_secret_key) == (321, b"\x00\x00\x00\x01")
    assert state.transaction_status is TransactionStatus.IDLE
    assert state.at_rest and not state.pending
    s.client(Terminate())
    assert state.terminated


def test_simple_query() -> None:
    s = Session()
    s.client(Query("SELECT 1"))  # t=5
    assert not s.state.at_rest
    (done,) = s.server(COLUMNS, DataRow((b"1",)), CommandComplete("SELECT 1"))  # t=8
    assert done.ok and done.request.kind is RequestKind.QUERY
    assert done.request.query == "SELECT 1"
    assert (done.tag, done.rows, done.duration) == ("SELECT 1", 1, 3.0)
    assert s.state.pending  # the Query ends at ReadyForQuery
    assert s.server(IDLE) == []
    assert s.state.at_rest


def test_several_statements_in_one_query_and_the_transaction_status() -> None:
    s = Session()
    s.client(Query("BEGIN; INSERT INTO t VALUES (1); UPDATE t SET n = 2"))
    done = s.server(
        CommandComplete("BEGIN"), CommandComplete("INSERT 0 1"), CommandComplete("UPDATE 1"), IN_TX
    )
    assert [(c.tag, c.rows) for c in done] == [("BEGIN", None), ("INSERT 0 1", 1), ("UPDATE 1", 1)]
    assert s.state.transaction_status is TransactionStatus.IN_TRANSACTION
    assert not s.state.at_rest  # inside a transaction: the server cannot be handed over
    s.client(Query("SELEC"))
    (failed,) = s.server(error(), FAILED)
    assert failed.error is not None and failed.error.sqlstate == "42601" and not failed.ok
    assert s.state.transaction_status is TransactionStatus.FAILED
    s.client(Query("ROLLBACK"))
    s.server(CommandComplete("ROLLBACK"), IDLE)
    assert s.state.at_rest


def test_empty_query() -> None:
    s = Session()
    s.client(Query(""))
    (done,) = s.server(EmptyQueryResponse(), IDLE)
    assert done.empty and done.tag is None and done.ok


def test_extended_protocol_pipeline_matches_each_answer_to_its_execute() -> None:
    s = Session()
    s.client(
        Parse("", "SELECT $1::int", (23,)),  # t=6: first message of the first statement
        Bind("", "", (), (b"1",), ()),
        Describe("P", ""),
        Execute("", 0),
        Parse("ins", "INSERT INTO t VALUES ($1)", ()),  # t=10
        Bind("", "ins", (), (b"2",), ()),
        Execute("", 0),
        Sync(),
    )
    assert s.state.in_pipeline is False  # Sync sent: the pipeline is closed, answers pending
    assert [r.kind for r in s.state.pending] == [
        RequestKind.PARSE, RequestKind.BIND, RequestKind.DESCRIBE, RequestKind.EXECUTE,
        RequestKind.PARSE, RequestKind.BIND, RequestKind.EXECUTE, RequestKind.SYNC,
    ]  # fmt: skip
    first, second = [r for r in s.state.pending if r.kind is RequestKind.EXECUTE]
    assert (first.query, first.started_at) == ("SELECT $1::int", 6.0)
    assert (second.query, second.started_at) == ("INSERT INTO t VALUES ($1)", 10.0)
    done = s.server(
        ParseComplete(), BindComplete(), COLUMNS, DataRow((b"1",)), CommandComplete("SELECT 1"),
        ParseComplete(), BindComplete(), CommandComplete("INSERT 0 1"),
    )  # fmt: skip
    assert [(c.request.query, c.tag, c.rows) for c in done] == [
        ("SELECT $1::int", "SELECT 1", 1),
        ("INSERT INTO t VALUES ($1)", "INSERT 0 1", 1),
    ]
    assert s.state.statements == {"": "SELECT $1::int", "ins": "INSERT INTO t VALUES ($1)"}
    s.server(IDLE)
    assert s.state.at_rest
    assert s.state.portals == {}  # portals end with the transaction


def test_in_pipeline_until_sync() -> None:
    s = Session()
    s.client(Parse("", "SELECT 1"), Bind("", ""), Execute(""), Flush())
    assert s.state.in_pipeline and not s.state.at_rest
    s.server(ParseComplete(), BindComplete(), CommandComplete("SELECT 1"))
    assert s.state.in_pipeline and not s.state.pending
    s.client(Sync())
    assert not s.state.in_pipeline
    s.server(IDLE)
    assert s.state.at_rest


def test_a_flush_after_sync_opens_nothing() -> None:
    s = Session()  # psycopg's pipeline mode sends Flush after Sync
    s.client(Parse("", "SELECT 1"), Bind("", ""), Execute(""), Sync(), Flush())
    s.server(ParseComplete(), BindComplete(), CommandComplete("SELECT 1"), IDLE)
    assert not s.state.in_pipeline and s.state.at_rest


def test_a_prepared_statement_is_found_by_later_binds() -> None:
    s = Session()
    s.client(Parse("by_id", "SELECT * FROM t WHERE id = $1"), Sync())
    s.server(ParseComplete(), IDLE)
    for value in (b"1", b"2"):
        s.client(Bind("", "by_id", (), (value,), ()), Execute(""), Sync())
        (done,) = s.server(BindComplete(), DataRow((value,)), CommandComplete("SELECT 1"), IDLE)
        assert done.request.query == "SELECT * FROM t WHERE id = $1"
    assert s.state.statement_text("by_id") == "SELECT * FROM t WHERE id = $1"
    s.client(Close("S", "by_id"), Sync())
    assert s.server(CloseComplete(), IDLE) == []
    assert s.state.statements == {}


def test_error_mid_pipeline_skips_to_sync() -> None:
    s = Session()
    s.client(
        Parse("", "INSERT INTO t VALUES (1)"), Bind("", ""), Execute(""),
        Parse("", "SELECT 1/0"), Bind("", ""), Execute(""),
        Parse("", "SELECT 3"), Bind("", ""), Execute(""),
        Sync(),
    )  # fmt: skip
    done = s.server(
        ParseComplete(), BindComplete(), CommandComplete("INSERT 0 1"),
        ParseComplete(), BindComplete(), error("22012", "division by zero"),
    )  # fmt: skip
    assert [c.tag for c in done] == ["INSERT 0 1", None]
    failed = done[1]
    assert failed.request.query == "SELECT 1/0" and failed.error.sqlstate == "22012"
    assert [r.kind for r in failed.skipped] == [
        RequestKind.PARSE,
        RequestKind.BIND,
        RequestKind.EXECUTE,
    ]
    assert failed.skipped[2].query == "SELECT 3"
    assert [r.kind for r in s.state.pending] == [RequestKind.SYNC]
    s.server(IDLE)
    assert s.state.at_rest


def test_error_before_the_client_sent_sync_drops_what_follows_until_sync() -> None:
    s = Session()
    s.client(Parse("bad", "SELEC 1"), Bind("", "bad"), Execute(""), Flush())
    (failed,) = s.server(error())
    assert failed.request.kind is RequestKind.PARSE and failed.request.query == "SELEC 1"
    assert [r.kind for r in failed.skipped] == [RequestKind.BIND, RequestKind.EXECUTE]
    assert not s.state.pending
    # The server discards these until the Sync: nothing to wait for but ReadyForQuery.
    s.client(Parse("", "SELECT 2"), Bind("", ""), Execute(""), Query("SELECT 3"), Sync())
    assert [r.kind for r in s.state.pending] == [RequestKind.SYNC]
    s.server(IDLE)
    assert s.state.at_rest and "bad" not in s.state.statements
    # After the Sync, messages count again.
    s.client(Parse("", "SELECT 2"), Bind("", ""), Execute(""), Sync())
    (done,) = s.server(ParseComplete(), BindComplete(), CommandComplete("SELECT 1"), IDLE)
    assert done.request.query == "SELECT 2"


def test_error_at_sync_itself_does_not_start_skipping() -> None:
    s = Session()
    s.client(Query("BEGIN"))
    s.server(CommandComplete("BEGIN"), IN_TX)
    s.client(Parse("", "COMMIT"), Bind("", ""), Execute(""), Sync())
    done = s.server(ParseComplete(), BindComplete(), error("23505", "deferred constraint"), IDLE)
    assert done[0].request.kind is RequestKind.EXECUTE
    s.client(Query("SELECT 1"))
    assert [r.kind for r in s.state.pending] == [RequestKind.QUERY]


def test_portal_suspended_then_resumed() -> None:
    s = Session()
    s.client(Query("BEGIN"))
    s.server(CommandComplete("BEGIN"), IN_TX)
    s.client(Parse("", "SELECT generate_series(1, 3)"), Bind("cur", ""), Execute("cur", 2), Sync())
    (part,) = s.server(
        ParseComplete(),
        BindComplete(),
        DataRow((b"1",)),
        DataRow((b"2",)),
        PortalSuspended(),
        IN_TX,
    )
    assert part.suspended and part.request.query == "SELECT generate_series(1, 3)"
    assert s.state.portals == {
        "cur": "SELECT generate_series(1, 3)"
    }  # kept: still in the transaction
    s.client(Execute("cur", 2), Sync())
    (rest,) = s.server(DataRow((b"3",)), CommandComplete("SELECT 1"), IN_TX)
    assert rest.request.query == "SELECT generate_series(1, 3)" and rest.rows == 1


def test_describe_statement_and_portal() -> None:
    s = Session()
    s.client(
        Parse("q", "SELECT $1::int"),
        Describe("S", "q"),
        Bind("", "q", (), (b"1",), ()),
        Describe("P", ""),
        Sync(),
    )
    describe = s.state.pending[1]
    assert (describe.kind, describe.describe_kind, describe.query) == (
        RequestKind.DESCRIBE,
        "S",
        "SELECT $1::int",
    )
    s.server(ParseComplete(), ParameterDescription((23,)), COLUMNS, BindComplete(), COLUMNS)
    assert [r.kind for r in s.state.pending] == [RequestKind.SYNC]
    s.client(Parse("u", "UPDATE t SET n = 1"), Describe("S", "u"), Sync())
    s.server(IDLE, ParseComplete(), ParameterDescription(()), NoData(), IDLE)
    assert s.state.at_rest


def test_copy_in() -> None:
    s = Session()
    s.client(Query("COPY t FROM STDIN"))
    s.server(CopyInResponse(0, (0,)))
    assert s.state.copy_mode is CopyMode.IN
    s.client(CopyData(b"1\n"), CopyData(b"2\n"), CopyDone())
    assert s.state.copy_mode is CopyMode.NONE
    (done,) = s.server(CommandComplete("COPY 2"), IDLE)
    assert (done.request.query, done.rows) == ("COPY t FROM STDIN", 2)
    assert s.state.at_rest


def test_copy_in_aborted_by_the_client() -> None:
    s = Session()
    s.client(Query("COPY t FROM STDIN"))
    s.server(CopyInResponse(0, (0,)))
    s.client(CopyData(b"1\n"), CopyFail("client gave up"))
    (done,) = s.server(error("57014", "COPY from stdin failed: client gave up"), IDLE)
    assert done.error.sqlstate == "57014"
    assert s.state.at_rest


def test_copy_out_through_the_extended_protocol() -> None:
    s = Session()
    s.client(Parse("", "COPY t TO STDOUT"), Bind("", ""), Execute(""), Sync())
    s.server(ParseComplete(), BindComplete(), CopyOutResponse(0, (0,)))
    assert s.state.copy_mode is CopyMode.OUT
    s.server(CopyData(b"1\n"), CopyData(b"2\n"), CopyDone())
    assert s.state.copy_mode is CopyMode.NONE
    (done,) = s.server(CommandComplete("COPY 2"), IDLE)
    assert (done.request.kind, done.rows) == (RequestKind.EXECUTE, 2)


def test_notifications_and_notices_arrive_at_any_time() -> None:
    s = Session()
    s.client(Query("LISTEN jobs"))
    assert s.server(CommandComplete("LISTEN"), IDLE)[0].tag == "LISTEN"
    assert s.server(NotificationResponse(99, "jobs", "run")) == []
    assert s.state.at_rest
    s.client(Query("SELECT 1"))
    done = s.server(
        NoticeResponse({"S": "NOTICE", "M": "hi"}), NotificationResponse(99, "jobs", "again"),
        COLUMNS, CommandComplete("SELECT 1"), ParameterStatus("TimeZone", "UTC"), IDLE,
    )  # fmt: skip
    assert [c.tag for c in done] == ["SELECT 1"]
    assert s.state.server_parameters["TimeZone"] == "UTC"


def test_function_call() -> None:
    s = Session()
    s.client(FunctionCall(b"..."))
    (done,) = s.server(FunctionCallResponse(b"1"), IDLE)
    assert done.request.kind is RequestKind.FUNCTION_CALL
    assert s.state.at_rest


def test_discard_all_forgets_prepared_statements() -> None:
    s = Session()
    s.client(Parse("a", "SELECT 1"), Sync())
    s.server(ParseComplete(), IDLE)
    s.client(Query("DISCARD ALL"))
    s.server(CommandComplete("DISCARD ALL"), IDLE)
    assert s.state.statements == {}


def test_simple_query_replaces_the_unnamed_statement() -> None:
    s = Session()
    s.client(Parse("", "SELECT 1"), Sync())
    s.server(ParseComplete(), IDLE)
    s.client(Query("SELECT 2"))
    assert "" not in s.state.statements


def test_session_error_without_a_pending_request() -> None:
    state = SessionState()
    state.client_message(StartupMessage({"user": "nobody"}))
    assert (
        state.server_message(ErrorResponse({"V": "FATAL", "C": "28000", "M": "no such role"}))
        is None
    )


@pytest.mark.parametrize(
    "sent, answer",
    [
        ((), ParseComplete()),
        ((Bind("", ""),), ParseComplete()),
        ((Bind("", ""),), CommandComplete("SELECT 1")),
        ((Parse("", "SELECT 1"),), IDLE),
        ((Query("SELECT 1"),), NoData()),
        ((Execute(""),), ParameterDescription(())),
        ((Parse("", "x"),), CopyInResponse(0, ())),
        ((Parse("", "x"),), PortalSuspended()),
        ((Query("x"),), FunctionCallResponse(None)),
    ],
)
def test_an_answer_to_nothing_pending_is_a_state_error(
    sent: tuple[object, ...], answer: object
) -> None:
    s = Session()
    s.client(*sent)
    with pytest.raises(SessionStateError):
        s.server(answer)
