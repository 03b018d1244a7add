"""Candidate indexes for one statement, per table, from its column references by role.

At least Dexter's set: every referenced column alone and every ordered pair of the columns
the statement filters, joins, groups or sorts on. Beyond it, the shaped candidates a person
would write: equality columns first (the most selective first), then one range column, or
the ORDER BY columns with their direction, up to `MAX_COLUMNS`; the same with INCLUDE of the
other columns the statement reads from the table, where that makes an index-only scan
possible; and partial ones (``WHERE col = value``) for a value that dominates the traffic.
Nothing here asks the database: `_catalog` resolved the names, `_costing` weighs the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import permutations

from ..embedded.postgres import quote_ident, quote_literal
from ._catalog import Catalog, Table
from ._references import ColumnRef, StatementRefs

__all__ = ["Candidate", "TableUse", "MAX_COLUMNS", "candidates_for", "resolve"]

MAX_COLUMNS = 3
# INCLUDE only this many extra columns: a wider index costs more than the heap visit it saves.
MAX_INCLUDE = 4
# Dexter's pairs come from this many filtered columns at most (n * (n - 1) pairs).
MAX_PAIR_COLUMNS = 6
# Types without a btree operator class (or not worth a btree).
_NO_BTREE = frozenset({"json", "jsonb", "point", "polygon", "box", "circle", "line", "lseg",
                       "path", "xml", "tsvector", "tsquery"})  # fmt: skip


@dataclass(frozen=True, slots=True, order=True)
class Candidate:
    """One index, hypothetical or advised. ``where`` is ``(column, value)`` of a partial
    index (value None: ``IS NULL``)."""

    table: str
    columns: tuple[str, ...]
    descending: tuple[bool, ...]
    include: tuple[str, ...] = ()
    where: tuple[str, str | None] | None = None

    @property
    def key(self) -> str:
        """``index:<table>:<cols>``, the advice event's key (no values in it)."""
        cols = ",".join(c + (" desc" if d else "") for c, d in zip(self.columns, self.descending))
        extra = f"+{','.join(self.include)}" if self.include else ""
        partial = f"|{self.where[0]}" if self.where else ""
        return f"index:{self.table}:{cols}{extra}{partial}"

    def label(self, *, values: bool = True) -> str:
        """``orders (customer_id, created_at DESC) INCLUDE (total) WHERE status = 'x'``;
        without ``values`` the partial predicate's value is left out."""
        text = f"{self.table} ({self._keys()})"
        if self.include:
            text += f" INCLUDE ({', '.join(self.include)})"
        if self.where:
            text += f" WHERE {self.predicate() if values else self.where[0] + ' = …'}"
        return text

    def predicate(self) -> str | None:
        if self.where is None:
            return None
        column, value = self.where
        if value is None:
            return f"{quote_ident(column)} IS NULL"
        return f"{quote_ident(column)} = {quote_literal(value)}"

    def _keys(self, quote: bool = False) -> str:
        q = quote_ident if quote else (lambda name: name)
        pairs = zip(self.columns, self.descending)
        return ", ".join(q(c) + (" DESC" if d else "") for c, d in pairs)

    def definition(self, relation: str) -> str:
        """``ON <relation> (...) [INCLUDE (...)] [WHERE ...]``: the part every CREATE shares."""
        text = f"ON {relation} ({self._keys(quote=True)})"
        if self.include:
            text += f" INCLUDE ({', '.join(quote_ident(c) for c in self.include)})"
        if self.where:
            text += f" WHERE {self.predicate()}"
        return text

    def name(self) -> str:
        """A name of at most 63 bytes, like PostgreSQL's own ``<table>_<cols>_idx``."""
        base = "_".join([self.table.rsplit(".", 1)[-1].strip('"'), *self.columns])
        if self.where:
            base += f"_{self.where[0]}"
        base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in base)
        return (base[:55] + "_idx").lower()

    def covered_by(self, columns: Sequence[str], descending: Sequence[bool],
                   include: Iterable[str] = ()) -> bool:  # fmt: skip
        """An index with these leading key columns serves everything this one does."""
        n = len(self.columns)
        if self.where is not None or tuple(columns[:n]) != self.columns:
            return False
        own = tuple(descending[:n])
        if own != self.descending and own != tuple(not d for d in self.descending):
            return False  # a btree scans backwards, but mixed directions must match
        return set(self.include) <= set(columns) | set(include)


@dataclass(slots=True)
class TableUse:
    """How one statement uses one table: columns in order of first use, by role."""

    table: Table
    eq: list[str] = field(default_factory=list)
    range: list[str] = field(default_factory=list)
    join: list[str] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)
    group: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)  # every column the statement reads
    star: bool = False
    values: dict[str, tuple[str, str]] = field(default_factory=dict)

    def indexable(self, column: str) -> bool:
        kind = self.table.columns.get(column, "")
        return kind.split("(")[0].split("[")[0].strip() not in _NO_BTREE and not kind.endswith("]")

    @property
    def filtered(self) -> list[str]:
        cols = [*self.eq, *self.join, *self.range, *(c for c, _ in self.order), *self.group]
        return [c for c in dict.fromkeys(cols) if self.indexable(c)]


def _add(items: list[str], column: str) -> None:
    if column not in items:
        items.append(column)


def resolve(refs: StatementRefs, catalog: Catalog) -> dict[str, TableUse]:
    """``refs`` on the catalog's tables, keyed by the table's name (``Table.name``). A
    qualified column goes to its table; an unqualified one to every table of the statement
    that has such a column (usually one)."""
    tables: dict[str, Table] = {}
    for written in refs.tables:
        table = catalog.table(written)
        if table is not None:
            tables[written] = table
    uses = {t.name: TableUse(t) for t in tables.values()}

    def owners(ref: ColumnRef) -> list[TableUse]:
        if ref.qualifier is not None:
            written = refs.aliases.get(ref.qualifier)
            table = tables.get(written) if written else None
            if table is None or ref.column not in table.columns:
                return []
            return [uses[table.name]]
        return [uses[t.name] for t in tables.values() if ref.column in t.columns]

    for role in ("eq", "range", "join", "group"):
        for ref in getattr(refs, role):
            for use in owners(ref):
                _add(getattr(use, role), ref.column)
                _add(use.read, ref.column)
    for ref, desc in refs.order:
        for use in owners(ref):
            if ref.column not in (c for c, _ in use.order):
                use.order.append((ref.column, desc))
            _add(use.read, ref.column)
    for ref in refs.other:
        for use in owners(ref):
            _add(use.read, ref.column)
    for ref, value in refs.values.items():
        for use in owners(ref):
            use.values.setdefault(ref.column, value)
    for qualifier in refs.stars:
        if qualifier is None:
            for use in uses.values():
                use.star = True
        else:
            named = refs.aliases.get(qualifier)
            if named is not None and named in tables:
                uses[tables[named].name].star = True
    # A column compared to a value in one place and joined in another counts as joined only
    # once: equality wins (it serves both).
    for use in uses.values():
        use.join = [c for c in use.join if c not in use.eq]
    return uses


def shaped_keys(use: TableUse) -> list[tuple[tuple[str, ...], tuple[bool, ...]]]:
    """Key columns in the order equality → range, or equality → ORDER BY (with direction),
    up to `MAX_COLUMNS`; equality columns most selective first."""
    stats = use.table.distinct
    eq = [c for c in dict.fromkeys([*use.eq, *use.join]) if use.indexable(c)]
    eq.sort(key=lambda c: -stats.get(c, 0.0))
    eq = eq[:MAX_COLUMNS]
    shapes: list[tuple[tuple[str, ...], tuple[bool, ...]]] = []
    if eq:
        shapes.append((tuple(eq), (False,) * len(eq)))
    for column in use.range:
        if use.indexable(column) and column not in eq and len(eq) < MAX_COLUMNS:
            shapes.append(((*eq, column), (False,) * (len(eq) + 1)))
    order = [(c, d) for c, d in use.order if use.indexable(c) and c not in eq]
    if order and len(eq) < MAX_COLUMNS:
        keep = order[: MAX_COLUMNS - len(eq)]
        shapes.append(((*eq, *(c for c, _ in keep)), (*(False,) * len(eq), *(d for _, d in keep))))
    group = [c for c in use.group if use.indexable(c) and c not in eq]
    if group and len(eq) < MAX_COLUMNS:
        keep_g = group[: MAX_COLUMNS - len(eq)]
        shapes.append(((*eq, *keep_g), (False,) * (len(eq) + len(keep_g))))
    return list(dict.fromkeys(shapes))


def candidates_for(use: TableUse, dominant: dict[str, str | None] | None = None) -> list[Candidate]:
    """Every candidate index on ``use.table`` for this statement. ``dominant``: equality
    columns whose traffic asks for one value most of the time (column → value, None for
    IS NULL), for partial indexes."""
    table = use.table.name
    out: dict[Candidate, None] = {}

    def add(columns: tuple[str, ...], desc: tuple[bool, ...], include: tuple[str, ...] = (),
            where: tuple[str, str | None] | None = None) -> None:  # fmt: skip
        if columns:
            out[Candidate(table, columns, desc, include, where)] = None

    # Dexter: every column reference alone, and ordered pairs of the filtered columns.
    for column in use.read:
        if use.indexable(column):
            add((column,), (False,))
    filtered = use.filtered[:MAX_PAIR_COLUMNS]
    for pair in permutations(filtered, 2):
        add(pair, (False, False))
    shapes = shaped_keys(use)
    for columns, desc in shapes:
        add(columns, desc)
        if not use.star:
            rest = tuple(c for c in use.read if c not in columns and use.indexable(c))
            if rest and len(rest) <= MAX_INCLUDE:
                add(columns, desc, rest)
    for column, value in (dominant or {}).items():
        for columns, desc in shapes:
            keys = tuple(c for c in columns if c != column)
            if keys:
                add(keys, tuple(d for c, d in zip(columns, desc) if c != column),
                    where=(column, value))  # fmt: skip
    return list(out)
