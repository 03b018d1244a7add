"""Which statements a workload keeps: the ones that do work on tables, not the session and
transaction chatter around them (the same rule for every source, so that they join)."""

from __future__ import annotations

from typing import Final

# Statements that set up or inspect a session (dbsight's own EXPLAIN and SET LOCAL among
# them), or maintain tables, rather than work on their data: no index helps them and a
# report of them is noise.
_SESSION_UTILITIES: Final = (
    "SET ",
    "SHOW ",
    "RESET ",
    "DISCARD ",
    "DEALLOCATE ",
    "LISTEN ",
    "UNLISTEN ",
    "EXPLAIN ",
    "EXPLAIN(",
    "CHECKPOINT",
    "LOAD ",
    "VACUUM",
    "ANALYZE",
)

UTILITY: Final = "utility"


def is_utility(operation: str, normalized: str) -> bool:
    """Whether a statement is transaction control (BEGIN, COMMIT, SAVEPOINT ...), a session
    utility (SET, SHOW, RESET, DISCARD, DEALLOCATE, LISTEN, EXPLAIN ...) or maintenance
    (VACUUM, ANALYZE, CHECKPOINT)."""
    if operation == "tx":
        return True
    if operation != "other":
        return False
    return normalized.lstrip("( ").upper().startswith(_SESSION_UTILITIES)
