"""Whether a SELECT that calls functions may go to a replica, from the server's own ``pg_proc``.

``dbsight.sql`` knows the built-in functions that are free of side effects; a SELECT calling
any other (a user function, ``nextval``...) is not provably read-only from its text, and
``SqlInfo.functions`` names those calls when they are the only obstacle. Whether such a
function may run on a replica is what the server declared for it: ``provolatile`` is ``v``
for functions that may write, take locks or draw from sequences; PostgreSQL refuses
INSERT/UPDATE/DELETE in the body of a ``STABLE`` or ``IMMUTABLE`` one. (It does not stop one
from calling a volatile function that writes: such a mislabelled function fails on the
replica, a hot standby being read-only, instead of writing.)
``FunctionVolatility`` asks once per name (one query for all the names a statement lacks) and
keeps the answer for ``ttl_s``; a command tag that defines or alters functions drops it all.

Sans-IO but for ``resolve()``, which runs one query through the ``execute`` it is given; the
relay decides when, on which connection, and what a failure means (primary).

What a name matches (when in doubt, primary):

- ``schema.name``: every function of that name in that schema (every overload: the text alone
  does not say which one the arguments select).
- ``name``: every function of that name in *any* schema, not only the ones visible on the
  resolving connection's ``search_path``: a client may have set another path in its session,
  under which the name would find a function the proxy's connection does not see.
- Operators: the built-in ones (the only ones ``dbsight.sql`` lets a read-only text use) are
  free of side effects, but a user may define one of the same symbol for other types, backed
  by a volatile function. The proxy asks once which symbols have a volatile operator in the
  database (``OPERATORS``, usually none) and sends a text using one of them to the primary.
- ``txid_current()`` and ``pg_current_xact_id()`` are declared STABLE but assign a
  transaction id, which a standby refuses: they count as volatile.
- An aggregate is as volatile as its support functions (``CREATE AGGREGATE`` always records
  ``IMMUTABLE``); a procedure cannot be called from a SELECT and counts as volatile.
- No match (a typo, a function created elsewhere a moment ago, a column written as
  ``name(t)``, a name longer than the server's 63 bytes) counts as volatile.

Names come from client SQL: they reach the server only as hexadecimal digits (UTF-8 bytes
compared with ``convert_to(proname, 'UTF8')``), so no quote, backslash or client encoding can
change the query's meaning, and no name (not even one the database encoding cannot hold) can
make it fail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from ..sql import SqlInfo
from ._backend import QueryResult

Execute = Callable[[str], Awaitable[list[QueryResult]]]

DEFAULT_TTL_S: Final = 300.0
DEFAULT_MAX_NAMES: Final = 4096

# Command tags after which a name may match other functions, or functions other volatility.
_INVALIDATING_TAGS: Final = frozenset(
    f"{verb} {kind}".encode()
    for verb in ("CREATE", "ALTER", "DROP")
    for kind in (
        "FUNCTION", "PROCEDURE", "ROUTINE", "AGGREGATE", "EXTENSION", "SCHEMA", "LANGUAGE",
        "OPERATOR",
    )
) | {b"DROP OWNED"}

# The pseudo-name `missing()` gives for "which operator symbols are volatile" (a NUL is in no
# function's name), and the query that answers it.
OPERATORS: Final = "\x00operators"
_VOLATILE_OPERATORS = """SELECT DISTINCT o.oprname::text
FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
WHERE p.provolatile = 'v' OR p.prokind = 'p'"""

# Built-in functions declared STABLE that a standby refuses: they assign the transaction an id
# (a write), "cannot assign TransactionIds during recovery".
_PRIMARY_ONLY: Final = ", ".join(f"'{name}'" for name in ("txid_current", "pg_current_xact_id"))

# True when every function the row's name matches is non-volatile (NULL when it matches none).
_NON_VOLATILE = f"""CASE p.prokind
      WHEN 'a' THEN NOT EXISTS (
        SELECT FROM pg_catalog.pg_aggregate a JOIN pg_catalog.pg_proc s ON s.oid IN (
          a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn,
          a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn)
        WHERE a.aggfnoid = p.oid AND s.provolatile NOT IN ('s', 'i'))
      WHEN 'p' THEN false
      ELSE p.provolatile IN ('s', 'i') AND NOT (
        n.nspname = 'pg_catalog' AND p.proname IN ({_PRIMARY_ONLY}))
    END"""

_QUERY = f"""SELECT w.i, coalesce(bool_and({_NON_VOLATILE}), false)
FROM (VALUES {{rows}}) AS w(i, nsp, fn)
LEFT JOIN (pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace)
  ON pg_catalog.convert_to(p.proname::text, 'UTF8') = w.fn
  AND (w.nsp IS NULL OR pg_catalog.convert_to(n.nspname::text, 'UTF8') = w.nsp)
GROUP BY w.i"""


def bytes_literal(s: str) -> str:
    """``s`` as a bytea expression made of hexadecimal digits only."""
    # a lone surrogate (from text decoded with surrogateescape) gives bytes no name has
    return f"pg_catalog.decode('{s.encode('utf-8', 'surrogatepass').hex()}', 'hex')"


def split_name(name: str) -> tuple[str | None, str] | None:
    """``"f"`` -> ``(None, "f")``, ``"s.f"`` -> ``("s", "f")``; None for anything else."""
    if "\x00" in name:
        return None  # no identifier holds a NUL
    parts = name.split(".")
    if len(parts) > 2 or not all(parts):
        return None
    return (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _lookup_query(names: Sequence[str]) -> str | None:
    """The query that judges ``names``: rows of (index in ``names``, non-volatile).

    Names that cannot be a function name (``a.b.c``, empty parts) are left out: volatile.
    None when none is left.
    """
    rows: list[str] = []
    for i, name in enumerate(names):
        split = split_name(name)
        if split is None:
            continue
        schema, function = split
        nsp = "NULL::bytea" if schema is None else bytes_literal(schema)
        rows.append(f"({i}, {nsp}, {bytes_literal(function)})")
    if not rows:
        return None
    return _QUERY.format(rows=", ".join(rows))


class FunctionVolatility:
    """``pg_proc.provolatile`` of functions the proxy has seen, cached per name.

    One instance per database (``pg_proc`` is per database): the verdicts depend neither on
    the user nor on the session, see the module docstring.
    """

    __slots__ = ("_generation", "_known", "_max_names", "_volatile_operators", "ttl_s")

    def __init__(self, ttl_s: float = DEFAULT_TTL_S, max_names: int = DEFAULT_MAX_NAMES) -> None:
        if not 0 < ttl_s < float("inf"):
            raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
        if max_names < 1:
            raise ValueError(f"max_names must be at least 1, got {max_names!r}")
        self.ttl_s = ttl_s
        self._max_names = max_names
        # name -> (non-volatile, expires at); insertion order is age order, for eviction
        self._known: dict[str, tuple[bool, float]] = {}
        # bumped by every invalidation: an answer asked for before it is not stored
        self._generation = 0
        # the operator symbols with a volatile operator, and until when that is trusted
        self._volatile_operators: tuple[frozenset[str], float] | None = None

    def verdict(self, info: SqlInfo, now: float) -> bool | None:
        """May ``info``'s statement go to a replica, as far as its functions go?

        True: it is read-only, or a SELECT whose every function is known non-volatile.
        False: not read-only for another reason, or a function is volatile or unknown.
        None: a function's volatility is not known (yet, or any more): ``resolve()`` first.
        """
        if info.read_only:
            return self._operators_verdict(info, now)
        if not info.functions or info.operation != "select":
            return False
        pending = False
        for name in info.functions:
            entry = self._known.get(name)
            if entry is None or entry[1] <= now:
                pending = True
            elif not entry[0]:
                return False
        operators = self._operators_verdict(info, now)
        if operators is False:
            return False
        return None if pending or operators is None else True

    def _operators_verdict(self, info: SqlInfo, now: float) -> bool | None:
        """False when ``info`` uses an operator symbol some volatile operator has; None when
        that is not known (any more)."""
        if not info.operators:
            return True
        known = self._volatile_operators
        if known is None or known[1] <= now:
            return None
        return known[0].isdisjoint(info.operators)

    def missing(self, info: SqlInfo, now: float) -> tuple[str, ...]:
        """The names ``resolve()`` needs before ``verdict()`` can answer (empty when it can)."""
        if self.verdict(info, now) is not None:
            return ()
        known = self._known
        names = tuple(
            name for name in info.functions if (e := known.get(name)) is None or e[1] <= now
        )
        if self._operators_verdict(info, now) is None:
            names += (OPERATORS,)
        return names

    async def resolve(self, names: Sequence[str], execute: Execute, now: float) -> None:
        """Ask the server about ``names`` (one query) and remember each verdict for ``ttl_s``.

        ``execute`` runs a query on a server connection (``BackendConnection.execute``), best
        one outside any transaction block: in a failed one the query fails. What it raises is
        raised, and nothing is stored. An answer that arrives after an invalidation is not
        stored either: it may describe the functions as they were.
        """
        wanted = list(dict.fromkeys(names))
        operators = OPERATORS in wanted
        if operators:
            wanted.remove(OPERATORS)
        if not wanted and not operators:
            return
        generation = self._generation
        non_volatile = [False] * len(wanted)
        query = _lookup_query(wanted) if wanted else None
        volatile_operators: frozenset[str] = frozenset()
        if operators:
            results = await execute(_VOLATILE_OPERATORS)
            volatile_operators = frozenset(
                row[0] for row in (results[-1].rows if results else ()) if row[0]
            )
        if query is not None:
            results = await execute(query)
            for index, verdict in results[-1].rows if results else ():
                if index is not None:
                    non_volatile[int(index)] = verdict == "t"
        if generation != self._generation:
            return
        expires = now + self.ttl_s
        if operators:
            self._volatile_operators = (volatile_operators, expires)
        for name, ok in zip(wanted, non_volatile, strict=True):
            self._store(name, ok, expires)

    def note_command_tag(self, tag: bytes) -> bool:
        """Forget everything after a command that may change what a name means.

        ``tag`` is a CommandComplete tag (``b"CREATE FUNCTION"``...). Returns True when it
        was such a command: a change made in a transaction becomes visible to the other
        sessions only when it commits, so the session should call ``invalidate()`` again
        when its transaction ends, or a verdict asked for in between would outlive it.
        """
        if tag.rstrip(b"\x00") in _INVALIDATING_TAGS:
            self.invalidate()
            return True
        return False

    def invalidate(self) -> None:
        """Forget every verdict (and any answer being awaited)."""
        self._known.clear()
        self._volatile_operators = None
        self._generation += 1

    def _store(self, name: str, non_volatile: bool, expires: float) -> None:
        """Remember a verdict; when full, forget the oldest (the first to expire anyway)."""
        known = self._known
        known.pop(name, None)
        while len(known) >= self._max_names:
            del known[next(iter(known))]
        known[name] = (non_volatile, expires)
