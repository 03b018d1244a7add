"""Column references of a statement by role, from pglast's parse tree: what an index on each
table could serve (equality and range predicates, join keys, ORDER BY with its direction,
GROUP BY) and what it would have to hold for an index-only scan (every other column the
statement reads from the table).

Names are as written: tables by their name or alias in the statement, columns qualified or
not. `_candidates.resolve` maps them onto the catalog. Equality predicates against a constant
or a parameter also record the compared value (a literal's text, or the parameter number),
which a sample's parameters turn into the value the traffic asked for: what finds a value
that dominates (a partial index). Those values stay in memory.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pglast.parser import parse_sql_json

__all__ = ["ColumnRef", "StatementRefs", "parse_references", "strip_list_comments"]

# dbsight's normalizer writes a collapsed IN list as `IN ($2 /*, ... */)` and repeated VALUES
# rows as `VALUES (...) /*, ... */`: the comment goes, the first element stays.
_LIST_COMMENT = re.compile(r"\s*/\*, \.\.\. \*/")
_RANGE_OPS = frozenset({"<", ">", "<=", ">="})
_LIKE_KINDS = frozenset({"AEXPR_LIKE", "AEXPR_ILIKE"})
_BETWEEN_KINDS = frozenset({"AEXPR_BETWEEN", "AEXPR_BETWEEN_SYM"})
_STATEMENTS = frozenset({"SelectStmt", "UpdateStmt", "DeleteStmt", "InsertStmt"})


def strip_list_comments(text: str) -> str:
    return _LIST_COMMENT.sub("", text)


@dataclass(frozen=True, slots=True)
class ColumnRef:
    """``qualifier`` is the table name or alias written before the column, if any."""

    qualifier: str | None
    column: str


# A compared value: ("param", "3") for $3, ("const", "pending"), ("null", "") for IS NULL.
Value = tuple[str, str]


@dataclass(slots=True)
class StatementRefs:
    """What one statement reads, by role. ``aliases`` maps every name a table goes by in the
    statement (its alias, its name) to the table's name as written; ``tables`` are those
    names in order. ``stars``: qualifiers of ``t.*`` (None for a bare ``*``)."""

    tables: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    eq: list[ColumnRef] = field(default_factory=list)
    range: list[ColumnRef] = field(default_factory=list)
    join: list[ColumnRef] = field(default_factory=list)
    order: list[tuple[ColumnRef, bool]] = field(default_factory=list)  # (column, descending)
    group: list[ColumnRef] = field(default_factory=list)
    other: list[ColumnRef] = field(default_factory=list)
    stars: list[str | None] = field(default_factory=list)
    values: dict[ColumnRef, Value] = field(default_factory=dict)
    limits: dict[int, str] = field(default_factory=dict)  # $n of LIMIT / OFFSET -> a value
    max_param: int = 0
    kind: str = ""


def parse_references(sql: str) -> StatementRefs | None:
    """The references of ``sql`` (one SELECT, UPDATE, DELETE or INSERT); None when it does
    not parse, holds several statements or is something else."""
    try:
        tree = json.loads(parse_sql_json(strip_list_comments(sql)))
    except Exception:  # pglast's ParseError and friends: not a statement we can advise on
        return None
    statements = tree.get("stmts") or []
    if len(statements) != 1:
        return None
    node = statements[0].get("stmt") or {}
    kind = next(iter(node), "")
    if kind not in _STATEMENTS:
        return None
    refs = StatementRefs(kind=kind)
    try:
        _Walker(refs).statement(kind, node[kind])
    except RecursionError:
        return None
    return refs


def _column(node: Any) -> ColumnRef | None:
    """A ColumnRef node as (qualifier, column); None for ``*`` or odd shapes."""
    ref = node.get("ColumnRef") if isinstance(node, dict) else None
    if ref is None:
        return None
    names: list[str] = []
    for part in ref.get("fields", []):
        text = part.get("String", {}).get("sval") if isinstance(part, dict) else None
        if text is None:
            return None  # A_Star
        names.append(text)
    if not names:
        return None
    return ColumnRef(names[-2] if len(names) >= 2 else None, names[-1])


def _operator(expr: dict[str, Any]) -> str:
    names = expr.get("name") or []
    return names[-1].get("String", {}).get("sval", "") if names else ""


def _value(node: Any) -> Value | None:
    """A constant or a parameter (through casts); None for anything else."""
    while isinstance(node, dict) and "TypeCast" in node:
        node = node["TypeCast"].get("arg")
    if not isinstance(node, dict):
        return None
    if "ParamRef" in node:
        return ("param", str(node["ParamRef"].get("number", 0)))
    const = node.get("A_Const")
    if const is not None:
        if const.get("isnull"):
            return ("null", "")
        for key, inner in (("sval", "sval"), ("ival", "ival"), ("fval", "fval"),
                           ("boolval", "boolval")):  # fmt: skip
            if key in const:
                raw = const[key].get(inner, 0 if key == "ival" else False)
                if key == "boolval":
                    return ("const", "true" if raw else "false")
                return ("const", str(raw))
    return None


class _Walker:
    def __init__(self, refs: StatementRefs) -> None:
        self.refs = refs
        # names of the statement's WITH queries: a FROM item of that name is not a table
        self.ctes: set[str] = set()

    # -- statements ---------------------------------------------------------------------
    def statement(self, kind: str, body: dict[str, Any]) -> None:
        self.cte_names(body)
        if kind == "SelectStmt":
            self.select(body)
        elif kind in ("UpdateStmt", "DeleteStmt", "InsertStmt"):
            self.relation(body.get("relation"))
            for item in body.get("fromClause", []) + body.get("usingClause", []):
                self.from_item(item)
            self.predicate(body.get("whereClause"))
            for target in body.get("targetList", []):
                self.other(target.get("ResTarget", {}).get("val"))
            select = body.get("selectStmt")
            if isinstance(select, dict) and "SelectStmt" in select:
                self.select(select["SelectStmt"])
            self.with_clause(body.get("withClause"))  # a SELECT's: walked by select()

    def cte_names(self, body: dict[str, Any]) -> None:
        """Learn the WITH names before the FROM items that may use them are walked."""
        for cte in (body.get("withClause") or {}).get("ctes", []):
            name = cte.get("CommonTableExpr", {}).get("ctename")
            if name:
                self.ctes.add(name)

    def with_clause(self, clause: Any) -> None:
        for cte in (clause or {}).get("ctes", []):
            query = cte.get("CommonTableExpr", {}).get("ctequery") or {}
            for kind, body in query.items():
                if kind in _STATEMENTS:
                    self.statement(kind, body)

    def select(self, body: dict[str, Any]) -> None:
        self.cte_names(body)
        for side in ("larg", "rarg"):  # UNION / INTERSECT / EXCEPT
            if body.get(side):
                self.select(body[side])
        for item in body.get("fromClause", []):
            self.from_item(item)
        for target in body.get("targetList", []):
            self.output(target.get("ResTarget", {}).get("val"))
        self.predicate(body.get("whereClause"))
        self.predicate(body.get("havingClause"))
        for item in body.get("groupClause", []):
            column = _column(item)
            if column is not None:
                self.refs.group.append(column)
            else:
                self.other(item)
        for item in body.get("sortClause", []):
            sort = item.get("SortBy", {})
            column = _column(sort.get("node"))
            if column is not None:
                self.refs.order.append((column, sort.get("sortby_dir") == "SORTBY_DESC"))
            else:
                self.other(sort.get("node"))
        for key, value in (("limitCount", "10"), ("limitOffset", "0")):
            param = _value(body.get(key))
            if param is not None and param[0] == "param":
                self.refs.limits.setdefault(int(param[1]), value)
            self.other(body.get(key))
        for row in body.get("valuesLists", []):
            self.other(row)
        self.with_clause(body.get("withClause"))

    def relation(self, node: Any) -> None:
        if not isinstance(node, dict):
            return
        name = node.get("relname")
        if not name or (not node.get("schemaname") and name in self.ctes):
            return
        if node.get("schemaname"):
            name = f"{node['schemaname']}.{name}"
        if name not in self.refs.tables:
            self.refs.tables.append(name)
        self.refs.aliases.setdefault(node["relname"], name)
        alias = (node.get("alias") or {}).get("aliasname")
        if alias:
            self.refs.aliases[alias] = name

    def from_item(self, item: Any) -> None:
        if not isinstance(item, dict):
            return
        if "RangeVar" in item:
            self.relation(item["RangeVar"])
        elif "JoinExpr" in item:
            join = item["JoinExpr"]
            self.from_item(join.get("larg"))
            self.from_item(join.get("rarg"))
            self.predicate(join.get("quals"))
        elif "RangeSubselect" in item:
            sub = item["RangeSubselect"].get("subquery") or {}
            if "SelectStmt" in sub:
                self.select(sub["SelectStmt"])
        else:
            self.other(item)

    # -- expressions --------------------------------------------------------------------
    def output(self, node: Any) -> None:
        ref = node.get("ColumnRef") if isinstance(node, dict) else None
        if ref is not None and any("A_Star" in part for part in ref.get("fields", [])):
            fields = ref["fields"]
            qualifier = fields[-2].get("String", {}).get("sval") if len(fields) >= 2 else None
            self.refs.stars.append(qualifier)
            return
        self.other(node)

    def predicate(self, node: Any) -> None:
        if not isinstance(node, dict):
            return
        if "BoolExpr" in node:
            for arg in node["BoolExpr"].get("args", []):
                self.predicate(arg)
        elif "A_Expr" in node:
            self.comparison(node["A_Expr"])
        elif "NullTest" in node:
            test = node["NullTest"]
            column = _column(test.get("arg"))
            if column is not None:
                self.refs.eq.append(column)
                if test.get("nulltesttype") == "IS_NULL":
                    self.refs.values.setdefault(column, ("null", ""))
            else:
                self.other(test.get("arg"))
        else:
            self.other(node)

    def comparison(self, expr: dict[str, Any]) -> None:
        kind = expr.get("kind", "")
        left, right = expr.get("lexpr"), expr.get("rexpr")
        lcol, rcol = _column(left), _column(right)
        op = _operator(expr)
        if kind == "AEXPR_OP" and op == "=" and lcol is not None and rcol is not None:
            self.refs.join.extend((lcol, rcol))
            return
        if kind == "AEXPR_OP" and op in _RANGE_OPS | {"="} and (lcol is None) != (rcol is None):
            column, other = (lcol, right) if lcol is not None else (rcol, left)
            assert column is not None
            if op == "=":
                self.refs.eq.append(column)
                value = _value(other)
                if value is not None:
                    self.refs.values.setdefault(column, value)
            else:
                self.refs.range.append(column)
            self.other(other)
            return
        if lcol is not None and kind in ("AEXPR_IN", "AEXPR_OP_ANY") and op == "=":
            self.refs.eq.append(lcol)
            items = right.get("List", {}).get("items", []) if isinstance(right, dict) else []
            first = _value(items[0]) if items and kind == "AEXPR_IN" else None
            if first is not None and first[0] == "param":
                self.refs.values.setdefault(lcol, first)
            self.other(right)
            return
        if lcol is not None and (kind in _BETWEEN_KINDS or kind in _LIKE_KINDS):
            self.refs.range.append(lcol)
            self.other(right)
            return
        self.other(left)
        self.other(right)

    def other(self, node: Any) -> None:
        """Every column reference under ``node`` (a subquery's by its own roles)."""
        stack = [node]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                if "ColumnRef" in item:
                    column = _column(item)
                    if column is not None:
                        self.refs.other.append(column)
                    continue
                if "ParamRef" in item:
                    number = item["ParamRef"].get("number", 0)
                    self.refs.max_param = max(self.refs.max_param, number)
                    continue
                if "SubLink" in item:
                    link = item["SubLink"]
                    stack.append(link.get("testexpr"))
                    sub = link.get("subselect") or {}
                    if "SelectStmt" in sub:
                        self.select(sub["SelectStmt"])
                    continue
                stack.extend(item.values())
