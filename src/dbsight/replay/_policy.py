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


class Policy:
    """`reason` and `controls_transaction` for a replay's statements. What a statement is
    (read, write, transaction control...) is worked out once per fingerprint: the parse is
    the cost, and a fingerprint's statements differ only in their literals."""

    def __init__(self, *, allow_writes: bool) -> None:
        self.allow_writes = allow_writes
        self._kinds: dict[str, str] = {}

    def reason(self, statement: CapturedStatement) -> str | None:
        """None when the replay sends ``statement``, else the key of why it does not."""
        if not statement.sql:
            return NO_TEXT
        if statement.params is not None and any(isinstance(p, dict) for p in statement.params):
            return UNSUPPORTED
        kind = self._kind(statement)
        if kind in (_READ, _CONTROL):
            return None
        if kind == _WRITE:
            return None if self.allow_writes else WRITES
        return kind  # UNSUPPORTED, SESSION

    def controls_transaction(self, statement: CapturedStatement) -> bool:
        return bool(statement.sql) and self._kind(statement) == _CONTROL

    def _kind(self, statement: CapturedStatement) -> str:
        kind = self._kinds.get(statement.fingerprint)
        if kind is None:
            kind = self._kinds[statement.fingerprint] = _classify(statement.sql or "")
        return kind


_READ, _CONTROL, _WRITE = "read", "control", "write"


def _classify(sql: str) -> str:
    info = analyze(sql)
    obstacle = info.obstacle
    if obstacle.startswith("COPY"):
        return UNSUPPORTED
    if obstacle.startswith(("DEALLOCATE", "DISCARD")):
        return SESSION
    if info.read_only or obstacle.startswith("SET "):
        return _READ  # SET and RESET change the session only, as the replayed one needs
    if info.operation == "tx" and not obstacle.startswith("PREPARE"):
        return _CONTROL
    return _WRITE
