"""Which captured statements a replay sends, and why the others are skipped.

Sent: statements that are provably read-only (`dbsight.sql.analyze`), transaction control
(BEGIN, COMMIT, SAVEPOINT...: the transaction boundaries are kept) and session settings (SET,
RESET: a search_path or a timeout the later statements need). Everything else may change the
target's data or schema (writes, DDL, a SELECT calling a function that is not known to be
read-only, LOCK...) and is sent only with ``allow_writes``. Never sent: statements captured
without their text (``capture_params`` off), COPY (the capture does not hold its data
stream), statements with a parameter the capture could only keep as hex (a binary value of
a type it does not know), and DEALLOCATE and DISCARD, which a client's driver sends to manage
its own prepared statements and which would drop the replay connection's.
"""

from __future__ import annotations

from typing import Final

from ..sql import analyze
from ._reader import CapturedStatement

NO_TEXT: Final = "no_text"
WRITES: Final = "writes"
UNSUPPORTED: Final = "unsupported"
SESSION: Final = "session"

#: What each skip reason means, for the report.
SKIP_REASONS: Final[dict[str, str]] = {
    WRITES: "writes and DDL (replayed with --allow-writes)",
    NO_TEXT: "no text: capture with capture_params",
    UNSUPPORTED: "COPY, or a parameter captured as hex (a binary value of an unknown type)",
    SESSION: "DEALLOCATE and DISCARD (would drop the replay's prepared statements)",
}


def skip_reason(statement: CapturedStatement, *, allow_writes: bool) -> str | None:
    """None when the replay sends ``statement``, else the key of why it does not."""
    sql = statement.sql
    if not sql:
        return NO_TEXT
    if statement.params is not None and any(isinstance(p, dict) for p in statement.params):
        return UNSUPPORTED
    info = analyze(sql)
    obstacle = info.obstacle
    if obstacle.startswith("COPY"):
        return UNSUPPORTED
    if obstacle.startswith(("DEALLOCATE", "DISCARD")):
        return SESSION
    if info.read_only or obstacle.startswith("SET "):
        return None
    if info.operation == "tx" and not obstacle.startswith("PREPARE"):
        return None
    return None if allow_writes else WRITES


def is_transaction_control(statement: CapturedStatement) -> bool:
    return bool(statement.sql) and analyze(statement.sql or "").operation == "tx"
