"""MySQL, SQLite and other dialects, parsed by sqlglot.

Read-only rule (as for PostgreSQL, default deny): every statement must be a
SELECT / set operation / VALUES (its text starting with SELECT, WITH, VALUES
or TABLE), a SHOW, or an EXPLAIN/DESCRIBE without ANALYZE of such a statement
or of a table; and nowhere in it a locking read (``FOR UPDATE``, ``FOR
SHARE``, ``LOCK IN SHARE MODE``), an ``INTO`` (``SELECT ... INTO @var`` or
``OUTFILE``), a data-modifying statement, a user variable (``@v``, ``@v :=``),
a system variable (``@@v``), a command sqlglot could not parse, or a call to
a function outside :mod:`._generic_functions` (schema-qualified calls never
pass).

Fingerprint: literals and placeholders are replaced by ``?`` in the syntax
tree, ``IN`` lists and ``VALUES`` rows of bare placeholders are collapsed,
and the canonical SQL sqlglot generates (without comments) is hashed with
blake2b (8 bytes).  Statements sqlglot only keeps as raw text (``Command``)
are fingerprinted by their masked text instead.
"""

from __future__ import annotations

import logging
import threading
from hashlib import blake2b
from typing import Any, Final

import sqlglot
import sqlglot.errors
from sqlglot import exp

from ._generic_functions import SAFE_FUNC_CLASSES, SAFE_FUNCTION_NAMES
from ._info import Operation, most_significant
from ._keywords import KEYWORD_OPS, first_words
from ._postgres import Analysis

_SQLGLOT_DIALECT: Final[dict[str, str | None]] = {
    "mysql": "mysql",
    "sqlite": "sqlite",
    "generic": None,
}

_local = threading.local()


class _QuietWhileAnalyzing(logging.Filter):
    """Drop sqlglot's warnings ("falling back to parsing as a Command" ...)
    emitted while dbsight itself is parsing; other users' warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_local, "active", False)


_sqlglot_logger = logging.getLogger("sqlglot")
if not any(isinstance(f, _QuietWhileAnalyzing) for f in _sqlglot_logger.filters):
    _sqlglot_logger.addFilter(_QuietWhileAnalyzing())


def _attr(name: str) -> type[exp.Expression] | None:
    cls = getattr(exp, name, None)
    return cls if isinstance(cls, type) else None


def _types(*names: str) -> tuple[type[exp.Expression], ...]:
    return tuple(c for c in (_attr(n) for n in names) if c is not None)


_DML: Final[dict[type[exp.Expression], Operation]] = {
    exp.Insert: "insert",
    exp.Update: "update",
    exp.Delete: "delete",
    exp.Merge: "update",
}
_QUERY_ROOTS: Final = _types("Select", "SetOperation", "Values", "Subquery")
_DDL: Final = _types(
    "Create", "Drop", "Alter", "AlterTable", "TruncateTable", "Grant", "Revoke", "Comment"
)
_TX: Final = _types("Transaction", "Commit", "Rollback")
_NEVER_READ_ONLY: Final = _types(
    "Lock", "Into", "Insert", "Update", "Delete", "Merge", "Command", "Parameter",
    "SessionParameter", "PropertyEQ", "Create", "Drop", "Alter", "Set", "Transaction",
    "Commit", "Rollback", "Pragma", "Use", "Copy", "LoadData", "Kill", "Execute", "Declare",
)  # fmt: skip

_READ_KEYWORDS: Final = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
# Valid statements some sqlglot dialects cannot parse at all.
_UNPARSED_KEYWORD_OPS: Final[dict[str, Operation]] = {
    "RELEASE": "tx",
    "XA": "tx",
    "LOAD": "insert",
}


def _function_is_safe(node: exp.Func) -> bool:
    if isinstance(node.parent, exp.Dot) and node.arg_key == "expression":
        return False  # schema.function(...)
    if isinstance(node, (exp.Binary, exp.Unary)) and not isinstance(node, exp.Anonymous):
        return True  # an operator sqlglot models as a function (AND, OR, ->, @> ...)
    if isinstance(node, exp.Anonymous):
        name = node.name
        return isinstance(name, str) and name.lower() in SAFE_FUNCTION_NAMES
    if type(node).__name__ in SAFE_FUNC_CLASSES:
        return True
    try:
        return node.sql_name().lower() in SAFE_FUNCTION_NAMES
    except Exception:
        return False


def _obstacle(root: exp.Expression) -> str:
    """What keeps ``root`` from being read-only, in words; "" when nothing does."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, _NEVER_READ_ONLY):
            return _node_words(node)
        if isinstance(node, exp.Func) and not _function_is_safe(node):
            return f"calls {_function_name(node)}() (not a known read-only function)"
        for value in node.args.values():
            if isinstance(value, exp.Expression):
                if not isinstance(value, exp.Hint):  # optimizer hints change no data
                    stack.append(value)
            elif isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, exp.Expression))
    return ""


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    try:
        return str(node.sql_name())
    except Exception:
        return type(node).__name__.upper()


def _node_words(node: exp.Expression) -> str:
    """A construct that is never read-only, as the text reads."""
    if isinstance(node, exp.Lock):
        return f"{'FOR UPDATE' if node.args.get('update') else 'FOR SHARE'} (locks rows)"
    if isinstance(node, tuple(_DML)):
        return f"{node.key.upper()} (writes)"
    if isinstance(node, (exp.Parameter, exp.SessionParameter, exp.PropertyEQ)):
        return "a user or system variable"
    return node.key.upper()


def _writes(root: exp.Expression) -> list[Operation]:
    return [op for node in root.walk() for cls, op in _DML.items() if isinstance(node, cls)]


def _position(table: exp.Table) -> int:
    starts = []
    for part in (table.args.get("catalog"), table.args.get("db"), table.this):
        meta = getattr(part, "meta", None) if part is not None else None
        if meta and isinstance(meta.get("start"), int):
            starts.append(meta["start"])
    return min(starts) if starts else 1 << 30


def _tables(root: exp.Expression, found: list[tuple[int, int, str]]) -> None:
    """Collect the tables under ``root``; CTE names in scope are not tables."""
    stack: list[tuple[exp.Expression, frozenset[str]]] = [(root, frozenset())]
    while stack:
        node, scope = stack.pop()
        inner = scope
        with_ = node.args.get("with_") or node.args.get("with")
        if isinstance(with_, exp.With):
            ctes = [c for c in with_.expressions if isinstance(c, exp.CTE)]
            names = [c.alias_or_name.lower() for c in ctes]
            inner = scope | frozenset(names)
            recursive = bool(with_.args.get("recursive"))
            for i, cte in enumerate(ctes):
                stack.append((cte, inner if recursive else scope | frozenset(names[:i])))
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            db = node.args.get("db")
            catalog = node.args.get("catalog")
            name = node.this.name
            if db or catalog or name.lower() not in scope:
                parts = [p.name for p in (catalog, db) if isinstance(p, exp.Identifier)]
                found.append((_position(node), len(found), ".".join([*parts, name])))
        for key, value in node.args.items():
            if value is with_ and with_ is not None:
                continue
            if isinstance(value, exp.Expression):
                stack.append((value, inner))
            elif isinstance(value, list):
                stack.extend((v, inner) for v in value if isinstance(v, exp.Expression))


def _statement(
    node: exp.Expression, keyword: str | None, dialect: str, found: list[tuple[int, int, str]]
) -> tuple[Operation, str]:
    """The statement's operation, and what keeps it from being read-only ("" if nothing)."""
    if isinstance(node, exp.Command):
        word = str(node.this or "").split()[0].upper() if node.this else ""
        if word == "REPLACE":
            _replace_tables(node, dialect, found)
        return KEYWORD_OPS.get(word, "other"), "" if word == "SHOW" else f"{word} (not a query)"
    if not isinstance(node, exp.Use):  # USE names a database
        _tables(node, found)
    if isinstance(node, _QUERY_ROOTS):
        if isinstance(node, exp.Select) and node.args.get("into") is not None:
            # MySQL: SELECT ... INTO @var / OUTFILE; elsewhere it creates a table
            return ("select" if dialect == "mysql" else "ddl"), "SELECT INTO"
        if keyword is not None and keyword not in _READ_KEYWORDS:
            obstacle = f"{keyword} (not a query)"
        else:
            obstacle = _obstacle(node)
        writes = _writes(node)
        op = most_significant(["select", *writes]) if writes else "select"
        return op, obstacle
    for cls, op in _DML.items():
        if isinstance(node, cls):
            return most_significant([op, *_writes(node)]), f"{node.key.upper()} (writes)"
    if isinstance(node, exp.Show):
        return "other", ""
    if isinstance(node, exp.Describe):
        inner = node.this
        style = str(node.args.get("style") or "").upper()
        if "ANALYZE" in style:
            return "other", "EXPLAIN ANALYZE (runs the statement)"
        if keyword not in ("EXPLAIN", "DESCRIBE", "DESC"):
            return "other", f"{keyword or 'DESCRIBE'} (not a query)"
        if isinstance(inner, exp.Table):
            return "other", ""
        if not isinstance(inner, _QUERY_ROOTS):
            return "other", "EXPLAIN of a statement that is not a SELECT"
        return "other", _obstacle(inner)
    if isinstance(node, _DDL):
        return "ddl", f"{keyword or node.key.upper()} (DDL)"
    if isinstance(node, _TX):
        return "tx", f"{keyword or node.key.upper()} (transaction control)"
    if isinstance(node, exp.Set):
        for item in node.expressions:
            if str(item.args.get("kind") or "").upper() == "TRANSACTION":
                return "tx", "SET TRANSACTION (transaction control)"
        return "other", "SET (changes the session)"
    # Something sqlglot read as a bare expression (`SAVEPOINT a` ...): trust
    # the first keyword of the text for the operation, never for read_only.
    return KEYWORD_OPS.get(keyword or "", "other"), f"{keyword or 'a statement'} (not a query)"


def _replace_tables(node: exp.Command, dialect: str, found: list[tuple[int, int, str]]) -> None:
    """MySQL ``REPLACE INTO t ...`` (a Command for sqlglot): tables of the INSERT."""
    rest = node.expression.name if isinstance(node.expression, exp.Literal) else ""
    try:
        tree = sqlglot.parse_one("INSERT " + rest, read=_SQLGLOT_DIALECT.get(dialect))
    except Exception:
        return
    if isinstance(tree, exp.Expression):
        _tables(tree, found)


def _masked_sql(node: exp.Expression, dialect: str | None) -> str:
    for lit in list(node.find_all(exp.Literal, exp.Placeholder)):
        if lit is not node:
            lit.replace(exp.Placeholder())
    for in_ in node.find_all(exp.In):
        items = in_.expressions
        if len(items) > 1 and all(isinstance(i, exp.Placeholder) for i in items):
            in_.set("expressions", [exp.Placeholder()])
    for values in node.find_all(exp.Values):
        rows = values.expressions
        if len(rows) > 1 and all(
            isinstance(r, exp.Tuple)
            and all(isinstance(i, exp.Placeholder) for i in r.expressions)
            and len(r.expressions) == len(rows[0].expressions)
            for r in rows
        ):
            values.set("expressions", [rows[0]])
    return node.sql(dialect=dialect, comments=False)


def analyze_sqlglot(text: str, dialect: str, key: str) -> Analysis | None:
    """Analyze ``text`` (placeholders already ``?``); None if it does not parse.

    ``key`` is the masked key of the text (used for the statements' first
    keywords and to fingerprint statements sqlglot keeps as raw text).
    """
    _local.active = True
    try:
        return _analyze(text, dialect, key)
    finally:
        _local.active = False


def _unparsed_statement(key: str) -> Analysis | None:
    """A lone statement sqlglot cannot parse but whose keyword is unambiguous."""
    words = first_words(key)
    if len(words) == 1 and words[0] in _UNPARSED_KEYWORD_OPS:
        fp = blake2b(key.encode(), digest_size=8).hexdigest()
        operation = _UNPARSED_KEYWORD_OPS[words[0]]
        return Analysis(fp, operation, (), False, obstacle=f"{words[0]} (not a query)")
    return None


def _analyze(text: str, dialect: str, key: str) -> Analysis | None:
    read = _SQLGLOT_DIALECT.get(dialect)
    try:
        parsed = sqlglot.parse(text, read=read)
    except sqlglot.errors.SqlglotError:
        return _unparsed_statement(key)
    stmts: list[Any] = [s for s in parsed if s is not None]
    if not stmts:
        return None
    words = first_words(key)
    aligned = len(words) == len(stmts)
    found: list[tuple[int, int, str]] = []
    ops: list[Operation] = []
    obstacle = ""
    raw_text = False
    for i, node in enumerate(stmts):
        op, stopped_by = _statement(node, words[i] if aligned else None, dialect, found)
        ops.append(op)
        obstacle = obstacle or stopped_by
    if not aligned:
        obstacle = obstacle or "its statements could not be told apart"
        if isinstance(node, exp.Command) or not isinstance(
            node, (*_QUERY_ROOTS, *_DML, *_DDL, *_TX, exp.Show, exp.Describe, exp.Set)
        ):
            raw_text = True
    found.sort()
    tables = tuple(dict.fromkeys(name for _, _, name in found))
    if raw_text:
        canonical = key
    else:
        canonical = "; ".join(_masked_sql(node, read) for node in stmts)
    fp = blake2b(canonical.encode(), digest_size=8).hexdigest()
    return Analysis(fp, most_significant(ops), tables, not obstacle, obstacle=obstacle)
