"""PostgreSQL statements, parsed by pglast (libpg_query, the server's own grammar).

The text is parsed to JSON (``parse_sql_json`` + ``json.loads`` is an order of
magnitude cheaper than building pglast's Python AST) and the resulting dicts
are walked iteratively (no recursion limit) to find tables, writes, locking
clauses and function calls.

Read-only rule: a statement is read-only only when it is a SELECT / VALUES /
TABLE / SHOW, or an EXPLAIN without ANALYZE of such a statement, and its tree
contains only node types known to be harmless (default deny), no locking
clause, no INTO, no data-modifying CTE, and only calls to functions and
operators of the generated allow-lists (unqualified or ``pg_catalog.``).

Calls of other functions are collected apart from the rest: when they are the
only obstacle, their names are reported (``Analysis.functions``) so that the
proxy can ask the server whether they are volatile.
"""

from __future__ import annotations

import json
import re
from hashlib import blake2b
from typing import Any, Final, NamedTuple, TypeGuard

from pglast.parser import fingerprint as _pg_fingerprint
from pglast.parser import parse_sql_json as _parse_sql_json

from ._info import Operation, most_significant
from ._safe_functions import PG_SAFE_FUNCTIONS, PG_SAFE_OPERATORS


class Analysis(NamedTuple):
    fingerprint: str
    operation: Operation
    tables: tuple[str, ...]
    read_only: bool
    functions: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    obstacle: str = ""


_DML: Final[dict[str, Operation]] = {
    "InsertStmt": "insert",
    "UpdateStmt": "update",
    "DeleteStmt": "delete",
    "MergeStmt": "update",  # MERGE may insert, update and delete; "update" describes it best
}
_QUERY_TAGS: Final = frozenset({"SelectStmt", *_DML})

_DDL_TAGS: Final = frozenset(
    {
        "IndexStmt", "ViewStmt", "RuleStmt", "DefineStmt", "CompositeTypeStmt", "GrantStmt",
        "GrantRoleStmt", "CommentStmt", "SecLabelStmt", "RenameStmt", "TruncateStmt",
        "ReindexStmt", "ClusterStmt", "RefreshMatViewStmt", "ImportForeignSchemaStmt",
        "ReassignOwnedStmt", "DropOwnedStmt", "CreateTableAsStmt", "ReplicaIdentityStmt",
    }
)  # fmt: skip
_NOT_DDL: Final = frozenset({"AlterSystemStmt"})

# Node types that may appear in a read-only query.  Anything else (locking
# clauses, INTO, DML, DEFAULT, WHERE CURRENT OF, node types added by future
# PostgreSQL versions ...) makes the statement not provably read-only.
_SAFE_TAGS: Final = frozenset(
    """
    SelectStmt ResTarget ColumnRef A_Star A_Const String Integer Float Boolean BitString List
    A_Expr BoolExpr NullTest BooleanTest TypeCast TypeName CollateClause FuncCall SubLink
    CaseExpr CaseWhen CoalesceExpr MinMaxExpr RowExpr A_ArrayExpr A_Indirection A_Indices
    ParamRef SortBy WindowDef RangeVar RangeSubselect RangeFunction RangeTableSample JoinExpr
    Alias CommonTableExpr SQLValueFunction GroupingSet GroupingFunc RangeTableFunc
    RangeTableFuncCol XmlExpr XmlSerialize ColumnDef NamedArgExpr CTESearchClause
    CTECycleClause JsonAggConstructor JsonArgument JsonArrayAgg JsonArrayConstructor
    JsonArrayQueryConstructor JsonBehavior JsonFormat JsonFuncExpr JsonIsPredicate
    JsonKeyValue JsonObjectAgg JsonObjectConstructor JsonOutput JsonParseExpr JsonReturning
    JsonScalarExpr JsonSerializeExpr JsonTable JsonTableColumn JsonTablePathSpec
    JsonValueExpr
    """.split()
)
_SAFE_TABLESAMPLE: Final = frozenset({"bernoulli", "system", "system_rows", "system_time"})
_BETWEEN_KINDS: Final = frozenset(
    {"AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN", "AEXPR_BETWEEN_SYM", "AEXPR_NOT_BETWEEN_SYM"}
)
# libpg_query's fingerprint treats `x = $1`, `x IN (...)` and `x = ANY($1)` as
# the same shape (and `<>` like NOT IN); these kinds are mixed back in.
_CONFLATED_KINDS: Final = frozenset({"AEXPR_IN", "AEXPR_OP_ANY", "AEXPR_OP_ALL"})
_DROP_TABLEISH: Final = frozenset(
    {"OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_FOREIGN_TABLE"}
)
_NO_SCOPE: Final[frozenset[str]] = frozenset()

# The words of `SqlInfo.obstacle`: what keeps a statement from being read-only.
_LOCK_STRENGTH: Final = {
    "LCS_FORKEYSHARE": "FOR KEY SHARE",
    "LCS_FORSHARE": "FOR SHARE",
    "LCS_FORNOKEYUPDATE": "FOR NO KEY UPDATE",
    "LCS_FORUPDATE": "FOR UPDATE",
}
_STATEMENT_WORDS: Final = {
    "InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "MergeStmt": "MERGE",
    "CreateStmt": "CREATE TABLE", "IndexStmt": "CREATE INDEX", "ViewStmt": "CREATE VIEW",
    "RuleStmt": "CREATE RULE", "DefineStmt": "CREATE", "CompositeTypeStmt": "CREATE TYPE",
    "GrantRoleStmt": "GRANT", "RenameStmt": "ALTER ... RENAME", "CheckPointStmt": "CHECKPOINT",
    "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW", "DeclareCursorStmt": "DECLARE CURSOR",
    "ClosePortalStmt": "CLOSE", "VariableSetStmt": "SET", "CopyStmt": "COPY",
}  # fmt: skip


def statement_words(tag: str) -> str:
    """``CreateTableAsStmt`` -> ``CREATE TABLE AS``: a statement as its keywords read."""
    words = _STATEMENT_WORDS.get(tag)
    if words is None:
        words = " ".join(re.findall(r"[A-Z][a-z]*", tag.removesuffix("Stmt"))).upper()
    return words


def _names(items: Any) -> list[str] | None:
    """``[{"String": {"sval": "a"}}, ...]`` -> ``["a", ...]`` (None if malformed)."""
    out: list[str] = []
    if type(items) is not list:
        return None
    for item in items:
        s = item.get("String") if type(item) is dict else None
        if type(s) is not dict or type(s.get("sval")) is not str:
            return None
        out.append(s["sval"])
    return out


def _allowed(names: list[str] | None, allow: frozenset[str]) -> bool:
    if not names:
        return False
    if len(names) == 1:
        return names[0] in allow
    return len(names) == 2 and names[0] == "pg_catalog" and names[1] in allow


def _checkable(names: list[str] | None) -> TypeGuard[list[str]]:
    """A function name the server can be asked about: ``name`` or ``schema.name``.

    A part with a dot in it (``"a.b"()``) could not be told from a qualified
    name once joined, so such a call stays an obstacle of its own.
    """
    return names is not None and 0 < len(names) <= 2 and not any("." in n for n in names)


class _Walk:
    """Accumulates what one statement tree tells.

    ``safe`` is False when something other than a function call keeps the
    statement from being read-only; calls of functions outside the allow-list
    go to ``calls`` instead, so that they can be judged apart.
    """

    __slots__ = (
        "found", "calls", "operators", "safe", "obstacle", "writes", "kinds", "into", "seq",
    )  # fmt: skip

    def __init__(self) -> None:
        self.found: list[tuple[int, int, str]] = []  # (location, seq, name)
        self.calls: list[tuple[int, int, str]] = []  # (location, seq, function name)
        self.operators: list[str] = []  # allow-listed operator symbols, written unqualified
        self.safe = True
        self.obstacle = ""  # what first made it unsafe, in words
        self.writes: list[Operation] = []
        self.kinds: list[str] = []
        self.into = False
        self.seq = 0

    def unsafe(self, obstacle: str) -> None:
        """Something other than a function call keeps the statement from being read-only."""
        if self.safe:
            self.safe = False
            self.obstacle = obstacle

    def table(self, rv: dict[str, Any], scope: frozenset[str] | None, where: int = -1) -> None:
        rel = rv.get("relname")
        if type(rel) is not str:
            return
        schema = rv.get("schemaname")
        catalog = rv.get("catalogname")
        if scope is not None and not schema and not catalog and rel in scope:
            return  # a reference to a CTE
        name = ".".join(p for p in (catalog, schema, rel) if p)
        loc = rv.get("location", where)
        self.seq += 1
        self.found.append((loc if type(loc) is int else where, self.seq, name))

    def walk(self, root: Any, scope: frozenset[str] = _NO_SCOPE) -> None:
        stack: list[Any] = [root]
        scopes: list[frozenset[str]] = [scope]
        pop = stack.pop
        push = stack.append
        pop_scope = scopes.pop
        push_scope = scopes.append
        actions = _ACTIONS
        while stack:
            node = pop()
            scope = pop_scope()
            if type(node) is list:
                for item in node:
                    if type(item) is dict or type(item) is list:
                        push(item)
                        push_scope(scope)
                continue
            if not node:
                continue
            if len(node) == 1:
                for tag in node:
                    break
                body = node[tag]
                if type(body) is dict and "A" <= tag[0] <= "Z":
                    action = actions.get(tag, _UNKNOWN)
                    if action == _LEAF:
                        continue
                    if action == _RANGEVAR:
                        self.table(body, scope)
                        continue
                    if action == _QUERY:
                        self._query(tag, body, scope, push, push_scope)
                        continue
                    if action != _PLAIN:
                        self._check(action, tag, body)
                    for key in body:
                        value = body[key]
                        if (type(value) is dict or type(value) is list) and key != "typevar":
                            push(value)
                            push_scope(scope)
                    continue
            if "relname" in node:  # an unwrapped RangeVar (DDL targets, INTO ...)
                self.table(node, scope)
                continue
            for key in node:
                value = node[key]
                if (type(value) is dict or type(value) is list) and key != "typevar":
                    push(value)
                    push_scope(scope)

    def _query(
        self, tag: str, body: dict[str, Any], scope: frozenset[str], push: Any, push_scope: Any
    ) -> None:
        """SELECT / INSERT / UPDATE / DELETE / MERGE: CTE scopes, targets, locks."""
        inner = scope
        with_clause = body.get("withClause")
        if type(with_clause) is dict:
            ctes = [c for c in with_clause.get("ctes", ()) if type(c) is dict]
            names = [
                c["CommonTableExpr"].get("ctename", "")
                for c in ctes
                if type(c.get("CommonTableExpr")) is dict
            ]
            inner = scope | frozenset(names)
            recursive = bool(with_clause.get("recursive"))
            # a non-recursive CTE sees the CTEs before it, not itself
            for i, cte in enumerate(ctes):
                push(cte)
                push_scope(inner if recursive else scope | frozenset(names[:i]))
        if tag in _DML:
            self.writes.append(_DML[tag])
            self.unsafe(f"{statement_words(tag)} (writes)")
            relation = body.get("relation")
            if type(relation) is dict:
                self.table(relation, None)  # a target is never a CTE
            skip: tuple[str, ...] = ("withClause", "relation")
        else:
            if body.get("intoClause"):
                self.into = True
                self.unsafe("SELECT INTO (creates a table)")
            locking = body.get("lockingClause")
            if locking:
                self.unsafe(_locking_words(locking))
            skip = ("withClause",)
        for key in body:
            value = body[key]
            if (type(value) is dict or type(value) is list) and key not in skip:
                push(value)
                push_scope(inner)

    def _check(self, action: int, tag: str, body: dict[str, Any]) -> None:
        """The checks of function calls, operators and a few special nodes."""
        if action == _FUNC:
            names = _names(body.get("funcname"))
            if not _allowed(names, PG_SAFE_FUNCTIONS):
                if _checkable(names):
                    loc = body.get("location", -1)
                    self.seq += 1
                    where = loc if type(loc) is int else -1
                    self.calls.append((where, self.seq, ".".join(names)))
                else:
                    self.unsafe("a call of a function whose name the server cannot be asked about")
        elif action == _AEXPR:
            kind = body.get("kind", "")
            self.kinds.append(kind)
            if kind not in _BETWEEN_KINDS:
                self._operator(_names(body.get("name")))
        elif action == _SUBLINK:
            if "operName" in body:
                self._operator(_names(body["operName"]))
        elif action == _SORTBY:
            if "useOp" in body:
                self._operator(_names(body["useOp"]))
        elif action == _SAMPLE:
            method = _names(body.get("method"))
            if not method or len(method) != 1 or method[0] not in _SAFE_TABLESAMPLE:
                self.unsafe(f"TABLESAMPLE {'.'.join(method or ['?']).upper()}")
        elif action == _DROP:
            if body.get("removeType") in _DROP_TABLEISH:
                for obj in body.get("objects", ()):
                    parts = _names(obj.get("List", {}).get("items")) if type(obj) is dict else None
                    if parts:
                        self.seq += 1
                        self.found.append((-1, self.seq, ".".join(parts)))
        else:  # _UNKNOWN: not in the read-only allow-list
            self.unsafe(f"{tag} (not known to be read-only)")

    def _operator(self, names: list[str] | None) -> None:
        """An operator: allow-listed symbols are noted (a user may have defined one for
        other types, with a function of any volatility), others make the text unsafe."""
        if not _allowed(names, PG_SAFE_OPERATORS):
            self.unsafe(f"the operator {'.'.join(names or ['?'])} (not a built-in one)")
        elif names is not None and len(names) == 1:
            self.operators.append(names[0])


# What the walker does with each wrapped node type.
_UNKNOWN, _LEAF, _PLAIN, _RANGEVAR, _QUERY, _FUNC, _AEXPR, _SUBLINK, _SORTBY, _SAMPLE, _DROP = (
    range(11)
)
_ACTIONS: Final[dict[str, int]] = {
    **{tag: _PLAIN for tag in _SAFE_TAGS},
    **{
        tag: _LEAF
        for tag in ("String", "Integer", "Float", "Boolean", "BitString", "A_Const", "A_Star")
    },
    **{tag: _QUERY for tag in _QUERY_TAGS},
    "ParamRef": _LEAF,
    "RangeVar": _RANGEVAR,
    "FuncCall": _FUNC,
    "A_Expr": _AEXPR,
    "SubLink": _SUBLINK,
    "SortBy": _SORTBY,
    "RangeTableSample": _SAMPLE,
    "DropStmt": _DROP,
}


def _locking_words(clauses: Any) -> str:
    """``FOR UPDATE`` (the first locking clause of a SELECT)."""
    first = clauses[0] if type(clauses) is list and clauses else None
    clause = first.get("LockingClause") if type(first) is dict else None
    strength = clause.get("strength") if type(clause) is dict else None
    return f"{_LOCK_STRENGTH.get(str(strength), 'FOR UPDATE/SHARE')} (locks rows)"


def _explain_is_analyze(body: dict[str, Any]) -> bool:
    for opt in body.get("options", ()):
        elem = opt.get("DefElem") if type(opt) is dict else None
        if type(elem) is not dict or elem.get("defname") == "analyze":
            return True  # any ANALYZE, whatever its value: not provably read-only
    return False


def _statement(tag: str, body: dict[str, Any], w: _Walk) -> tuple[Operation, bool]:
    """Classify one top-level statement; walk it into ``w``.

    The flag is whether the statement is read-only *but for* the calls left in
    ``w.calls`` (it is read-only outright when there are none); when it is not,
    ``w.obstacle`` says why.
    """
    if tag == "ExplainStmt":
        query = body.get("query")
        if _explain_is_analyze(body):
            w.unsafe("EXPLAIN ANALYZE (runs the statement)")
        w.walk(query)
        is_select = type(query) is dict and "SelectStmt" in query
        if not is_select:
            w.unsafe("EXPLAIN of a statement that is not a SELECT")
        return "other", bool(is_select and w.safe)
    w.walk({tag: body})
    if tag == "SelectStmt":
        if w.into:
            return "ddl", False  # SELECT INTO creates a table
        op: Operation = "select"
        if w.writes:
            op = most_significant([op, *w.writes])
        return op, w.safe
    words = statement_words(tag)
    if tag in _DML:
        w.obstacle = f"{words} (writes)"
        return most_significant([_DML[tag], *w.writes]), False
    if tag == "CopyStmt":
        w.obstacle = "COPY FROM (writes)" if body.get("is_from") else "COPY"
        op = "insert" if body.get("is_from") else "select"
        return most_significant([op, *w.writes]), False
    if tag == "VariableShowStmt":
        return "other", True
    if tag == "TransactionStmt":
        kind = str(body.get("kind", "")).removeprefix("TRANS_STMT_").replace("_", " ")
        w.obstacle = f"{kind or 'transaction'} (transaction control)"
        return "tx", False
    if tag == "VariableSetStmt":
        if body.get("name") == "TRANSACTION":
            w.obstacle = "SET TRANSACTION (transaction control)"
            return "tx", False
        w.obstacle = "SET (changes the session)"
        return "other", False
    if tag in _DDL_TAGS or (
        tag.startswith(("Create", "Alter", "Drop")) and tag not in _NOT_DDL
    ):
        w.obstacle = f"{words} (DDL)"
        return "ddl", False
    w.obstacle = f"{words} (not a query)"
    return "other", False


def analyze_postgres(text: str) -> Analysis | None:
    """Analyze ``text`` (placeholders already ``$n``); None if it does not parse.

    May raise on malformed input (pglast's ParseError, RecursionError from
    very deep JSON ...); the caller treats any exception like a parse error.
    """
    tree = json.loads(_parse_sql_json(text))
    stmts = tree.get("stmts") or []
    if not stmts:
        return None
    ops: list[Operation] = []
    clean = True  # read-only but for calls of functions outside the allow-list
    found: list[tuple[int, int, str]] = []
    calls: list[tuple[int, int, str]] = []
    kinds: list[str] = []
    operators: list[str] = []
    obstacle = ""
    for raw in stmts:
        stmt = raw.get("stmt") if type(raw) is dict else None
        if type(stmt) is not dict or len(stmt) != 1:
            return None
        tag, body = next(iter(stmt.items()))
        if type(body) is not dict:
            return None
        w = _Walk()
        op, ok = _statement(tag, body, w)
        ops.append(op)
        clean = clean and ok
        if not ok and not obstacle:
            obstacle = w.obstacle
        where = raw.get("stmt_location", 0)
        found.extend(((loc if loc >= 0 else where), seq, name) for loc, seq, name in w.found)
        calls.extend(((loc if loc >= 0 else where), seq, name) for loc, seq, name in w.calls)
        kinds.extend(w.kinds)
        operators.extend(w.operators)
    found.sort()
    tables = tuple(dict.fromkeys(name for _, _, name in found))
    calls.sort()
    called = tuple(dict.fromkeys(name for _, _, name in calls))
    functions = called if clean else ()
    read_only = clean and not calls
    fingerprint = _fingerprint(text, kinds, tables)
    used = tuple(dict.fromkeys(operators)) if clean else ()
    if clean and called:
        obstacle = calls_obstacle(called)
    return Analysis(
        fingerprint, most_significant(ops), tables, read_only, functions, used, called, obstacle
    )


def calls_obstacle(functions: tuple[str, ...]) -> str:
    """The obstacle of a text that only calls functions outside the built-in allow-list."""
    return f"calls {', '.join(f'{name}()' for name in functions)} (outside the read-only built-ins)"


def _fingerprint(text: str, kinds: list[str], tables: tuple[str, ...]) -> str:
    """libpg_query's fingerprint, corrected where it merges different shapes.

    It ignores table schemas (``t``, ``public.t`` and ``other.t`` agree), drops
    numeric suffixes of table names (``users_2024`` and ``users_2025`` agree, for
    partitions) and treats ``x = $1``, ``x IN (...)`` and ``x = ANY($1)`` alike.
    When a text has such a construct, the table names as written and the sequence
    of operator-expression kinds are hashed in; otherwise the libpg_query value is
    kept as is.
    """
    fp: str = _pg_fingerprint(text)
    extra = []
    if not _CONFLATED_KINDS.isdisjoint(kinds):
        extra.append(",".join(kinds))
    if any("." in t or t[-1:].isdigit() for t in tables):
        extra.append(",".join(tables))
    if extra:
        fp = blake2b("|".join([fp, *extra]).encode(), digest_size=8).hexdigest()
    return fp
