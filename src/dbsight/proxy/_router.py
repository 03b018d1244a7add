"""Where a pooled client's next request goes: the primary, or a replica.

The unit of routing is what a client sends between two moments of rest (outside a transaction
block, nothing unanswered): one simple Query, or the extended-protocol messages up to and
including a Sync. A unit goes to a replica only when every statement in it is provably
read-only (``dbsight.sql.analyze``'s rules, "Routing safety" in ARCHITECTURE.md), with calls of
functions outside the allow-list judged by their real volatility (`FunctionVolatility`);
a SELECT of a view whose definition is not read-only in
the same sense (`RelationSafety`), anything else, an incomplete unit, and everything from BEGIN to the end of a transaction go
to the primary, except a transaction that starts ``READ ONLY``, which goes to a replica
whole. A ``/* dbsight:primary */`` or ``/* dbsight:replica */`` comment overrides the
judgement for its statement, ``SET dbsight.role = primary | replica | auto`` for the session.
An override to a replica vouches for functions and freshness only: a statement that writes
or locks by its form (INSERT, FOR UPDATE, a data-modifying WITH, SELECT INTO...) still goes
to the primary (`vouchable`). Statements that read ``transaction_read_only`` (``SHOW``,
``current_setting``) go to the primary, which is what drivers ask it of to find the primary.
A lone BEGIN (with or without modes) is answered by the proxy, as are the SET TRANSACTIONs
right after it, and all are sent on with the first other statement (`TransactionStart`): so
``SET TRANSACTION READ ONLY`` can still take the transaction to a replica, and ``SET
TRANSACTION READ WRITE`` or ``ISOLATION LEVEL SERIALIZABLE`` after ``BEGIN READ ONLY`` keeps
it on the primary.

Verdicts on statement texts that involve no function lookup are cached per text, so a
statement seen before costs one dictionary lookup.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from ..sql import analyze
from ._relations import RelationSafety
from ._setting_statements import BLANKS
from ._units import bind_statement, parse_fields, unit_messages
from ._volatility import Execute, FunctionVolatility

Role = Literal["primary", "replica", "auto"]
_unpack_int32 = struct.Struct(">i").unpack_from

_HINT = re.compile(r"/\*\s*dbsight:(primary|replica)\s*\*/", re.IGNORECASE)
# (comments before and after too: sqlcommenter's, or a driver's, would otherwise send the hint
# to the server, which takes it for a setting of its own and says nothing)
_SET_ROLE = re.compile(
    rf"^{BLANKS}(?:SET\s+(?:SESSION\s+)?dbsight\.role\s*(?:=|\bTO\b)\s*"
    rf"'?(primary|replica|auto)'?|RESET\s+dbsight\.role){BLANKS};?{BLANKS}$",
    re.IGNORECASE,
)
_READ_ONLY_TRANSACTION = re.compile(
    r"^\s*(?:BEGIN|START\s+TRANSACTION)\b"
    r"(?:[^;]*\bREAD\s+ONLY\b[^;]*(?:;|$)|[^;]*;\s*SET\s+TRANSACTION\b[^;]*\bREAD\s+ONLY\b)",
    re.IGNORECASE,
)
# What keeps a transaction on the primary even when it says READ ONLY: READ WRITE, and
# SERIALIZABLE ("cannot use serializable mode in a hot standby").
_NOT_ON_REPLICA = re.compile(r"\bREAD\s+WRITE\b|\bSERIALIZABLE\b", re.IGNORECASE)
# A transaction's modes, as BEGIN / START TRANSACTION / SET TRANSACTION spell them.
_MODE = (
    r"(?:ISOLATION\s+LEVEL\s+(?:SERIALIZABLE|REPEATABLE\s+READ|READ\s+(?:UN)?COMMITTED)"
    r"|READ\s+(?:ONLY|WRITE)|(?:NOT\s+)?DEFERRABLE)"
)
_MODES = rf"{_MODE}(?:\s*,?\s*{_MODE})*"
_DEFERRED_BEGIN = re.compile(
    rf"^\s*(?:BEGIN(?:\s+(?:WORK|TRANSACTION))?|START\s+TRANSACTION)(?:\s+{_MODES})?\s*;?\s*$",
    re.IGNORECASE,
)
_DEFERRED_SET = re.compile(rf"^\s*SET\s+TRANSACTION\s+{_MODES}\s*;?\s*$", re.IGNORECASE)
_ACCESS_READ_ONLY = re.compile(r"\bREAD\s+ONLY\b", re.IGNORECASE)
# What a standby answers differently, and drivers check to find the primary
# (pgJDBC's targetServerType: SHOW transaction_read_only).
_PRIMARY_SETTING = re.compile(r"transaction_read_only|\bSHOW\s+ALL\b", re.IGNORECASE)
_MAX_CACHED = 20_000

QUERY, PARSE, BIND, EXECUTE, SYNC, FLUSH, FUNCTION_CALL = (ord(c) for c in "QPBESHF")


@dataclass(frozen=True, slots=True)
class Unit:
    """A judged unit: where it goes (``replica``: may go to one), where it ends in the
    buffer, and whether it opens a read-only transaction (held on the replica whole)."""

    replica: bool
    end: int
    read_only_transaction: bool = False


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the server must be asked before a unit can be judged: the volatility of these
    functions, what these relations are (a view may call a volatile function)."""

    functions: tuple[str, ...] = ()
    relations: tuple[str, ...] = ()


def set_role_statement(sql: str) -> Role | None:
    """The role a ``SET dbsight.role = ...`` (or RESET: ``auto``) statement sets, else None."""
    match = _SET_ROLE.match(sql)
    if match is None:
        return None
    return match.group(1).lower() if match.group(1) else "auto"  # type: ignore[return-value]


@dataclass(slots=True)
class TransactionStart:
    """A transaction the proxy has answered the start of itself (BEGIN, then any SET
    TRANSACTION): its messages, held until the first other statement, and the modes they
    set, which decide where it runs: a replica when READ ONLY, unless one of them says READ
    WRITE or SERIALIZABLE, which a standby refuses to hear even when a later one takes it
    back."""

    messages: list[bytes]
    read_only: bool = False
    refused: bool = False  # said READ WRITE or SERIALIZABLE: the primary

    @classmethod
    def begin(cls, sql: str, message: bytes) -> TransactionStart | None:
        """The start of a transaction whose place is still open, for a lone BEGIN (or START
        TRANSACTION) with nothing but transaction modes; None for anything else."""
        if _DEFERRED_BEGIN.match(sql) is None:
            return None
        started = cls([message])
        started._modes(sql)
        return started

    def set_transaction(self, sql: str, message: bytes) -> bool:
        """Take a lone ``SET TRANSACTION <modes>`` into the start; False for anything else."""
        if _DEFERRED_SET.match(sql) is None:
            return False
        self.messages.append(message)
        self._modes(sql)
        return True

    @property
    def on_replica(self) -> bool:
        return self.read_only and not self.refused

    def _modes(self, sql: str) -> None:
        if _ACCESS_READ_ONLY.search(sql) is not None:
            self.read_only = True
        if _NOT_ON_REPLICA.search(sql) is not None:
            self.refused = True


# Built-in functions that write (or need a primary): no override sends their calls to a replica.
_WRITING_BUILTINS: Final = frozenset(
    name
    for base in (
        "nextval", "setval", "pg_notify", "txid_current", "pg_current_xact_id",
        "lo_create", "lo_creat", "lo_import", "lo_unlink", "lo_from_bytea", "lo_put",
        "pg_switch_wal", "pg_create_restore_point", "pg_current_wal_lsn",
        "pg_current_wal_insert_lsn", "pg_current_wal_flush_lsn",
    )
    for name in (base, f"pg_catalog.{base}")
)


def vouchable(sql: str) -> bool:
    """Whether an override (a ``dbsight:replica`` comment, ``dbsight.role = replica``) may
    send ``sql`` to a replica: it reads by its form, and only calls of functions that are not
    built-in writers (user functions left VOLATILE that only read, views calling them) kept
    it from being judged read-only."""
    info = analyze(sql)
    if info.read_only:
        return True
    return (
        bool(info.functions)
        and info.operation == "select"
        and _WRITING_BUILTINS.isdisjoint(info.functions)
    )


class Router:
    """Verdicts on statement texts and units; one per proxy (shared by its sessions)."""

    def __init__(self, volatility: FunctionVolatility | None = None) -> None:
        self.volatility = volatility or FunctionVolatility()
        self.relations = RelationSafety(self.volatility)
        self._verdicts: dict[str, tuple[bool, float]] = {}  # text -> (verdict, until)
        self.changed_at = 0.0  # when DDL was last seen (time.monotonic)

    def verdict(self, sql: str, now: float) -> bool | Lookup:
        """True: ``sql`` may run on a replica; False: primary; a `Lookup`: what must be
        asked of the server first."""
        cached = self._verdicts.get(sql)
        if cached is not None and cached[1] > now:
            return cached[0]
        hint = _HINT.search(sql) if "dbsight:" in sql else None
        if hint is not None:
            found = hint.group(1).lower() == "replica" and vouchable(sql)
        elif _PRIMARY_SETTING.search(sql) is not None:
            found = False
        else:
            info = analyze(sql)
            judged = self.volatility.verdict(info, now)
            if judged is None:
                return Lookup(functions=self.volatility.missing(info, now))
            if judged and info.tables:
                relations = self.relations.verdict(info.tables, now)
                if relations is None:
                    return Lookup(relations=self.relations.missing(info.tables, now))
                judged = relations
            if info.functions:  # depends on the volatility cache: not cached here
                return judged
            found = judged
        if len(self._verdicts) >= _MAX_CACHED:
            self._verdicts.clear()
        self._verdicts[sql] = (found, now + self.relations.ttl_s)
        return found

    async def resolve(self, lookup: Lookup, execute: Execute, now: float) -> None:
        """Ask the server what ``lookup`` names (on a primary connection)."""
        if lookup.functions:
            await self.volatility.resolve(lookup.functions, execute, now)
        if lookup.relations:
            await self.relations.resolve(lookup.relations, execute, now)

    def forget(self) -> None:
        """Functions or views may have changed (DDL seen): judge texts again."""
        self.changed_at = time.monotonic()
        self._verdicts.clear()
        self.volatility.invalidate()
        self.relations.invalidate()

    def unit(
        self,
        buf: bytes,
        start: int,
        statement_text: Callable[[str], str | None],
        now: float,
    ) -> Unit | Lookup:
        """Judge the unit that starts at ``buf[start]`` (a complete message). Named
        statements' texts come from ``statement_text``."""
        t = buf[start]
        end = start + 1 + _unpack_int32(buf, start + 1)[0]
        if t == QUERY:
            sql = buf[start + 5 : end - 1].decode("utf-8", "replace")
            if _READ_ONLY_TRANSACTION.match(sql) and not _NOT_ON_REPLICA.search(sql):
                return Unit(True, end, read_only_transaction=True)
            judged = self.verdict(sql, now)
            if isinstance(judged, Lookup):
                return judged
            return Unit(judged, end)
        return self._extended(buf, start, statement_text, lambda sql: self.verdict(sql, now))

    def vouched(
        self, buf: bytes, start: int, statement_text: Callable[[str], str | None]
    ) -> bool:
        """Whether ``SET dbsight.role = replica`` may send the unit at ``buf[start]`` to a
        replica: every statement in it is `vouchable`."""
        if buf[start] == QUERY:
            end = start + 1 + _unpack_int32(buf, start + 1)[0]
            return vouchable(buf[start + 5 : end - 1].decode("utf-8", "replace"))
        unit = self._extended(buf, start, statement_text, vouchable)
        return isinstance(unit, Unit) and unit.replica

    @staticmethod
    def _extended(
        buf: bytes,
        start: int,
        statement_text: Callable[[str], str | None],
        judge: Callable[[str], bool | Lookup],
    ) -> Unit | Lookup:
        unit = unit_messages(buf, start)
        unnamed: str | None = None  # the unnamed statement parsed in this unit
        replica = True
        executes = False  # a Bind, Execute, FunctionCall or Query is in the unit
        for t, i, end in unit.messages:
            if t == SYNC:
                return Unit(replica, end)
            if t == BIND or t == EXECUTE or t == FUNCTION_CALL or t == QUERY:
                executes = True
            if replica:
                sql: str | None = None
                if t == PARSE:
                    name, sql, _ = parse_fields(buf, i, end)
                    if not name:
                        unnamed = sql
                elif t == BIND:
                    name = bind_statement(buf, i, end)
                    sql = (statement_text(name) if name else unnamed) or ""
                    if not sql:
                        replica = False
                elif t == FUNCTION_CALL or t == QUERY:
                    replica = False
                if sql:
                    judged = judge(sql)
                    if isinstance(judged, Lookup):
                        return judged
                    replica = judged
        if not executes and unit.last_type == FLUSH and unit.end == len(buf):
            # a driver preparing (asyncpg: Parse, Describe, Flush), waiting for the answers:
            # where its statements may run; it ends when answered, what follows is judged
            # on its own
            return Unit(replica, unit.end)
        return Unit(False, unit.end)  # no Sync yet: the client may wait for answers before it
