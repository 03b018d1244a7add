"""The result type of :func:`dbsight.sql.analyze`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Operation = Literal["select", "insert", "update", "delete", "ddl", "tx", "other"]

#: How significant an operation is when a text holds several statements:
#: a write beats a read, a read beats session/transaction control.
OPERATION_RANK: Final[dict[str, int]] = {
    "tx": 0,
    "other": 1,
    "select": 2,
    "insert": 3,
    "update": 4,
    "delete": 5,
    "ddl": 6,
}


@dataclass(frozen=True, slots=True)
class SqlInfo:
    """What dbsight knows about one SQL text.

    Attributes:
        normalized: the text with every literal and placeholder replaced by
            ``$1, $2, ...`` (numbered in order of appearance), comments removed
            and whitespace collapsed; lists of two or more values in ``IN (...)``
            become ``IN ($n /*, ... */)`` and repeated ``VALUES`` rows become
            ``VALUES (...) /*, ... */``.  Never contains a literal value, so it
            is safe to log.
        fingerprint: 16 lowercase hex characters identifying the statement
            shape (independent of literal values, placeholder style,
            whitespace, comments and ``IN``-list length).
        operation: the most significant operation of the text.
        tables: tables read or written, in order of first appearance,
            deduplicated; ``schema.table`` when written qualified.  CTE names
            are not tables.
        read_only: True only when the text is *provably* free of side effects
            and may be routed to a read replica.
        functions: when the only thing keeping a PostgreSQL text from being
            read-only is calls of functions outside the built-in allow-list
            (user functions, ``nextval`` ...), their names (``name`` or
            ``schema.name``, lowercased unless quoted), deduplicated, in
            order of appearance: whether the text is read-only then depends
            on the server's volatility of just these.  Empty when the text is
            read-only, when anything else also stands in the way, and for
            other dialects.
        operators: the operator symbols a PostgreSQL text that is read-only
            (or read-only but for ``functions``) uses unqualified, deduplicated
            (in no particular order): the built-in operators of these symbols are free of side
            effects, but a user may have defined one for other types with a
            volatile function.  Empty otherwise.
        calls: every function outside the built-in allow-list a PostgreSQL text calls,
            whatever else it does (``functions`` is these when they are all that keeps
            it from being read-only): what may write tables the text does not name.
            An empty name stands for calls the parser may not have seen (a text whose
            statement boundaries depend on server settings).
        obstacle: why the text is not read-only, in a few words (``FOR UPDATE (locks
            rows)``, ``INSERT (writes)``, ``calls f() (outside the read-only built-ins)``): the
            first reason found in its first statement that has one. Empty when read-only.
    """

    normalized: str
    fingerprint: str
    operation: Operation
    tables: tuple[str, ...]
    read_only: bool
    functions: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    obstacle: str = ""


def most_significant(ops: list[Operation]) -> Operation:
    """The operation that describes a multi-statement text best."""
    best: Operation = "other"
    rank = -1
    for op in ops:
        r = OPERATION_RANK[op]
        if r > rank:
            best, rank = op, r
    return best
