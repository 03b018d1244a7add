"""Reading a server's ErrorResponse on the relay's hot path: is it the end of the session?"""

from __future__ import annotations

from dbsight.proxy import protocol as p
from dbsight.proxy._exchange import error_message, fatal_error, recovery_conflict

ROW = p.encode(p.CommandComplete("SELECT 1"))


def test_a_fatal_error_is_found_among_whole_messages() -> None:
    fatal = p.error_response("57P01", "terminating connection due to administrator command", "FATAL")
    assert fatal_error(fatal)
    assert fatal_error(ROW + fatal)
    assert fatal_error(p.error_response("XX000", "bad", "PANIC"))
    assert error_message(ROW + fatal) == "57P01: terminating connection due to administrator command"


def test_errors_that_leave_the_session_alive_are_not_fatal() -> None:
    error = p.error_response("40001", "canceling statement due to conflict with recovery")
    assert not fatal_error(error + p.ready_for_query(p.TransactionStatus.IDLE))
    assert not fatal_error(ROW)
    assert error_message(ROW) == "an error"


def test_an_incomplete_message_is_not_read() -> None:
    fatal = p.error_response("57P01", "terminating", "FATAL")
    assert not fatal_error(fatal[:-3])
    assert not fatal_error(b"E\x00")


def test_a_recovery_conflict_is_recognised() -> None:
    conflict = p.error_response("40001", "canceling statement due to conflict with recovery")
    assert recovery_conflict(ROW + conflict)
    assert not recovery_conflict(p.error_response("40P01", "deadlock detected"))
    assert not fatal_error(conflict)
